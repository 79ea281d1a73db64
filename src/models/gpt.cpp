// GPT-2-style Transformer built from nn/ layers and autograd ops.
#include "goose/models/gpt.h"

#include <cmath>

#include "goose/autograd.h"

namespace goose::models {

namespace {
// GPT-2 init: every weight N(0, 0.02), biases 0; `std` overrides for residual projections.
void init_linear(nn::Linear& l, Rng& rng, double std) {
    l.weight.value_mut().copy_(Tensor::randn(l.weight.shape(), rng, DType::f32, 0, std));
    if (l.bias.defined()) l.bias.value_mut().zero_();
}
}  // namespace

GptBlock::GptBlock(const GptConfig& cfg, Rng& rng) : n_head_(cfg.n_head) {
    const int64_t c = cfg.n_embd;
    const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(cfg.n_layer));
    ln_1_ = register_module("ln_1", std::make_shared<nn::LayerNorm>(c));
    c_attn_ = register_module("c_attn", std::make_shared<nn::Linear>(c, 3 * c, true, rng));
    c_proj_ = register_module("c_proj", std::make_shared<nn::Linear>(c, c, true, rng));
    ln_2_ = register_module("ln_2", std::make_shared<nn::LayerNorm>(c));
    c_fc_ = register_module("c_fc", std::make_shared<nn::Linear>(c, 4 * c, true, rng));
    mlp_proj_ = register_module("mlp_proj", std::make_shared<nn::Linear>(4 * c, c, true, rng));
    init_linear(*c_attn_, rng, 0.02);
    init_linear(*c_proj_, rng, proj_std);
    init_linear(*c_fc_, rng, 0.02);
    init_linear(*mlp_proj_, rng, proj_std);
}

Var GptBlock::forward(const Var& x) const {
    const int64_t b = x.size(0), t = x.size(1), c = x.size(2), n = c / n_head_;
    Var qkv = c_attn_->forward(ln_1_->forward(x));                  // (B, T, 3C)
    std::vector<Var> parts = ag::split(qkv, {c, c, c}, 2);          // 3 x (B, T, C)
    auto heads = [&](const Var& z) {                                 // (B, T, C) -> (B, H, T, N)
        return ag::permute(ag::reshape(z, Shape{b, t, n_head_, n}), {0, 2, 1, 3});
    };
    Var y = ag::attention(heads(parts[0]), heads(parts[1]), heads(parts[2]));  // (B, H, T, N)
    y = ag::reshape(ag::contiguous(ag::permute(y, {0, 2, 1, 3})), Shape{b, t, c});
    Var h = ag::add(x, c_proj_->forward(y));
    Var m = mlp_proj_->forward(ag::gelu_tanh(c_fc_->forward(ln_2_->forward(h))));
    return ag::add(h, m);
}

Gpt::Gpt(const GptConfig& cfg, Rng& rng) : cfg_(cfg) {
    if (cfg.n_embd % cfg.n_head != 0)
        fail("Gpt: n_embd {} is not divisible by n_head {}", cfg.n_embd, cfg.n_head);
    if (cfg.n_layer < 1 || cfg.max_t < 1) fail("Gpt: n_layer and max_t must be >= 1");
    if (cfg.vocab > 0) {
        wte_ = register_module("wte", std::make_shared<nn::Embedding>(cfg.vocab, cfg.n_embd, rng));
        wte_->weight.value_mut().copy_(
            Tensor::randn(wte_->weight.shape(), rng, DType::f32, 0, 0.02));
    }
    wpe_ = register_module("wpe", std::make_shared<nn::Embedding>(cfg.max_t, cfg.n_embd, rng));
    wpe_->weight.value_mut().copy_(Tensor::randn(wpe_->weight.shape(), rng, DType::f32, 0, 0.02));
    blocks_ = register_module("h", std::make_shared<nn::ModuleList>());
    for (int64_t i = 0; i < cfg.n_layer; ++i) blocks_->push_back(std::make_shared<GptBlock>(cfg, rng));
    ln_f_ = register_module("ln_f", std::make_shared<nn::LayerNorm>(cfg.n_embd));
    if (cfg.vocab > 0) {
        lm_head_ = register_module("lm_head",
                                   std::make_shared<nn::Linear>(cfg.n_embd, cfg.vocab, false, rng));
        init_linear(*lm_head_, rng, 0.02);
    }
}

Var Gpt::forward_embeddings(const Var& x) const {
    const int64_t t = x.size(1);
    if (t > cfg_.max_t) fail("Gpt: sequence length {} exceeds max_t {}", t, cfg_.max_t);
    Var h = ag::add(x, wpe_->forward(Tensor::arange(t, DType::i64)));  // (B, T, C) + (T, C)
    for (size_t i = 0; i < blocks_->size(); ++i) h = blocks_->at<GptBlock>(i).forward(h);
    return ln_f_->forward(h);
}

Var Gpt::forward(const Tensor& ids) const {
    if (!wte_) fail("Gpt: this model has no token embedding (vocab = 0)");
    if (ids.ndim() != 2) fail("Gpt: ids must be (B, T), got {}", ids.desc());
    return lm_head_->forward(forward_embeddings(wte_->forward(ids)));
}

}  // namespace goose::models
