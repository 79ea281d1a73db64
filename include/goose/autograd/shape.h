// Differentiable shape and copy functions: concat, split, slice, reshape, transpose, permute,
// contiguous. reshape/transpose/permute return views of their input where possible (free);
// every gradient they hand back is a packed tensor of the input's shape.
#pragma once
#include <vector>

#include "goose/autograd/tape.h"
#include "goose/ops/shape.h"

namespace goose::ag {

// Shapes equal except on axis; the output is packed. Gradient: the slices of gy.
Var concat(const std::vector<Var>& xs, int axis);
// Packed copies of consecutive pieces along axis; sizes sum to x.size(axis).
std::vector<Var> split(const Var& x, const std::vector<int64_t>& sizes, int axis);
// Packed copy of x[start:end:step] along axis (Python-style negative bounds, clamped).
Var slice(const Var& x, int axis, int64_t start, int64_t end, int64_t step = 1);
// One size may be -1. A view when x is packed, else a packed copy.
Var reshape(const Var& x, const Shape& shape);
Var transpose(const Var& x, int a, int b);          // a view
Var permute(const Var& x, std::vector<int> order);  // a view: y's axis i is x's axis order[i]
Var contiguous(const Var& x);                       // x's tensor if packed, else a packed copy
// x converted to dtype (x itself when it has it); the gradient is converted back. Mixed
// precision: f32 master weights cast to bf16 for the forward.
Var cast(const Var& x, DType dtype);

}  // namespace goose::ag
