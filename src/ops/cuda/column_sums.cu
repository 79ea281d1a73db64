// Deterministic column sums of per-block partials (column_sums.h): kSumCols columns per block of
// kSumCols x kSumLanes threads; lane y adds chunks y, y + kSumLanes, ..., then the lanes add up in
// a fixed tree, so a sum does not depend on timing.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "ops/cuda/column_sums.h"
#include "core/cuda/cuda_check.h"
#include "ops/cuda/cuda_util.cuh"

namespace goose::cuda_column_sums {

namespace {

constexpr int kSumCols = 8, kSumLanes = 64;

template <class T>
__global__ void sum_partials_cols(const float* __restrict__ part, PartialOuts outs, int chunks,
                                  int C) {
    __shared__ float sh[kSumLanes][kSumCols];
    const int K = outs.n * C, i = blockIdx.x * kSumCols + threadIdx.x, y = threadIdx.y;
    T* out = nullptr;  // outs.out[i / C], picked by constant indices (no local-memory copy)
    if (i < K) {
        const int k = i / C;
#pragma unroll
        for (int j = 0; j < kMaxOuts; ++j)
            if (j == k) out = static_cast<T*>(outs.out[j]);
    }
    float s = 0.f;
    if (out)
        for (int ch = y; ch < chunks; ch += kSumLanes) s += part[static_cast<long long>(ch) * K + i];
    sh[y][threadIdx.x] = s;
    for (int half = kSumLanes / 2; half > 0; half /= 2) {
        __syncthreads();
        if (y < half) sh[y][threadIdx.x] += sh[y + half][threadIdx.x];
    }
    if (y == 0 && out) cuda_util::store_f(out + i % C, sh[0][threadIdx.x]);
}

}  // namespace

void sum_partials_launch(const float* part, const PartialOuts& outs, int chunks, int C,
                         bool bf16, void* st) {
    const int K = outs.n * C;
    if (K <= 0) return;
    const auto s = static_cast<cudaStream_t>(st);
    const dim3 grid((K + kSumCols - 1) / kSumCols), block(kSumCols, kSumLanes);
    if (bf16)
        sum_partials_cols<cuda_util::bf16><<<grid, block, 0, s>>>(part, outs, chunks, C);
    else
        sum_partials_cols<float><<<grid, block, 0, s>>>(part, outs, chunks, C);
    GOOSE_CUDA_LAUNCH_CHECK();
}

}  // namespace goose::cuda_column_sums
