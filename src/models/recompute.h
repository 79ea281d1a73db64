// Memory-lean differentiable functions of the RWKV-7 blocks (internal to src/models): each keeps
// fewer wide tensors for the backward than the composed ops would. mix_project keeps its cheap
// inputs and rebuilds the wide intermediate in the backward (exactly the composed values and
// gradients, for one extra elementwise pass); relu2_mlp keeps one wide tensor instead of two
// and rebuilds nothing. Any device and dtype the composed ops support.
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
// Keeps x and prev (not the B·T·C mixes); the backward rebuilds the mixes (for the weight
// gradients) and hands the projections' input gradients to fused::token_mix_backward, which
// sums those of one mix as it reads them (no add pass, no tape). On CUDA the LoRA chains
// (projections with `up`) run on side streams beside the others (cuda::run_parallel), in the
// forward and in the backward; elsewhere in order. Same values and gradients as the composed
// ops (the same kernels on the same inputs), but for the rounding of two gradients of one mix
// summed in f32 on CUDA (the composed ops round their sum to the dtype first).
std::vector<Var> mix_project(const Var& x, const Var& prev, const std::vector<Var>& mu,
                             const std::vector<MixProjection>& proj);

// relu(x w_inᵀ)² w_outᵀ, the channel mix's two products (w_in (F, C), w_out (C, F), Linear
// weights): keeps x and relu(x w_inᵀ)² (the second product's weight gradient needs it), not
// h = x w_inᵀ as well: h's gradient comes from the output, d relu(h)²/dh = 2 relu(h) =
// 2 √(relu(h)²). One (B, T, F) tensor kept instead of two and nothing rebuilt; the gradients
// differ from the composed ones by the rounding of the √.
Var relu2_mlp(const Var& x, const Var& w_in, const Var& w_out);

}  // namespace goose::models::recompute
