// Differentiable reductions: sum, mean (over a set of axes) and max (along one axis).
#pragma once
#include <vector>

#include "goose/autograd/tape.h"
#include "goose/ops/reduce.h"

namespace goose::ag {

// axes: empty means every axis (a 0-d result, or all-ones shape with keepdim); negative axes
// count from the end; repeated or out-of-range axes throw goose::Error.
Var sum(const Var& x, std::vector<int> axes = {}, bool keepdim = false);
Var mean(const Var& x, std::vector<int> axes = {}, bool keepdim = false);
// The maximum values along axis; the gradient goes to the first index of each maximum.
Var max(const Var& x, int axis, bool keepdim = false);

}  // namespace goose::ag
