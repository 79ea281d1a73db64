// Reductions: sum and mean over a set of axes, max (values and the first index of the maximum)
// along one axis, and sum_to_shape (the gradient of a broadcast operand). f32 and f64.
#pragma once
#include <span>
#include <vector>

#include "goose/core/tensor.h"

namespace goose::ops {

// axes: empty means every axis; negative axes count from the end; a repeated or out-of-range
// axis is an error. keepdim keeps each reduced axis with size 1.
Tensor sum_forward(const Tensor& x, const std::vector<int>& axes = {}, bool keepdim = false);
Tensor sum_backward(const Tensor& gy, const Shape& x_shape, const std::vector<int>& axes,
                    bool keepdim);  // -> dx: gy broadcast back to x_shape
Tensor mean_forward(const Tensor& x, const std::vector<int>& axes = {}, bool keepdim = false);
Tensor mean_backward(const Tensor& gy, const Shape& x_shape, const std::vector<int>& axes,
                     bool keepdim);

struct MaxResult {
    Tensor values;   // x's dtype
    Tensor indices;  // i64, same shape: the first index of the maximum along the axis
};
// NaN propagates: a slice holding NaN gives NaN and the index of its first NaN.
MaxResult max_forward(const Tensor& x, int axis, bool keepdim = false);
// -> dx: gy at the indices' positions along the axis, zero elsewhere.
Tensor max_backward(const Tensor& gy, const Tensor& indices, const Shape& x_shape, int axis,
                    bool keepdim);

// Sums g over the dims that broadcasting expanded to reach g's shape from `shape` (which must
// broadcast to g's shape), giving a tensor of `shape`.
Tensor sum_to_shape(const Tensor& g, const Shape& shape);
// The axes of `from` that sum_to_shape(g of shape `from`, to) sums over (sorted).
std::vector<int> broadcast_axes(const Shape& to, const Shape& from);

// Variants: axes normalised (sorted, unique, in range; may be empty: nothing reduced). The
// result keeps every axis (keepdim shape); y = scale * sum.
Tensor sum_forward_ref(const Tensor& x, std::span<const int> axes, double scale);
Tensor sum_forward_cpu(const Tensor& x, std::span<const int> axes, double scale);
// gy has the keepdim shape (x_shape with 1 on reduced axes): dx = scale * gy broadcast.
Tensor sum_backward_ref(const Tensor& gy, const Shape& x_shape, double scale);
Tensor sum_backward_cpu(const Tensor& gy, const Shape& x_shape, double scale);
// axis normalised; values and indices keep the axis with size 1.
MaxResult max_forward_ref(const Tensor& x, int axis);
MaxResult max_forward_cpu(const Tensor& x, int axis);
// gy and indices (i64) in the keepdim shape, indices in range.
Tensor max_backward_ref(const Tensor& gy, const Tensor& indices, const Shape& x_shape, int axis);
Tensor max_backward_cpu(const Tensor& gy, const Tensor& indices, const Shape& x_shape, int axis);
// sum_forward_*(g, broadcast_axes(shape, g.shape()), 1) viewed as `shape`.
Tensor sum_to_shape_ref(const Tensor& g, const Shape& shape);
Tensor sum_to_shape_cpu(const Tensor& g, const Shape& shape);

}  // namespace goose::ops
