// Differentiable WKV-7 recurrence (see ops/wkv7.h for the math and shapes).
#pragma once
#include "goose/autograd/tape.h"
#include "goose/ops/wkv7.h"

namespace goose::ag {

struct Wkv7Result {
    Var y;      // (B, T, H, N)
    Var state;  // (B, H, N, N): the state after the last step
};

// w is the raw decay (the soft clamp is inside). state_in undefined = zeros. Gradients flow to
// every input and, through `state`, across calls (truncated back-propagation through time).
Wkv7Result wkv7(const Var& r, const Var& w, const Var& k, const Var& v, const Var& a, const Var& b,
                const Var& state_in = Var());

// The same on (B, T, C) inputs cut into heads of head_size channels (y is (B, T, H, N)). With
// no reshape entries between the inputs and the recurrence, its backward sees the gradients
// that r, k and v have already gathered (GradIO::prior) and adds them in its own pass.
Wkv7Result wkv7_heads(const Var& r, const Var& w, const Var& k, const Var& v, const Var& a,
                      const Var& b, int64_t head_size, const Var& state_in = Var());

}  // namespace goose::ag
