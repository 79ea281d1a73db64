// Differentiable causal scaled dot-product attention.
#pragma once
#include "goose/autograd/tape.h"
#include "goose/ops/attention.h"

namespace goose::ag {

// q, k, v (B, H, T, N) -> (B, H, T, N): each query t attends to keys s <= t with weights
// softmax(scale q[t]·k[s]); scale 0 means 1/sqrt(N).
Var attention(const Var& q, const Var& k, const Var& v, double scale = 0);

}  // namespace goose::ag
