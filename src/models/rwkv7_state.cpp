// RWKV-7 recurrent state (spec §6) and checkpoint-facing helpers: infer_config (§7.1) and load.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

#include "goose/models/rwkv7.h"
#include "rwkv7_init.h"

namespace goose::models {

// ---- state ------------------------------------------------------------------------------------

Rwkv7State Rwkv7State::zeros(const Rwkv7Config& cfg, int64_t batch, DType dtype, Device dev) {
    cfg.validate();
    if (batch < 1) fail("Rwkv7State::zeros: batch must be >= 1, got {}", batch);
    const int64_t c = cfg.n_embd, h = cfg.n_head(), n = cfg.head_size;
    Rwkv7State s;
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
        s.att_shift.push_back(Tensor::zeros(Shape{batch, c}, dtype, dev));
        s.wkv.push_back(Tensor::zeros(Shape{batch, h, n, n}, dtype, dev));
        s.ffn_shift.push_back(Tensor::zeros(Shape{batch, c}, dtype, dev));
    }
    return s;
}

Rwkv7State Rwkv7State::clone() const {
    Rwkv7State s;
    for (const Tensor& t : att_shift) s.att_shift.push_back(t.clone());
    for (const Tensor& t : wkv) s.wkv.push_back(t.clone());
    for (const Tensor& t : ffn_shift) s.ffn_shift.push_back(t.clone());
    return s;
}

Rwkv7State Rwkv7State::to(Device dev) const {
    Rwkv7State s;
    for (const Tensor& t : att_shift) s.att_shift.push_back(t.to(dev));
    for (const Tensor& t : wkv) s.wkv.push_back(t.to(dev));
    for (const Tensor& t : ffn_shift) s.ffn_shift.push_back(t.to(dev));
    return s;
}

Rwkv7State Rwkv7::zero_state(int64_t batch) const {
    return Rwkv7State::zeros(cfg_, batch, dtype_, emb->weight.value().device());
}

// ---- checkpoints ------------------------------------------------------------------------------

namespace {

const std::string kWrapperPrefix = "_forward_module.";  // DeepSpeed/Lightning (train.py strips it)

nn::StateDict strip_prefix(const nn::StateDict& sd) {
    nn::StateDict out;
    for (const auto& [k, t] : sd)
        out.emplace(k.starts_with(kWrapperPrefix) ? k.substr(kWrapperPrefix.size()) : k, t);
    return out;
}

}  // namespace

Rwkv7Config Rwkv7::infer_config(const nn::StateDict& sd_in) {
    const nn::StateDict sd = strip_prefix(sd_in);
    // L: 1 + the largest l of a "blocks.<l>." key
    int64_t n_layer = 0;
    for (const auto& [k, t] : sd) {
        if (!k.starts_with("blocks.")) continue;
        const size_t dot = k.find('.', 7);
        const std::string num = k.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
        if (num.empty() || !std::all_of(num.begin(), num.end(), ::isdigit))
            fail("Rwkv7::infer_config: key '{}' has no layer number after 'blocks.'", k);
        n_layer = std::max<int64_t>(n_layer, std::stoll(num) + 1);
    }
    if (n_layer == 0) fail("Rwkv7::infer_config: the state dict has no 'blocks.<l>.' keys");

    std::vector<std::string> missing;
    auto get = [&](const std::string& key, int ndim) -> const Tensor* {
        auto it = sd.find(key);
        if (it == sd.end()) {
            missing.push_back(key);
            return nullptr;
        }
        if (it->second.ndim() != ndim)
            fail("Rwkv7::infer_config: '{}' must have {} dims, got {}", key, ndim,
                 it->second.desc());
        return &it->second;
    };
    const Tensor* emb = get("emb.weight", 2);              // (V, C)
    const Tensor* r_k = get("blocks.0.att.r_k", 2);        // (H, N)
    const Tensor* w1 = get("blocks.0.att.w1", 2);          // (C, Dw)
    const Tensor* a1 = get("blocks.0.att.a1", 2);          // (C, Da)
    const Tensor* g1 = get("blocks.0.att.g1", 2);          // (C, Dg)
    const Tensor* fk = get("blocks.0.ffn.key.weight", 2);  // (F, C)
    // v-LoRA rank: from layer 1 (layer 0's v1 is optional); a 1-layer model without it never
    // uses the v-LoRA, so the default formula is as good as any.
    const Tensor* v1 = nullptr;
    if (n_layer > 1) {
        v1 = get("blocks.1.att.v1", 2);
    } else if (sd.count("blocks.0.att.v1")) {
        v1 = get("blocks.0.att.v1", 2);
    }
    if (!missing.empty()) {
        std::string s;
        for (const auto& m : missing) s += (s.empty() ? "" : ", ") + m;
        fail("Rwkv7::infer_config: missing key(s) [{}]", s);
    }
    Rwkv7Config cfg = Rwkv7Config::with_defaults(emb->size(0), n_layer, emb->size(1), r_k->size(1));
    cfg.d_decay = w1->size(1);
    cfg.d_aaa = a1->size(1);
    cfg.d_gate = g1->size(1);
    if (v1) cfg.d_mv = v1->size(1);
    cfg.dim_ffn = fk->size(0);
    cfg.validate();
    if (r_k->size(0) * r_k->size(1) != cfg.n_embd)
        fail(
            "Rwkv7::infer_config: blocks.0.att.r_k {} does not give H * N = C = {} (emb.weight {})",
            r_k->desc(), cfg.n_embd, emb->desc());
    return cfg;
}

std::unique_ptr<Rwkv7> Rwkv7::from_state_dict(const nn::StateDict& sd, DType dtype) {
    auto m = std::make_unique<Rwkv7>(infer_config(sd), dtype);
    m->load(sd);
    return m;
}

void Rwkv7::load(const nn::StateDict& sd_in) {
    nn::StateDict sd = strip_prefix(sd_in);
    // Released checkpoints lack layer 0's (unused) v-LoRA: give it the initial values.
    const int64_t c = cfg_.n_embd;
    if (!sd.count("blocks.0.att.v0"))
        sd.emplace("blocks.0.att.v0",
                   Tensor::from(Shape{1, 1, c}, detail::init_vector(cfg_, 0, "v0"), dtype_));
    if (!sd.count("blocks.0.att.v1"))
        sd.emplace("blocks.0.att.v1", Tensor::zeros(Shape{c, cfg_.d_mv}, dtype_));
    if (!sd.count("blocks.0.att.v2")) {
        Rng rng(0, "rwkv7.blocks.0.att.v2");  // fixed: these values never affect the output
        const double gain = 0.1 * (cfg_.d_mv > c ? std::sqrt(double(cfg_.d_mv) / double(c)) : 1.0);
        sd.emplace("blocks.0.att.v2", orthogonal_matrix(cfg_.d_mv, c, gain, rng, dtype_));
    }
    for (const auto& [k, t] : sd)
        if (!dtype_is_float(t.dtype()))
            fail("Rwkv7::load: '{}' is {}, expected a float tensor", k, t.desc());
    load_state_dict(sd, /*strict=*/true);
}

}  // namespace goose::models
