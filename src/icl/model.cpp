// IclModel: read_in -> backbone (transformer / rwkv7 / lstm) -> read_out, read at the x tokens.
#include "goose/icl/model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "goose/autograd.h"
#include "goose/icl/prompt.h"
#include "goose/models/gpt.h"
#include "goose/models/lstm.h"
#include "goose/models/rwkv7.h"

namespace goose::icl {

const std::vector<std::string>& model_families() {
    static const std::vector<std::string> names = {"rwkv7", "transformer", "lstm"};
    return names;
}

void ModelConfig::validate() const {
    bool known = false;
    for (const auto& f : model_families()) known = known || f == family;
    if (!known)
        fail("IclModel: unknown family \"{}\" (valid: {})", family,
             fmt::join(model_families(), ", "));
    auto positive = [](const char* field, int64_t v) {
        if (v < 1) fail("IclModel: ModelConfig.{} must be >= 1, got {}", field, v);
    };
    positive("n_dims", n_dims);
    positive("n_positions", n_positions);
    positive("n_embd", n_embd);
    positive("n_layer", n_layer);
    if (family == "transformer") {
        positive("n_head", n_head);
        if (n_embd % n_head != 0)
            fail("IclModel: ModelConfig.n_embd ({}) must be a multiple of n_head ({})", n_embd,
                 n_head);
    }
    if (family == "rwkv7") {
        positive("head_size", head_size);
        if (n_embd % head_size != 0)
            fail("IclModel: ModelConfig.n_embd ({}) must be a multiple of head_size ({})", n_embd,
                 head_size);
    }
}

IclModel::IclModel(const ModelConfig& cfg, Rng& rng) : cfg_(cfg) {
    cfg.validate();
    const int64_t c = cfg.n_embd;
    Rng r_in = rng.fork("read_in"), r_bb = rng.fork("backbone"), r_out = rng.fork("read_out");
    read_in_ = register_module("read_in", std::make_shared<nn::Linear>(cfg.n_dims, c, true, r_in));
    if (cfg.family == "transformer") {
        models::GptConfig g{.vocab = 0, .max_t = 2 * cfg.n_positions, .n_layer = cfg.n_layer,
                            .n_embd = c, .n_head = cfg.n_head};
        gpt_ = register_module("backbone", std::make_shared<models::Gpt>(g, r_bb));
    } else if (cfg.family == "rwkv7") {
        auto rc = models::Rwkv7Config::with_defaults(1, cfg.n_layer, c, cfg.head_size);
        rwkv_ = register_module("backbone", std::make_shared<models::Rwkv7>(rc));
        rwkv_->init_official(r_bb);
    } else {
        lstm_ = register_module("backbone", std::make_shared<models::Lstm>(
                                                models::LstmConfig{cfg.n_layer, c}, r_bb));
    }
    read_out_ = register_module("read_out", std::make_shared<nn::Linear>(c, 1, true, r_out));
}

IclModel::~IclModel() = default;

Var IclModel::backbone(const Var& h) const {
    if (gpt_) return gpt_->forward_embeddings(h);
    if (rwkv_) return rwkv_->forward_hidden(h);
    return lstm_->forward(h);
}

Var IclModel::forward(const Tensor& xs, const Tensor& ys) const {
    if (!xs.defined() || xs.ndim() != 3 || xs.size(2) != cfg_.n_dims || xs.size(1) < 1 ||
        xs.size(0) < 1)
        fail("IclModel: xs must be (B, n, d = {}), got {}", cfg_.n_dims,
             xs.defined() ? xs.desc() : "undefined");
    if (!ys.defined() || ys.ndim() != 2 || ys.size(0) != xs.size(0) || ys.size(1) != xs.size(1))
        fail("IclModel: ys must be (B, n) = ({}, {}), got {}", xs.size(0), xs.size(1),
             ys.defined() ? ys.desc() : "undefined");
    const int64_t b = xs.size(0), n = xs.size(1);
    if (n > cfg_.n_positions)
        fail("IclModel: {} points exceed n_positions {}", n, cfg_.n_positions);
    Var tokens(interleave(xs.to(DType::f32), ys.to(DType::f32)));  // (B, 2n, d)
    Var h = backbone(read_in_->forward(tokens));                   // (B, 2n, C)
    Var out = read_out_->forward(h);                               // (B, 2n, 1)
    Var pairs = ag::reshape(out, Shape{b, n, 2});                  // (B, n, 2): x, y tokens
    return ag::reshape(ag::slice(pairs, 2, 0, 1), Shape{b, n});    // (B, n)
}

Tensor IclModel::predict(const Tensor& xs, const Tensor& ys) const {
    ag::NoGradGuard guard;
    return forward(xs, ys).value();
}

}  // namespace goose::icl
