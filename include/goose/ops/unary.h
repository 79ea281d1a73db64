// Elementwise unary ops: y = f(x), dx = gy * f'(x). f32 and f64 (and bf16 on CUDA), any strides.
#pragma once
#include "goose/core/tensor.h"

namespace goose {

enum class UnaryOp : uint8_t {
    exp, log, tanh, sigmoid, softplus, relu, relu2, gelu_tanh, silu, neg, sqrt, square
};
const char* unary_name(UnaryOp op);  // the name in op_list.h

namespace ops {
// softplus follows PyTorch (beta 1, threshold 20: x > 20 gives x); relu2 = relu(x)^2;
// gelu_tanh = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
Tensor unary_forward(UnaryOp op, const Tensor& x);
Tensor unary_backward(UnaryOp op, const Tensor& gy, const Tensor& x);  // -> dx

// dx from the output y = f(x) instead of x, for the ops whose derivative is a function of y:
// exp (y), tanh (1 - y²), sigmoid (y (1 - y)), relu (y > 0), relu2 (2 √y). A backward may then
// keep y alone (relu2: the channel mix's relu(k)², which its next product needs anyway).
bool unary_has_output_derivative(UnaryOp op);
Tensor unary_backward_from_output(UnaryOp op, const Tensor& gy, const Tensor& y);  // -> dx

Tensor unary_forward_ref(UnaryOp op, const Tensor& x);
Tensor unary_backward_ref(UnaryOp op, const Tensor& gy, const Tensor& x);
Tensor unary_backward_from_output_ref(UnaryOp op, const Tensor& gy, const Tensor& y);
Tensor unary_forward_cpu(UnaryOp op, const Tensor& x);
Tensor unary_backward_cpu(UnaryOp op, const Tensor& gy, const Tensor& x);
Tensor unary_backward_from_output_cpu(UnaryOp op, const Tensor& gy, const Tensor& y);
}  // namespace ops
}  // namespace goose
