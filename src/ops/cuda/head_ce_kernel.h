// Fused LM head + cross-entropy (+ L2Wrap's gradient) on raw device pointers, in chunks of rows
// so that the (rows, V) logits never exist in full (no goose or CUDA headers here).
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops/cuda/gemm_lt.h"

namespace goose::head_ce_cuda {

// For every chunk of `chunk_rows` rows of x: logits = x_c wᵀ (cuBLASLt, fp32 accumulation,
// written in `type`), one kernel pass computes each row's log-sum-exp, loss and argmax and
// overwrites the logits with d(logits) = gy / count (softmax - onehot(target)) (+ the L2Wrap
// term gy * max * 1e-4 / rows at the row's first argmax), then dx_c = d(logits) w and
// dw += d(logits)ᵀ x_c (f32). count = rows whose target is not ignore_index.
struct HeadCeArgs {
    int64_t rows = 0, dim = 0, vocab = 0;  // N, C, V
    gemm_lt::GemmType type =
        gemm_lt::GemmType::bf16;    // of x, w, the logits chunk and dx: bf16 or f32
    const void* x = nullptr;        // (N, C) packed
    const void* w = nullptr;        // (V, C) packed
    const void* targets = nullptr;  // (N) i32, or i64 when targets_i64
    bool targets_i64 = false;
    int64_t ignore_index = -100;
    bool l2wrap = false;
    double gy = 1;               // upstream gradient of the loss
    void* dx = nullptr;          // (N, C) in `type`, or nullptr (not computed)
    float* dw = nullptr;         // (V, C) f32, or nullptr (not computed)
    bool accumulate_dw = false;  // dw += (else dw =)
    // bf16 with V % 8 == 0 and V <= 65536: keep each row in registers between the softmax
    // statistics and the gradient (one read + one write of the logits instead of two reads +
    // one write). Checked by gemm_bench, not yet timed on a GPU: off by default.
    bool row_cache = false;
    int64_t chunk_rows = 0;     // rows per chunk; 0 picks one (chunk logits <= 512 MiB)
    void* workspace = nullptr;  // workspace_bytes(...) bytes, 256-byte aligned
    // Outputs in device memory: loss (mean over counted rows, 0 when none), row_lse (N) or
    // nullptr, status[0] = count, status[1] = 1 + the first row whose target is outside
    // [0, V) and not ignored (0: none; such a row is treated as ignored).
    float* loss = nullptr;
    float* row_lse = nullptr;
    int32_t* status = nullptr;
};

int64_t pick_chunk_rows(const HeadCeArgs& a);
size_t workspace_bytes(const HeadCeArgs& a);  // uses a.rows, a.vocab, a.type, a.chunk_rows

// Runs everything on `stream` (a cudaStream_t); no host synchronisation. Throws
// std::runtime_error on a CUDA or cuBLASLt error.
void head_ce(const HeadCeArgs& a, void* stream);

}  // namespace goose::head_ce_cuda
