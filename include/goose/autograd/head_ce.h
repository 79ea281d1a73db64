// Differentiable fused LM head + cross-entropy (ops/head_ce.h): the mean loss of x wᵀ against
// targets, optionally with L2Wrap's extra gradient, as one tape entry. The op computes the
// gradients of x and w with the loss (they are linear in the upstream gradient, which the
// backward applies), so the (rows, V) logits are never kept.
#pragma once
#include "goose/autograd/tape.h"

namespace goose::ag {

// x (..., C), w (V, C), targets (...) integer ids. Returns the 0-d mean loss.
Var head_cross_entropy(const Var& x, const Var& w, const Tensor& targets, bool l2wrap);

}  // namespace goose::ag
