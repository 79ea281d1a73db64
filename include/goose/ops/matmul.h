// Matrix products: batched matmul with transpose flags, and linear (x wᵀ + b). f32 and f64;
// linear also takes bf16 weights with f32 x (inference: half the weight bytes per token).
// On CUDA (cuBLASLt): f32 (exact fp32, no TF32), f64, and bf16 operands with fp32 accumulation
// and bf16 results (matmul, and linear with bf16 x and w, gradients included).
#pragma once
#include "goose/core/tensor.h"

namespace goose::ops {

// Gradients of one call; a gradient that was not asked for is undefined.
struct MatmulGrads {
    Tensor a, b;
};
struct LinearGrads {
    Tensor x, w, b;
};

// y = op(a) op(b), op(m) = mᵀ when its flag is set, over the last two dims:
// a (..., M, K) [(..., K, M) when trans_a], b (..., K, N) [(..., N, K) when trans_b]
// -> y (..., M, N). Inputs have 2 to 4 dims; the batch dims of b equal a's, or b is 2-D and
// shared by every batch of a (then db sums over the batch). Any strides.
Tensor matmul_forward(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// gy (..., M, N) -> da (shape of a) where need_a, db (shape of b) where need_b.
MatmulGrads matmul_backward(const Tensor& gy, const Tensor& a, const Tensor& b, bool trans_a,
                            bool trans_b, bool need_a = true, bool need_b = true);

// y = x wᵀ + b: x (..., Cin), w (Cout, Cin) (PyTorch layout), b (Cout) or undefined
// -> y (..., Cout). x, w and b share a dtype (f32 or f64), or w is bf16 with f32 x and b
// (widened to f32 on the fly: y is f32).
Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());
// gy (..., Cout) -> dx, dw, db (db only when has_bias and need_b). A bf16 w with f32 x gives dx
// and db only (computed with w widened to f32): need_w there is an error (bf16 x and w on CUDA
// give all three, in bf16).
LinearGrads linear_backward(const Tensor& gy, const Tensor& x, const Tensor& w, bool has_bias,
                            bool need_x = true, bool need_w = true, bool need_b = true);

Tensor matmul_forward_ref(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);
MatmulGrads matmul_backward_ref(const Tensor& gy, const Tensor& a, const Tensor& b, bool trans_a,
                                bool trans_b, bool need_a, bool need_b);
Tensor linear_forward_ref(const Tensor& x, const Tensor& w, const Tensor& b);
LinearGrads linear_backward_ref(const Tensor& gy, const Tensor& x, const Tensor& w, bool has_bias,
                                bool need_x, bool need_w, bool need_b);

Tensor matmul_forward_cpu(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);
MatmulGrads matmul_backward_cpu(const Tensor& gy, const Tensor& a, const Tensor& b, bool trans_a,
                                bool trans_b, bool need_a, bool need_b);
Tensor linear_forward_cpu(const Tensor& x, const Tensor& w, const Tensor& b);
LinearGrads linear_backward_cpu(const Tensor& gy, const Tensor& x, const Tensor& w, bool has_bias,
                                bool need_x, bool need_w, bool need_b);

}  // namespace goose::ops
