// Fused differentiable functions of the models' elementwise glue (internal to src/models): one
// pass over the activations where the composed ops would make several, each with a hand-written
// backward. They run when the inputs are on the fast CPU backend; otherwise (the reference
// backend) callers get the same function composed from ag:: ops. f32 and f64.
#pragma once
#include <vector>

#include "goose/autograd/var.h"

namespace goose::models::fused {

// token_shift followed by one lerp per mixing vector: out[m] = x + (shift(x) - x) mu[m], where
// shift(x)[:, t] = x[:, t-1] and shift(x)[:, 0] = prev (zeros when undefined).
// x (B, T, C), prev (B, C) or undefined, mu[m] (1, 1, C).
std::vector<Var> token_mix(const Var& x, const Var& prev, const std::vector<Var>& mu);

// token_mix's backward without a tape, for callers that rebuild the mixes themselves
// (recompute::mix_project): from the gradients of its outputs given one per consumer, (mix,
// gradient) pairs in any order; those of one mix are summed (on CUDA inside the kernel as it
// reads them, in f32; elsewhere with ops::binary add, in the given order), a mix with none has a
// zero gradient. Returns dx (when need_x), dprev (when prev is defined) and every dmu.
// x (B, T, C), prev (B, C) or undefined, mu[m] (1, 1, C), each gradient shaped as x; tensors
// as token_mix takes them (CUDA f32 / bf16, CPU f32 / f64).
struct MixGrad {
    size_t mix;
    Tensor g;
};
struct TokenMixGrads {
    Tensor dx, dprev;
    std::vector<Tensor> dmu;  // shaped as mu
};
TokenMixGrads token_mix_backward(const Tensor& x, const Tensor& prev,
                                 const std::vector<Tensor>& mu, const std::vector<MixGrad>& grads,
                                 bool need_x = true);

// RWKV-7 time mix between the projections and the WKV recurrence (every tensor (B, T, C),
// heads of head_size channels; the parameters (1, 1, C)):
//   w = w0 + w_lora                                  (the raw decay)
//   a = sigmoid(a0 + a_lora)
//   kk = l2_normalize per head of k_raw * k_k       (eps 1e-12)
//   k = k_raw * (1 + (a - 1) * k_a)
//   v = v_raw                                        (v_lora undefined: layer 0)
//     = v_raw + (v_first - v_raw) * sigmoid(v0 + v_lora)
//   the recurrence's a = -kk and b = kk * a.
struct Rwkv7Prep {
    Var w, k, v, a, b;
};
Rwkv7Prep rwkv7_prep(const Var& w_lora, const Var& k_raw, const Var& v_raw, const Var& a_lora,
                     const Var& v_lora, const Var& v_first, const Var& w0, const Var& a0,
                     const Var& v0, const Var& k_k, const Var& k_a, int64_t head_size);

// rwkv7_prep followed by the WKV-7 recurrence of its outputs: ag::wkv7_heads(r, w, k, v, a, b,
// head_size, state_in) (y (B, T, H, N), the state after the last step) and the prep's k and v
// (rwkv7_out takes them). On CUDA for f32 / bf16 heads of 64 from T 512 one record whose
// backward runs the prep backward as the epilogue of the recurrence's last backward kernel
// (wkv7_prep_cuda.h); the two records composed elsewhere.
struct Rwkv7PrepWkv {
    Var y, state, k, v;
};
Rwkv7PrepWkv rwkv7_prep_wkv7(const Var& r, const Var& w_lora, const Var& k_raw, const Var& v_raw,
                             const Var& a_lora, const Var& v_lora, const Var& v_first,
                             const Var& w0, const Var& a0, const Var& v0, const Var& k_k,
                             const Var& k_a, int64_t head_size, const Var& state_in);

// RWKV-7 time mix after the recurrence: (ln_x(y) + (Σ_heads r k r_k) v) * g, with ln_x the
// group norm over heads (weight ln_w, bias ln_b, eps). y (B, T, H, N), r, k, v, g (B, T, C),
// r_k (H, N), ln_w, ln_b (C) -> (B, T, C).
Var rwkv7_out(const Var& y, const Var& r, const Var& k, const Var& v, const Var& r_k,
              const Var& ln_w, const Var& ln_b, const Var& g, double eps);

// A residual add followed by a layer norm of the sum: {x + a, layer_norm(x + a, w, b, eps)}.
// One pass on CUDA (whose backward also folds the sum's own gradient into the norm's dx);
// composed from ag::add and ag::layer_norm elsewhere. x, a (..., C); w, b (C) or undefined.
struct AddNorm {
    Var sum, normed;
};
AddNorm add_layer_norm(const Var& x, const Var& a, const Var& w, const Var& b, double eps);

// add_layer_norm followed by a one-vector token_mix of the normed sum (the RWKV-7 channel mix's
// input): {x + a, n + (shift(n) - n) mu} with n = layer_norm(x + a, w, b, eps). One pass in each
// direction on CUDA, which keeps n in neither (its backward rebuilds n from the sum and the row
// statistics); composed from add_layer_norm and token_mix elsewhere. x, a (B, T, C); w, b (C) or
// undefined; mu (1, 1, C); prev (B, C) or undefined (zeros).
struct AddNormMix {
    Var sum, mixed;
};
AddNormMix add_layer_norm_mix(const Var& x, const Var& a, const Var& w, const Var& b, double eps,
                              const Var& mu, const Var& prev);

// One LSTM cell update from the pre-activation gates (B, 4C), in torch's order i, f, g, o, and
// the previous cell (B, C): c = σ(f) c_prev + σ(i) tanh(g), h = σ(o) tanh(c).
struct LstmCell {
    Var h, c;
};
LstmCell lstm_cell(const Var& gates, const Var& c_prev);

}  // namespace goose::models::fused
