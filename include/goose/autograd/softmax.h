// Differentiable softmax and log_softmax along the last axis.
#pragma once
#include "goose/autograd/tape.h"
#include "goose/ops/softmax.h"

namespace goose::ag {

Var softmax(const Var& x);      // (..., C) -> (..., C)
Var log_softmax(const Var& x);  // (..., C) -> (..., C)

}  // namespace goose::ag
