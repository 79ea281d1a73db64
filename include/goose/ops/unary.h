// Elementwise unary ops: y = f(x), dx = gy * f'(x). f32 and f64, any strides.
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

Tensor unary_forward_ref(UnaryOp op, const Tensor& x);
Tensor unary_backward_ref(UnaryOp op, const Tensor& gy, const Tensor& x);
Tensor unary_forward_cpu(UnaryOp op, const Tensor& x);
Tensor unary_backward_cpu(UnaryOp op, const Tensor& gy, const Tensor& x);
}  // namespace ops
}  // namespace goose
