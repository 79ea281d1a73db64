// RWKV-7 model: configuration, module tree with the official names, parallel forward and the
// one-token step (spec §2, §3, §5, §6).
#include "goose/models/rwkv7.h"

#include <cmath>

#include "goose/autograd.h"
#include "goose/core/cuda.h"
#include "models/fused.h"
#include "models/recompute.h"
#include "rwkv7_init.h"

namespace goose::models {

namespace {

constexpr double kLnEps = 1e-5;    // ln0, ln1, ln2, ln_out (PyTorch default)
constexpr double kLnXEps = 64e-5;  // ln_x GroupNorm, as the official code (fixed, not N * 1e-5)

// Python's round(): to nearest, ties to even.
int64_t round_half_even(double x) {
    const double f = std::floor(x);
    const double d = x - f;
    int64_t r = static_cast<int64_t>(f);
    if (d > 0.5 || (d == 0.5 && (r % 2 != 0))) ++r;
    return r;
}

int64_t lora_dim(double k, int64_t c) {
    const double x = k * std::sqrt(static_cast<double>(c)) / 32.0;
    return std::max<int64_t>(32, round_half_even(x) * 32);
}

// x m1 m2 for a LoRA without a nonlinearity inside (a, v): as x (m1 m2) when the rank is at
// least half the width, one product of x by a (C, C) matrix for the same multiply-adds as two
// thinner ones (the tiny ICL models: C 64, rank 32), else as written.
bool lora_folds(const Var& m1) { return 2 * m1.size(1) >= m1.size(0); }
Var lora(const Var& x, const Var& m1, const Var& m2) {
    if (lora_folds(m1)) return ag::matmul(x, ag::matmul(m1, m2));
    return ag::matmul(ag::matmul(x, m1), m2);
}

// Training on CUDA, where activation memory bounds the batch: the time mix's six token mixes
// are rebuilt in the backward instead of kept (recompute.h; same values and gradients;
// Rwkv7::set_lean_activations). The channel mix's one (B, T, C) mix is kept (it would save a
// sixth of that for a third of the time). The CPU keeps everything (small models, where the
// extra pass would only cost time).
bool lean_projections(const Var& x, bool lean) {
    return lean && x.value().device().is_cuda() && ag::grad_enabled();
}

// Training on CUDA: the blocks' weight gradients (the channel mix's and the time mix's output)
// are deferred (ag::DeferWeightGrads). Where the WKV-7 backward leaves SMs idle or half used
// (the sequential kernel, a block per head, with fewer heads B·H than twice the SMs) they run
// beside it (L12 C768 model with that kernel: B8 T4096 H12 232k -> 241k tokens/s, peak 23.5 ->
// 23.9 GiB; B16 T512 241.0k -> 245.4k). The two-pass backward (head size 64 from T 512) fills the
// GPU (weight gradients beside it only slowed it down: B8 T4096 301.0k -> 279.3k), so there they
// run on the main stream of the time mix's projection backward while its LoRA chains finish on
// the side streams (recompute::mix_project), where the main stream would otherwise wait.
bool defer_weight_grads(const Var& x) {
    return x.value().device().is_cuda() && ag::grad_enabled();
}

// (B, T, C) -> packed copy of the last token's row (B, C), detached
Tensor last_row(const Var& x) {
    return x.value().select(1, x.size(1) - 1).clone();
}

}  // namespace

// ---- configuration ----------------------------------------------------------------------------

Rwkv7Config Rwkv7Config::with_defaults(int64_t vocab, int64_t n_layer, int64_t n_embd,
                                       int64_t head_size) {
    Rwkv7Config c;
    c.vocab = vocab;
    c.n_layer = n_layer;
    c.n_embd = n_embd;
    c.head_size = head_size;
    if (n_embd > 0) {
        c.d_decay = lora_dim(2.5, n_embd);
        c.d_aaa = lora_dim(2.5, n_embd);
        c.d_mv = lora_dim(1.7, n_embd);
        c.d_gate = lora_dim(5.0, n_embd);
    }
    c.dim_ffn = 4 * n_embd;
    return c;
}

void Rwkv7Config::validate() const {
    const std::pair<const char*, int64_t> sizes[] = {
        {"vocab", vocab},         {"n_layer", n_layer}, {"n_embd", n_embd},
        {"head_size", head_size}, {"d_decay", d_decay}, {"d_aaa", d_aaa},
        {"d_mv", d_mv},           {"d_gate", d_gate},   {"dim_ffn", dim_ffn}};
    for (const auto& [name, v] : sizes)
        if (v < 1) fail("Rwkv7Config: {} must be >= 1, got {}", name, v);
    if (n_embd % head_size != 0)
        fail("Rwkv7Config: n_embd {} is not a multiple of head_size {}", n_embd, head_size);
}

int64_t Rwkv7Config::num_parameters() const {
    const int64_t c = n_embd, f = dim_ffn;
    const int64_t per_layer =
        4 * c * c + 2 * c * f + 2 * c * (d_decay + d_aaa + d_mv + d_gate) + 19 * c;
    return 2 * vocab * c + n_layer * per_layer + 4 * c;
}

// ---- modules ----------------------------------------------------------------------------------

Rwkv7Weight::Rwkv7Weight(const Shape& shape, DType dtype) {
    weight = register_parameter("weight", Tensor::zeros(shape, dtype));
}

Rwkv7TimeMix::Rwkv7TimeMix(const Rwkv7Config& cfg, int layer_id, DType dtype)
    : layer(layer_id), n_head(cfg.n_head()), head_size(cfg.head_size) {
    const int64_t c = cfg.n_embd;
    auto vec = [&](const char* name) {
        return register_parameter(name, Tensor::zeros(Shape{1, 1, c}, dtype));
    };
    auto mat = [&](const char* name, int64_t r, int64_t k) {
        return register_parameter(name, Tensor::zeros(Shape{r, k}, dtype));
    };
    // registration order = train.py's (parameters, then the child modules)
    x_r = vec("x_r");
    x_w = vec("x_w");
    x_k = vec("x_k");
    x_v = vec("x_v");
    x_a = vec("x_a");
    x_g = vec("x_g");
    w1 = mat("w1", c, cfg.d_decay);
    w2 = mat("w2", cfg.d_decay, c);
    w0 = vec("w0");
    a1 = mat("a1", c, cfg.d_aaa);
    a2 = mat("a2", cfg.d_aaa, c);
    a0 = vec("a0");
    v1 = mat("v1", c, cfg.d_mv);
    v2 = mat("v2", cfg.d_mv, c);
    v0 = vec("v0");
    g1 = mat("g1", c, cfg.d_gate);
    g2 = mat("g2", cfg.d_gate, c);
    k_k = vec("k_k");
    k_a = vec("k_a");
    r_k = mat("r_k", n_head, head_size);
    receptance = register_module("receptance", std::make_shared<Rwkv7Weight>(Shape{c, c}, dtype));
    key = register_module("key", std::make_shared<Rwkv7Weight>(Shape{c, c}, dtype));
    value = register_module("value", std::make_shared<Rwkv7Weight>(Shape{c, c}, dtype));
    output = register_module("output", std::make_shared<Rwkv7Weight>(Shape{c, c}, dtype));
    ln_x = register_module(
        "ln_x", std::make_shared<nn::GroupNorm>(static_cast<int>(n_head), c, kLnXEps, true, dtype));
}

Rwkv7TimeMix::Out Rwkv7TimeMix::forward(const Var& x, const Var& prev, Var& v_first,
                                        const Var& state_in) const {
    Var r, w_lora, k_raw, v_raw, a_lora, g, v_lora;
    if (lean_projections(x, lean)) {
        // The same products from the token mixes without keeping the six (B, T, C) mixes: the
        // backward rebuilds them (recompute.h).
        using recompute::MixProjection;
        const bool a_fold = lora_folds(a1), v_fold = layer > 0 && lora_folds(v1);
        // The LoRAs' whole chains (down, activation, up) in the same op: on CUDA they run on
        // side streams beside the (C, C) Linears, in both directions (L12 C768 H100 graph:
        // B16 T512 271.8k -> 274.9k tokens/s, 8.5 -> 8.4 GiB; B8 T4096 300.1k -> 302.3k).
        std::vector<MixProjection> proj{{0, receptance->weight, true},
                                        {1, w1, false, w2, UnaryOp::tanh},
                                        {2, key->weight, true},
                                        {3, value->weight, true},
                                        a_fold ? MixProjection{4, ag::matmul(a1, a2), false}
                                               : MixProjection{4, a1, false, a2},
                                        {5, g1, false, g2, UnaryOp::sigmoid}};
        if (layer > 0)
            proj.push_back(v_fold ? MixProjection{3, ag::matmul(v1, v2), false}
                                  : MixProjection{3, v1, false, v2});
        const std::vector<Var> y =
            recompute::mix_project(x, prev, {x_r, x_w, x_k, x_v, x_a, x_g}, proj);
        r = y[0];
        w_lora = y[1];  // raw decay minus w0
        k_raw = y[2];
        v_raw = y[3];
        a_lora = y[4];
        g = y[5];
        if (layer > 0) v_lora = y[6];
    } else {
        // x + (shift(x) - x) * x_r, ... in one pass: (B, T, C) each
        const std::vector<Var> mixed =
            fused::token_mix(x, prev, {x_r, x_w, x_k, x_v, x_a, x_g});
        const Var &xr = mixed[0], &xw = mixed[1], &xk = mixed[2], &xv = mixed[3],
                  &xa = mixed[4], &xg = mixed[5];
        r = ag::linear(xr, receptance->weight);                    // (B, T, C)
        w_lora = ag::matmul(ag::tanh(ag::matmul(xw, w1)), w2);     // raw decay minus w0
        k_raw = ag::linear(xk, key->weight);
        v_raw = ag::linear(xv, value->weight);
        a_lora = lora(xa, a1, a2);
        g = ag::matmul(ag::sigmoid(ag::matmul(xg, g1)), g2);
        if (layer > 0) v_lora = lora(xv, v1, v2);
    }
    if (layer == 0) v_first = v_raw;

    // w = w0 + w_lora, a = sigmoid(a0 + a_lora), kk = normalize(k k_k) per head,
    // k = k (1 + (a - 1) k_a), v mixed towards v_first (layers > 0); the recurrence's -kk, kk a.
    // Then the recurrence (on CUDA one record whose backward runs the prep's inside it).
    const fused::Rwkv7PrepWkv wkv = fused::rwkv7_prep_wkv7(
        r, w_lora, k_raw, v_raw, a_lora, v_lora, layer == 0 ? Var() : v_first, w0, a0, v0, k_k,
        k_a, head_size, state_in);
    // (ln_x(y) + (Σ_head r k r_k) v) g, ln_x the GroupNorm per head
    Var z = fused::rwkv7_out(wkv.y, r, wkv.k, wkv.v, r_k, ln_x->weight, ln_x->bias, g, ln_x->eps);
    return {ag::linear(z, output->weight), wkv.state};
}

Rwkv7ChannelMix::Rwkv7ChannelMix(const Rwkv7Config& cfg, DType dtype) {
    const int64_t c = cfg.n_embd, f = cfg.dim_ffn;
    x_k = register_parameter("x_k", Tensor::zeros(Shape{1, 1, c}, dtype));
    key = register_module("key", std::make_shared<Rwkv7Weight>(Shape{f, c}, dtype));
    value = register_module("value", std::make_shared<Rwkv7Weight>(Shape{c, f}, dtype));
}

Var Rwkv7ChannelMix::forward(const Var& x, const Var& prev) const {
    return project(fused::token_mix(x, prev, {x_k})[0]);
}

Var Rwkv7ChannelMix::project(const Var& kx) const {
    // relu(kx keyᵀ)^2 valueᵀ, keeping relu(.)^2 (4C wide) for the backward, not the key output
    // as well (recompute.h)
    return recompute::relu2_mlp(kx, key->weight, value->weight);
}

Rwkv7Block::Rwkv7Block(const Rwkv7Config& cfg, int layer_id, DType dtype) : layer(layer_id) {
    const int64_t c = cfg.n_embd;
    ln1 = register_module("ln1", std::make_shared<nn::LayerNorm>(c, kLnEps, true, dtype));
    ln2 = register_module("ln2", std::make_shared<nn::LayerNorm>(c, kLnEps, true, dtype));
    if (layer_id == 0)
        ln0 = register_module("ln0", std::make_shared<nn::LayerNorm>(c, kLnEps, true, dtype));
    att = register_module("att", std::make_shared<Rwkv7TimeMix>(cfg, layer_id, dtype));
    ffn = register_module("ffn", std::make_shared<Rwkv7ChannelMix>(cfg, dtype));
}

// ---- the model --------------------------------------------------------------------------------

Rwkv7::Rwkv7(const Rwkv7Config& cfg, DType dtype) : cfg_(cfg), dtype_(dtype) {
    cfg.validate();
    if (dtype != DType::f32 && dtype != DType::f64)
        fail("Rwkv7: parameters must be f32 or f64, got {}", dtype_name(dtype));
    emb =
        register_module("emb", std::make_shared<Rwkv7Weight>(Shape{cfg.vocab, cfg.n_embd}, dtype));
    blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
    for (int64_t l = 0; l < cfg.n_layer; ++l)
        blocks->push_back(std::make_shared<Rwkv7Block>(cfg, static_cast<int>(l), dtype));
    ln_out =
        register_module("ln_out", std::make_shared<nn::LayerNorm>(cfg.n_embd, kLnEps, true, dtype));
    head =
        register_module("head", std::make_shared<Rwkv7Weight>(Shape{cfg.vocab, cfg.n_embd}, dtype));
    detail::init_deterministic(*this);
}

void Rwkv7::set_lean_activations(bool on) {
    lean_ = on;
    for (size_t l = 0; l < blocks->size(); ++l) block(l).att->lean = on;
}

void Rwkv7::check_state(const Rwkv7State& s, int64_t batch) const {
    const auto nl = static_cast<size_t>(cfg_.n_layer);
    if (s.att_shift.size() != nl || s.wkv.size() != nl || s.ffn_shift.size() != nl)
        fail("Rwkv7: state has {}/{}/{} att_shift/wkv/ffn_shift entries, the model has {} layers",
             s.att_shift.size(), s.wkv.size(), s.ffn_shift.size(), nl);
    const int64_t c = cfg_.n_embd, h = cfg_.n_head(), n = cfg_.head_size;
    const Shape shift{batch, c}, wkv{batch, h, n, n};
    auto check = [&](const Tensor& t, const Shape& want, const char* what, size_t l) {
        if (!t.defined() || t.shape() != want || t.dtype() != dtype_)
            fail("Rwkv7: state {}[{}] must be {}{} for ids of batch {}, got {}", what, l,
                 dtype_name(dtype_), want.str(), batch, t.defined() ? t.desc() : "undefined");
    };
    for (size_t l = 0; l < nl; ++l) {
        check(s.att_shift[l], shift, "att_shift", l);
        check(s.wkv[l], wkv, "wkv", l);
        check(s.ffn_shift[l], shift, "ffn_shift", l);
    }
}

void Rwkv7::check_ids(const Tensor& ids) const {
    if (!ids.defined() || ids.ndim() != 2 ||
        (ids.dtype() != DType::i32 && ids.dtype() != DType::i64))
        fail("Rwkv7: ids must be (B, T) i32 or i64, got {}",
             ids.defined() ? ids.desc() : "undefined");
    if (ids.size(0) < 1 || ids.size(1) < 1) fail("Rwkv7: ids {} is empty", ids.desc());
}

Var Rwkv7::forward(const Tensor& ids, Rwkv7State* state) const {
    check_ids(ids);
    Var x = ag::embedding(emb->weight, ids);                           // (B, T, C)
    return ag::linear(forward_hidden(x, state), head->weight);         // (B, T, V)
}

Var Rwkv7::forward_loss(const Tensor& ids, const Tensor& targets) const {
    if (!targets.defined() || targets.shape() != ids.shape())
        fail("Rwkv7: targets must have the shape of ids {}, got {}", ids.desc(),
             targets.defined() ? targets.desc() : "undefined");
    if (emb->weight.value().device().is_cuda()) {  // the head and the loss fused: no logits
        check_ids(ids);
        Var h = forward_hidden(ag::embedding(emb->weight, ids));  // (B, T, C)
        return ag::head_cross_entropy(h, head->weight, targets, /*l2wrap=*/true);
    }
    Var logits = forward(ids);  // (B, T, V)
    return ag::l2wrap(ag::cross_entropy(logits, targets), logits);
}

Var Rwkv7::Residual::sum() const { return pending.defined() ? ag::add(x, pending) : x; }

namespace {
// ln(x + pending) and the sum, in one pass on CUDA (the pending add's gradient then rides on
// the norm's backward instead of costing an add kernel per layer and direction).
fused::AddNorm add_norm(const Var& x, const Var& pending, const nn::LayerNorm& ln) {
    if (!pending.defined()) return {x, ln.forward(x)};
    return fused::add_layer_norm(x, pending, ln.weight, ln.bias, ln.eps);
}
}  // namespace

// One block: the residual stream (B, T, C) -> the stream after the time mix, with the channel
// mix's output pending. v_first is set by layer 0 and read by the others; with a state, the
// block's entries are read and replaced.
Rwkv7::Residual Rwkv7::block_forward(const Rwkv7Block& blk, Residual in, Var& v_first,
                                     Rwkv7State* state, size_t l) const {
    if (blk.ln0) in = {blk.ln0->forward(in.sum()), Var()};
    const fused::AddNorm pre = add_norm(in.x, in.pending, *blk.ln1);
    const Var& xa = pre.normed;
    Var prev_a, s_in, prev_f;
    if (state) {
        prev_a = Var(state->att_shift[l]);
        s_in = Var(state->wkv[l]);
        prev_f = Var(state->ffn_shift[l]);
    }
    Rwkv7TimeMix::Out att = blk.att->forward(xa, prev_a, v_first, s_in);
    // Without a state, ln2 and the channel mix's token mix in one pass each way on CUDA, ln2's
    // output never stored (L12 C768 H100 graph: B16 T512 279.5k -> 280.7k tokens/s, 8.4 -> 8.3
    // GiB; B8 T4096 306.3k -> 311.5k, 24.5 -> 24.0 GiB). With a state ffn_shift needs it.
    if (!state) {
        const fused::AddNormMix mid = fused::add_layer_norm_mix(
            pre.sum, att.y, blk.ln2->weight, blk.ln2->bias, blk.ln2->eps, blk.ffn->x_k, Var());
        return {mid.sum, blk.ffn->project(mid.mixed)};
    }
    const fused::AddNorm mid = add_norm(pre.sum, att.y, *blk.ln2);  // x + att.y and ln2 of it
    const Var& xf = mid.normed;
    Residual out{mid.sum, blk.ffn->forward(xf, prev_f)};
    if (state) {  // the old tensors stay alive in the Vars above (the tape may need them)
        state->att_shift[l] = last_row(xa);
        state->wkv[l] = att.state.value();
        state->ffn_shift[l] = last_row(xf);
    }
    return out;
}

// Activation checkpointing: the block runs without a tape and only its inputs are kept; its
// backward runs the block again with a tape (recorded on the thread's tape, which the outer
// backward has already taken) and back-propagates through it at once. Parameter gradients
// accumulate into the parameters as usual; the input gradients go back to the outer tape.
Var Rwkv7::block_checkpointed(const Rwkv7Block& blk, const Var& x, Var& v_first) const {
    const bool first = blk.layer == 0;
    const Tensor xv = x.value(), vfv = first ? Tensor() : v_first.value();
    std::vector<Tensor> outs;
    {
        ag::NoGradGuard no_grad;
        Var vf = first ? Var() : Var(vfv);
        outs.push_back(block_forward(blk, {Var(xv), Var()}, vf, nullptr, 0).sum().value());
        if (first) outs.push_back(vf.value());
    }
    std::vector<Var> inputs{x};
    if (!first) inputs.push_back(v_first);
    std::vector<Var> res = ag::record(
        "rwkv7_block_checkpoint", std::move(inputs), std::move(outs),
        [this, &blk, xv, vfv, first](GradIO& io) {
            Var xi(xv, true), vfi = first ? Var() : Var(vfv, true);
            Var vf = vfi;
            const Var y = block_forward(blk, {xi, Var()}, vf, nullptr, 0).sum();
            Var total = ag::sum(ag::mul(y, Var(io.gy(0))), {}, false);
            if (first) total = ag::add(total, ag::sum(ag::mul(vf, Var(io.gy(1))), {}, false));
            ag::backward(total);
            if (io.needs(0)) io.set(0, xi.grad());
            if (!first && io.needs(1)) io.set(1, vfi.grad());
        });
    if (first) v_first = res[1];
    return res[0];
}

Var Rwkv7::forward_hidden(const Var& input, Rwkv7State* state) const {
    if (input.ndim() != 3 || input.size(2) != cfg_.n_embd || input.size(0) < 1 || input.size(1) < 1)
        fail("Rwkv7: embeddings must be (B, T, C = {}), got {}", cfg_.n_embd, input.value().desc());
    if (state) check_state(*state, input.size(0));
    Var v_first;
    const bool checkpoint = checkpointing_ && !state && ag::grad_enabled();
    const ag::DeferWeightGrads defer(!checkpoint && defer_weight_grads(input));
    Residual res{input, Var()};
    for (size_t l = 0; l < blocks->size(); ++l)
        res = checkpoint ? Residual{block_checkpointed(block(l), res.sum(), v_first), Var()}
                         : block_forward(block(l), res, v_first, state, l);
    return add_norm(res.x, res.pending, *ln_out).normed;  // (B, T, C)
}

Tensor Rwkv7::step(const Tensor& ids, Rwkv7State& state) const {
    if (!ids.defined() || ids.ndim() != 1)
        fail("Rwkv7::step: ids must be (B) i32 or i64, got {}",
             ids.defined() ? ids.desc() : "undefined");
    ag::NoGradGuard no_grad;
    const int64_t b = ids.size(0);
    Var logits = forward(ids.reshape(Shape{b, 1}), &state);  // (B, 1, V)
    return logits.value().reshape(Shape{b, cfg_.vocab});
}

// ---- optimizer groups -------------------------------------------------------------------------

std::vector<optim::ParamGroup> rwkv7_param_groups(const Rwkv7& m, double weight_decay) {
    optim::ParamGroup lr_1x{.lr_scale = 1.0, .weight_decay = 0.0, .name = "lr_1x"};
    optim::ParamGroup lr_2x{.lr_scale = 2.0, .weight_decay = 0.0, .name = "lr_2x"};
    optim::ParamGroup lr_decay{.lr_scale = 1.0, .weight_decay = weight_decay, .name = "lr_decay"};
    for (const auto& [name, p] : m.named_parameters()) {
        int big_dims = 0;  // len(p.squeeze().shape)
        for (int d = 0; d < p.ndim(); ++d) big_dims += p.size(d) != 1 ? 1 : 0;
        if (name.find("att.w0") != std::string::npos)
            lr_2x.params.push_back(p);
        else if (big_dims >= 2 && weight_decay > 0 && name.find(".weight") != std::string::npos)
            lr_decay.params.push_back(p);
        else
            lr_1x.params.push_back(p);
    }
    std::vector<optim::ParamGroup> groups;
    for (auto* g : {&lr_1x, &lr_2x, &lr_decay})
        if (!g->params.empty()) groups.push_back(std::move(*g));
    return groups;
}

}  // namespace goose::models
