// CUDA kernels of the models' fused RWKV-7 glue (models/fused.h): token_mix, rwkv7_prep and
// rwkv7_out, forward and backward, f32 and bf16 (f32 arithmetic). Internal; no CUDA headers.
// Parameter gradients are summed per fixed chunk of rows, then over the chunks in order, so
// results do not depend on scheduling. Every tensor is packed and on one CUDA device.
#pragma once
#include <vector>

#include "goose/core/tensor.h"
#include "models/fused.h"

namespace goose::models::fused::cuda_kernels {

// out[m] = x + (shift(x) - x) mu[m]; x (B, T, C), prev (B, C) or undefined, mu[m] (C).
std::vector<Tensor> token_mix_forward(const Tensor& x, const Tensor& prev,
                                      const std::vector<Tensor>& mu);
// g[m]: the gradient of out[m].
TokenMixGrads token_mix_backward(const Tensor& x, const Tensor& prev,
                                 const std::vector<Tensor>& mu, const std::vector<Tensor>& g);
// From gradients given per consumer (fused.h): those of one mix summed in the kernel; over
// kMaxMixGrads gradients, the extra ones of a mix are added beforehand. dx only when need_x.
TokenMixGrads token_mix_backward(const Tensor& x, const Tensor& prev,
                                 const std::vector<Tensor>& mu, const std::vector<MixGrad>& grads,
                                 bool need_x);

// rwkv7_prep: inputs (B*T, C) rows and (C) parameters as in fused.h; vl, vf, v0 undefined at
// layer 0. Returns w, k, a, b and (gate) v.
struct PrepInputs {
    Tensor wl, kr, vr, al, vl, vf, w0, a0, v0, kk, ka;
};
std::vector<Tensor> rwkv7_prep_forward(const PrepInputs& in, int64_t head_size);
// gys: gradients of w, k, a, b, [v]. Returns the gradients of the 11 inputs in PrepInputs order
// (undefined where the input is absent).
// dvf_add (rows like vf, or undefined) is added into v_first's gradient.
std::vector<Tensor> rwkv7_prep_backward(const PrepInputs& in, const std::vector<Tensor>& gys,
                                        int64_t head_size, const Tensor& dvf_add = Tensor());

// rwkv7_out: y (B, T, H, N), r k v g (B, T, C), r_k (H, N), ln_w ln_b (C).
struct OutInputs {
    Tensor y, r, k, v, g, rk, lw, lb;
};
Tensor rwkv7_out_forward(const OutInputs& in, double eps);
// Gradients of y, r, k, v, r_k, ln_w, ln_b, g (the record's input order).
std::vector<Tensor> rwkv7_out_backward(const OutInputs& in, const Tensor& gz, double eps);

}  // namespace goose::models::fused::cuda_kernels
