// L2Wrap's logit gradient on CUDA: one block per row finds the first maximum, then writes the
// row's single non-zero into a zeroed gradient (glue: l2wrap_cuda.cpp).
#include <cuda_bf16.h>

#include <cfloat>

#include "core/cuda/cuda_check.h"
#include "ops/cuda/l2wrap_cuda.h"

namespace goose::ag {

namespace {

template <class T>
__global__ void l2wrap_rows_kernel(const T* __restrict__ x, T* __restrict__ g, int64_t v,
                                   float scale) {
    const int64_t row = blockIdx.x;
    const T* xr = x + row * v;
    float best = -FLT_MAX;
    int64_t best_j = INT64_MAX;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
        const float f = static_cast<float>(xr[j]);
        if (f > best) {  // strided scan: the first maximum of this thread's elements
            best = f;
            best_j = j;
        }
    }
    __shared__ float s_val[32];
    __shared__ int64_t s_idx[32];
    // Warp reduction: larger value wins, equal values: smaller index (the first maximum).
    for (int off = 16; off > 0; off >>= 1) {
        const float ov = __shfl_down_sync(0xffffffffu, best, off);
        const int64_t oi = __shfl_down_sync(0xffffffffu, best_j, off);
        if (ov > best || (ov == best && oi < best_j)) {
            best = ov;
            best_j = oi;
        }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        s_val[warp] = best;
        s_idx[warp] = best_j;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        const int warps = (blockDim.x + 31) / 32;
        for (int w = 1; w < warps; ++w)
            if (s_val[w] > best || (s_val[w] == best && s_idx[w] < best_j)) {
                best = s_val[w];
                best_j = s_idx[w];
            }
        if (best_j < v) g[row * v + best_j] = static_cast<T>(scale * best);
    }
}

}  // namespace

void l2wrap_grad_launch(const void* x, void* g, int64_t rows, int64_t v, float scale, bool bf16,
                        void* stream) {
    const auto st = static_cast<cudaStream_t>(stream);
    if (bf16)
        l2wrap_rows_kernel<<<rows, 256, 0, st>>>(static_cast<const __nv_bfloat16*>(x),
                                                 static_cast<__nv_bfloat16*>(g), v, scale);
    else
        l2wrap_rows_kernel<<<rows, 256, 0, st>>>(static_cast<const float*>(x),
                                                 static_cast<float*>(g), v, scale);
    GOOSE_CUDA_LAUNCH_CHECK();
}

}  // namespace goose::ag
