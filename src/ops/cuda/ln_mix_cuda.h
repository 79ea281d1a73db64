// add_layer_norm followed by a one-vector token_mix on CUDA (ops/cuda/ln_mix.cu), for
// models::fused::add_layer_norm_mix: sum = x + a, n = layer_norm(sum), mixed = n + (shift(n) - n)
// mu, without storing n (the backward rebuilds it from sum and the row statistics).
#pragma once
#include "goose/core/tensor.h"

namespace goose::ops {

struct LnMixForward {
    Tensor sum, mixed, mean, rstd;  // mean, rstd f32, one per row
};

// x, a (B, T, C) f32 or bf16; w, b (C) or undefined; mu (C elements); prev (B, C) or undefined
// (zeros). False, launching nothing, where the kernels do not take the tensors (dtype, C not a
// multiple of the 16-byte vector or above 32 x 4 vectors, unaligned data).
bool add_layer_norm_mix_forward_cuda(const Tensor& x, const Tensor& a, const Tensor& w,
                                     const Tensor& b, const Tensor& mu, const Tensor& prev,
                                     double eps, LnMixForward& out);

struct LnMixGrads {
    Tensor dsum, dw, db, dmu, dprev;  // dsum: the gradient of x (and of a)
};

// gmix, gsum: the gradients of mixed and sum. For tensors the forward took.
LnMixGrads add_layer_norm_mix_backward_cuda(const Tensor& gmix, const Tensor& gsum,
                                            const Tensor& sum, const Tensor& w, const Tensor& b,
                                            const Tensor& mu, const Tensor& prev,
                                            const Tensor& mean, const Tensor& rstd, bool need_dw,
                                            bool need_db, bool need_dmu, bool need_dprev);

}  // namespace goose::ops
