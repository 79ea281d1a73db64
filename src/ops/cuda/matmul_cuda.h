// CUDA matmul and linear (cuBLASLt), called by the front end in src/ops/matmul.cpp. No CUDA
// headers here. f32 (exact fp32: no TF32), f64, and bf16 (fp32 accumulation, bf16 results).
#pragma once
#include "goose/ops/matmul.h"

namespace goose::ops {

Tensor matmul_forward_cuda(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);
MatmulGrads matmul_backward_cuda(const Tensor& gy, const Tensor& a, const Tensor& b, bool trans_a,
                                 bool trans_b, bool need_a, bool need_b);
Tensor linear_forward_cuda(const Tensor& x, const Tensor& w, const Tensor& b);
LinearGrads linear_backward_cuda(const Tensor& gy, const Tensor& x, const Tensor& w, bool has_bias,
                                 bool need_x, bool need_w, bool need_b);

}  // namespace goose::ops
