// Memory-lean differentiable functions of the RWKV-7 blocks (internal to src/models): each keeps
// only its cheap-to-rebuild inputs for the backward and recomputes the wide intermediate there,
// instead of the tape holding it from the forward to the backward. Values and gradients are
// exactly those of the composed functions (the same ops run on the same inputs); the cost is one
// extra elementwise pass in the backward. Any device and dtype the composed ops support.
#pragma once
#include <cstddef>
#include <optional>
#include <vector>

#include "goose/autograd/var.h"
#include "goose/ops/unary.h"

namespace goose::models::recompute {

// A projection of one token mix: y = mix[mix] wᵀ (transposed, a Linear weight (out, C)) or
// y = mix[mix] w (w (C, out), a LoRA's first matrix). With `up` (a LoRA's second matrix
// (rank, out2)) the whole LoRA chain: y = act(mix[mix] w) up, act tanh / sigmoid or none.
struct MixProjection {
    size_t mix;
    Var w;
    bool transposed;
    Var up = Var();
    std::optional<UnaryOp> act = std::nullopt;
};

// fused::token_mix(x, prev, mu) followed by the projections, returning their outputs in order.
// Keeps x and prev (not the B·T·C mixes); the backward rebuilds the mixes. On CUDA the LoRA
// chains (projections with `up`) run on side streams beside the others (cuda::run_parallel), in
// the forward and in the backward; elsewhere in order. Same values and gradients as the composed
// ops (the same kernels on the same inputs).
std::vector<Var> mix_project(const Var& x, const Var& prev, const std::vector<Var>& mu,
                             const std::vector<MixProjection>& proj);

// relu(h)^2 wᵀ (w a Linear weight (out, F)): keeps h, not relu(h)^2.
Var relu2_linear(const Var& h, const Var& w);

}  // namespace goose::models::recompute
