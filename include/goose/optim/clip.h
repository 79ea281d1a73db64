// Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_).
#pragma once
#include <vector>

#include "goose/autograd/var.h"

namespace goose::optim {

// The L2 norm over every defined gradient of params (computed in double; parameters without a
// gradient are skipped). When it exceeds max_norm (>= 0), every gradient is scaled in place by
// max_norm / (norm + 1e-6). Returns the norm before clipping (inf or NaN when a gradient holds
// one: inf scales gradients by 0, NaN leaves them as they are).
double clip_grad_norm(const std::vector<Var>& params, double max_norm);

// The global L2 norm alone (no clipping).
double grad_norm(const std::vector<Var>& params);

}  // namespace goose::optim
