// Differentiable sequence ops: embedding lookup and RWKV's token shift.
#pragma once
#include "goose/autograd/tape.h"
#include "goose/ops/sequence.h"

namespace goose::ag {

// weight (V, C), ids (i32 or i64, any shape up to 4 dims) -> (ids.shape..., C). An id outside
// [0, V) is a goose::Error naming the id, its position and V. Gradient to weight only.
Var embedding(const Var& weight, const Tensor& ids);

// x (B, T, C), prev (B, C) or undefined (zeros) -> (B, T, C): y[:, 0] = prev,
// y[:, t] = x[:, t - 1]. Gradients to x and prev.
Var token_shift(const Var& x, const Var& prev = Var());

}  // namespace goose::ag
