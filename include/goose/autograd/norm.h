// Differentiable normalisation over the last axis. w and b are optional: an undefined Var
// means no scale (or no shift).
#pragma once
#include "goose/autograd/tape.h"
#include "goose/ops/norm.h"

namespace goose::ag {

// x (..., C), w, b (C): PyTorch's LayerNorm over C (biased variance)
Var layer_norm(const Var& x, const Var& w, const Var& b, double eps = 1e-5);
// x (..., C) channels-last, C divisible by groups: each row's C channels in `groups`
// contiguous groups of C / groups, each normalised on its own, then the per-channel affine
// w, b (C). RWKV-7's ln_x is group_norm(x (B*T, C), H, w, b, 64e-5).
Var group_norm(const Var& x, int groups, const Var& w, const Var& b, double eps = 1e-5);
// y = x / max(||x||_2, eps) along the last axis (F.normalize)
Var l2_normalize(const Var& x, double eps = 1e-12);

}  // namespace goose::ag
