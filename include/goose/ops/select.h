// Selection with broadcasting: where (pick a or b by a u8 condition) and masked_fill (replace
// the masked elements by a constant). Float operands f32 or f64, masks u8 (nonzero = set).
#pragma once
#include <array>

#include "goose/core/tensor.h"

namespace goose::ops {

// y = cond ? a : b, cond (u8), a and b broadcast together.
Tensor where_forward(const Tensor& cond, const Tensor& a, const Tensor& b);
// -> {da, db}: gy where cond is set (da) or clear (db), summed back to a_shape and b_shape;
// an entry is undefined when its need_ flag is false.
std::array<Tensor, 2> where_backward(const Tensor& gy, const Tensor& cond, const Shape& a_shape,
                                     const Shape& b_shape, bool need_a = true, bool need_b = true);

// y = mask ? value : x; mask (u8) broadcasts to x's shape.
Tensor masked_fill_forward(const Tensor& x, const Tensor& mask, double value);
Tensor masked_fill_backward(const Tensor& gy, const Tensor& mask);  // -> dx = mask ? 0 : gy

// Variants: checked arguments.
Tensor where_forward_ref(const Tensor& cond, const Tensor& a, const Tensor& b);
std::array<Tensor, 2> where_backward_ref(const Tensor& gy, const Tensor& cond,
                                         const Shape& a_shape, const Shape& b_shape, bool need_a,
                                         bool need_b);
Tensor where_forward_cpu(const Tensor& cond, const Tensor& a, const Tensor& b);
std::array<Tensor, 2> where_backward_cpu(const Tensor& gy, const Tensor& cond,
                                         const Shape& a_shape, const Shape& b_shape, bool need_a,
                                         bool need_b);
Tensor masked_fill_forward_ref(const Tensor& x, const Tensor& mask, double value);
Tensor masked_fill_forward_cpu(const Tensor& x, const Tensor& mask, double value);

}  // namespace goose::ops
