// Deterministic column sums of per-block partial sums (the parameter gradients of the fused
// kernels: token mix, prep, out, layer norms): raw device pointers, the stream as void*.
// Internal; no CUDA headers.
#pragma once

namespace goose::cuda_column_sums {

constexpr int kMaxOuts = 8;

// outs.out[k][c] = Σ_chunk part[chunk][k][c] (part (chunks, outs.n, C) f32) for k < outs.n,
// c < C, each into its own tensor of C elements (f32 or bf16; null: skipped). Chunk order is
// fixed: one lane of a block adds chunks y, y + 64, ..., then the lanes add in a fixed tree.
struct PartialOuts {
    void* out[kMaxOuts] = {};
    int n = 0;
};
void sum_partials_launch(const float* part, const PartialOuts& outs, int chunks, int C, bool bf16,
                         void* stream);

}  // namespace goose::cuda_column_sums
