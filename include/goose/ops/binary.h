// Elementwise binary ops with NumPy broadcasting (add, sub, mul, div), scale and lerp.
// f32 and f64, any strides; all float operands of one call share a dtype; the output has the
// broadcast shape. Gradients of broadcast operands are summed back to the operand's shape.
#pragma once
#include <array>

#include "goose/core/tensor.h"

namespace goose {

enum class BinaryOp : uint8_t { add, sub, mul, div };
const char* binary_name(BinaryOp op);  // the name in op_list.h

namespace ops {
// y = a op b, broadcast together.
Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b);
// -> {da, db}: gy (of the broadcast shape) times the partial derivative, summed back to the
// shapes of a and b; an entry is undefined when its need_ flag is false. add and sub read only
// the shapes of a and b.
std::array<Tensor, 2> binary_backward(BinaryOp op, const Tensor& gy, const Tensor& a,
                                      const Tensor& b, bool need_a = true, bool need_b = true);

// y = s * x
Tensor scale_forward(const Tensor& x, double s);
Tensor scale_backward(const Tensor& gy, double s);  // -> dx = s * gy

// y = a + (b - a) * w, all three broadcast together (RWKV: x + (x_prev - x) * mu, mu (C)
// against (B, T, C)).
Tensor lerp_forward(const Tensor& a, const Tensor& b, const Tensor& w);
// -> {da, db, dw}, each summed back to its operand's shape; undefined where needs[i] is false.
std::array<Tensor, 3> lerp_backward(const Tensor& gy, const Tensor& a, const Tensor& b,
                                    const Tensor& w,
                                    std::array<bool, 3> needs = {true, true, true});

// Variants: checked arguments (gy has the broadcast shape and the operands' dtype).
Tensor binary_forward_ref(BinaryOp op, const Tensor& a, const Tensor& b);
std::array<Tensor, 2> binary_backward_ref(BinaryOp op, const Tensor& gy, const Tensor& a,
                                          const Tensor& b, bool need_a, bool need_b);
Tensor binary_forward_cpu(BinaryOp op, const Tensor& a, const Tensor& b);
std::array<Tensor, 2> binary_backward_cpu(BinaryOp op, const Tensor& gy, const Tensor& a,
                                          const Tensor& b, bool need_a, bool need_b);
Tensor scale_forward_ref(const Tensor& x, double s);
Tensor scale_forward_cpu(const Tensor& x, double s);
Tensor lerp_forward_ref(const Tensor& a, const Tensor& b, const Tensor& w);
std::array<Tensor, 3> lerp_backward_ref(const Tensor& gy, const Tensor& a, const Tensor& b,
                                        const Tensor& w, std::array<bool, 3> needs);
Tensor lerp_forward_cpu(const Tensor& a, const Tensor& b, const Tensor& w);
std::array<Tensor, 3> lerp_backward_cpu(const Tensor& gy, const Tensor& a, const Tensor& b,
                                        const Tensor& w, std::array<bool, 3> needs);
}  // namespace ops
}  // namespace goose
