// Shape and copy ops: concat, split, slice, reshape, transpose, permute, contiguous. Every op
// returns new packed tensors (f32 or f64, any input strides); the autograd layer may use views
// instead where that is free (goose/autograd/shape.h).
#pragma once
#include <span>
#include <vector>

#include "goose/core/tensor.h"

namespace goose::ops {

// ---- argument helpers shared with the autograd layer (throw goose::Error naming `op`) ----
// Axis of x, counted from the end when negative.
int shape_axis(const char* op, const Tensor& x, int axis);
// `shape` with its one -1 (if any) resolved so that it holds x.numel() elements.
Shape resolve_reshape(const char* op, const Tensor& x, const Shape& shape);
// `order` normalised (negative axes) after checking it is a permutation of x's axes.
std::vector<int> resolve_permutation(const char* op, const Tensor& x, std::span<const int> order);
// Python-style bounds as Tensor::slice: negative start/end count from the end, then clamped
// to [0, n] (end to [start, n]); step >= 1.
struct SliceRange {
    int axis;
    int64_t start, end, step, count;  // count = elements taken along axis
};
SliceRange resolve_slice(const char* op, const Tensor& x, int axis, int64_t start, int64_t end,
                         int64_t step);

// ---- front ends ----
// xs: equal shapes except along axis (same dtype and device); y packed.
Tensor concat_forward(const std::vector<Tensor>& xs, int axis);
// The pieces of gy along axis, sizes[i] each (the gradients of the concatenated inputs).
std::vector<Tensor> concat_backward(const Tensor& gy, const std::vector<int64_t>& sizes, int axis);

// Packed copies of consecutive pieces of x along axis; sizes sum to x.size(axis).
std::vector<Tensor> split_forward(const Tensor& x, const std::vector<int64_t>& sizes, int axis);
// gys: the gradients of the pieces -> their concatenation along axis.
Tensor split_backward(const std::vector<Tensor>& gys, int axis);

// Packed copy of x.slice(axis, start, end, step) (bounds as resolve_slice).
Tensor slice_forward(const Tensor& x, int axis, int64_t start, int64_t end, int64_t step = 1);
// Zeros of x_shape with gy written into the sliced positions.
Tensor slice_backward(const Tensor& gy, const Shape& x_shape, int axis, int64_t start, int64_t end,
                      int64_t step = 1);

// Packed copy of x with a new shape of the same numel (one size may be -1).
Tensor reshape_forward(const Tensor& x, const Shape& shape);
Tensor reshape_backward(const Tensor& gy, const Shape& x_shape);  // packed, x_shape

// Packed copy of x with axes a and b swapped.
Tensor transpose_forward(const Tensor& x, int a, int b);
Tensor transpose_backward(const Tensor& gy, int a, int b);  // packed, axes swapped back

// Packed copy of x.permute(order): y's axis i is x's axis order[i].
Tensor permute_forward(const Tensor& x, std::span<const int> order);
Tensor permute_backward(const Tensor& gy, std::span<const int> order);  // inverse permutation

// Packed copy of x (always a new tensor at this level).
Tensor contiguous_forward(const Tensor& x);
Tensor contiguous_backward(const Tensor& gy);  // packed copy of gy

// ---- variants (arguments already checked and resolved by the front ends) ----
Tensor concat_forward_ref(const std::vector<Tensor>& xs, int axis);
std::vector<Tensor> split_forward_ref(const Tensor& x, const std::vector<int64_t>& sizes, int axis);
Tensor slice_forward_ref(const Tensor& x, const SliceRange& r);
Tensor slice_backward_ref(const Tensor& gy, const Shape& x_shape, const SliceRange& r);
Tensor reshape_forward_ref(const Tensor& x, const Shape& shape);
Tensor transpose_forward_ref(const Tensor& x, int a, int b);
Tensor permute_forward_ref(const Tensor& x, std::span<const int> order);
Tensor contiguous_forward_ref(const Tensor& x);

// Fast variants for CPU and CUDA tensors alike: strided copies between views (core's
// copy_strided picks the device's copy), outputs packed on the input's device.
Tensor concat_forward_strided(const std::vector<Tensor>& xs, int axis);
std::vector<Tensor> split_forward_strided(const Tensor& x, const std::vector<int64_t>& sizes, int axis);
Tensor slice_forward_strided(const Tensor& x, const SliceRange& r);
Tensor slice_backward_strided(const Tensor& gy, const Shape& x_shape, const SliceRange& r);
Tensor reshape_forward_strided(const Tensor& x, const Shape& shape);
Tensor transpose_forward_strided(const Tensor& x, int a, int b);
Tensor permute_forward_strided(const Tensor& x, std::span<const int> order);
Tensor contiguous_forward_strided(const Tensor& x);

}  // namespace goose::ops
