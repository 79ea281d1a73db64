// Differentiable losses; each returns a 0-d mean.
#pragma once
#include "goose/autograd/tape.h"
#include "goose/ops/loss.h"

namespace goose::ag {

// logits (..., V), targets (...) i32/i64 (no gradient) -> mean over the positions whose target
// is not ignore_index of -log_softmax(logits)[target] (PyTorch semantics). When every position
// is ignored: 0 with zero gradient (PyTorch returns NaN).
Var cross_entropy(const Var& logits, const Tensor& targets, int64_t ignore_index = -100);
// mean((pred - target)^2); same shapes; gradients to both
Var mse(const Var& pred, const Var& target);
// mean(max(x, 0) - x y + log1p(exp(-|x|))); same shapes; gradients to both
Var bce_with_logits(const Var& logits, const Var& targets);

}  // namespace goose::ag
