// cuBLASLt GEMMs on raw device pointers, row-major, shared by the CUDA matmul/linear glue, the
// fused head + cross-entropy and the standalone GEMM bench (no goose or CUDA headers here).
#pragma once
#include <cstddef>
#include <cstdint>

namespace goose::gemm_lt {

// Element types of the operands. f32 and f64 compute in their own precision (f32 is exact
// fp32: no TF32); bf16 operands accumulate in fp32 and write C as bf16 or f32.
enum class GemmType : uint8_t { f32, f64, bf16 };

// C = alpha op(A) op(B) + beta C (+ bias broadcast over the rows of C), every matrix row-major:
// op(A) is (m, k) and A is stored (m, k) with leading dim lda, or (k, m) when trans_a; op(B)
// is (k, n), B stored (k, n) or (n, k) when trans_b; C (m, n) with leading dim ldc. `batch`
// products at element strides stride_a/b/c (0: one matrix shared by every product; not for C).
// A and B share ab_type; C has c_type: equal to ab_type, or f32 with bf16 A and B. The bias
// (n values of c_type) is only for beta = 0. Zero-size products are no-ops (k = 0 scales C).
struct GemmArgs {
    int64_t m = 0, n = 0, k = 0;
    bool trans_a = false, trans_b = false;
    const void* a = nullptr;
    int64_t lda = 0, stride_a = 0;
    const void* b = nullptr;
    int64_t ldb = 0, stride_b = 0;
    void* c = nullptr;
    int64_t ldc = 0, stride_c = 0;
    int64_t batch = 1;
    GemmType ab_type = GemmType::f32, c_type = GemmType::f32;
    double alpha = 1, beta = 0;
    const void* bias = nullptr;
};

// Runs the product on `stream` (a cudaStream_t; nullptr = the default stream). The first call
// makes the cuBLASLt handle and a workspace; a plan (descriptors, layouts and the algorithm the
// heuristic picked; with goose::cuda::gemm_autotune() on, the fastest of up to 16 of its
// choices, timed on the first call made outside graph capture) is cached per shape, leading dims,
// types, pointer alignment, SM-count target and the autotune switch. When the heuristic's choice
// issues a memset (an idle gap in a CUDA graph), the plan is tuned that way at its first call
// outside capture, the memset counted as graph time (gemm_lt.cu). Throws std::runtime_error
// naming the call when cuBLASLt rejects it.
void gemm(const GemmArgs& g, void* stream);

// Plans cached so far (for tests and the bench).
int64_t cached_plans();
// Bytes of the workspaces made so far (one per device and stream).
size_t workspace_bytes();

}  // namespace goose::gemm_lt
