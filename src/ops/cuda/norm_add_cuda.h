// layer_norm with a residual add on CUDA (ops/cuda/norm.cu), for models::fused::add_layer_norm:
// the forward normalises sum = x + a and returns sum too; the backward adds the residual's own
// gradient to dx. Each returns false, launching nothing, where its vector kernels do not take the
// tensors (f32 or bf16, C a multiple of 4 or 8 up to 512 or 1024, 16-byte aligned); callers then
// compose the plain ops.
#pragma once
#include "goose/core/tensor.h"
#include "goose/ops/norm.h"

namespace goose::ops {

struct AddNormForward {
    Tensor sum, y, mean, rstd;  // mean, rstd f32, one per row
};

bool add_layer_norm_forward_cuda(const Tensor& x, const Tensor& a, const Tensor& w,
                                 const Tensor& b, double eps, AddNormForward& out);

// out.dx = the layer_norm dx of gy + gres; out.dw, out.db as layer_norm_backward.
bool layer_norm_backward_res_cuda(const Tensor& gy, const Tensor& gres, const Tensor& x,
                                  const Tensor& w, const Tensor& mean, const Tensor& rstd,
                                  bool need_dw, bool need_db, NormGrads& out);

}  // namespace goose::ops
