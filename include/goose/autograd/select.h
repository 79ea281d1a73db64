// Differentiable selection: where and masked_fill (masks are u8 tensors, not differentiated).
#pragma once
#include "goose/autograd/tape.h"
#include "goose/ops/select.h"

namespace goose::ag {

// cond ? a : b; cond (u8, nonzero = take a), a and b broadcast together.
Var where(const Tensor& cond, const Var& a, const Var& b);
// mask ? value : x; mask (u8) broadcasts to x's shape.
Var masked_fill(const Var& x, const Tensor& mask, double value);

}  // namespace goose::ag
