// Differentiable matrix products: matmul (batched, transpose flags) and linear.
#pragma once
#include "goose/autograd/tape.h"
#include "goose/ops/matmul.h"

namespace goose::ag {

// op(a) op(b) over the last two dims: a (..., M, K) [(..., K, M) when trans_a], b (..., K, N)
// [(..., N, K) when trans_b] -> (..., M, N). 2 to 4 dims; b has a's batch dims or is 2-D
// (shared by every batch of a).
Var matmul(const Var& a, const Var& b, bool trans_a = false, bool trans_b = false);

// x (..., Cin), w (Cout, Cin), optional bias (Cout) -> x wᵀ + b (..., Cout).
Var linear(const Var& x, const Var& w, const Var& b = Var());

}  // namespace goose::ag
