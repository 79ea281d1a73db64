// L2Wrap (RWKV training, spec §10.1): an identity on the loss whose backward also pushes every
// row's largest logit towards 0. Gradient only: the loss value is unchanged.
#pragma once
#include "goose/autograd/tape.h"

namespace goose::ag {

// loss (one element), logits (..., V) f32/f64 on the CPU -> loss (same value). Backward: gy goes
// to loss unchanged; each row of logits gets gy * m * 1e-4 / rows at the (first) position of its
// maximum m, rows = logits.numel() / V (B * T for (B, T, V) logits). That is the gradient of
// loss + 1e-4 / (2 rows) * sum_rows m^2 with the extra term left out of the value.
Var l2wrap(const Var& loss, const Var& logits);

// The logits gradient of l2wrap alone for an upstream gradient gy: (..., V), zero except at
// each row's argmax.
Tensor l2wrap_logits_grad(const Tensor& logits, double gy);

}  // namespace goose::ag
