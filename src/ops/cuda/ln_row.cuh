// Pieces of the LayerNorm row kernels where one warp works a row, lane l holding its 16-byte
// vectors l + 32 k: norm.cu's layer_norm and ln_mix.cu's add_layer_norm + token_mix, forward
// and backward. Include only from .cu files, after ops_util.cuh.
#pragma once
#include <cstdint>

#include "ops/cuda/vec16.cuh"

namespace goose::cuda_util {

// n = round_T(xh w + b) for one vector (w, b null: 1, 0), as layer_norm's forward stores it.
template <class T, int V>
__device__ __forceinline__ void normed_of(const float (&xh)[V], const T* w, const T* b, int vi,
                                          float (&o)[V]) {
    float t[V];
#pragma unroll
    for (int j = 0; j < V; ++j) o[j] = xh[j];
    if (w) {
        ldv(w + vi * V, t);
#pragma unroll
        for (int j = 0; j < V; ++j) o[j] *= t[j];
    }
    if (b) {
        ldv(b + vi * V, t);
#pragma unroll
        for (int j = 0; j < V; ++j) o[j] += t[j];
    }
#pragma unroll
    for (int j = 0; j < V; ++j) o[j] = ops::cuda_ops::to_acc(ops::cuda_ops::from_acc<T>(o[j]));
}

// Mean and rstd of the row whose valid vectors (vi < nvec) are v (two passes, as layer_norm).
template <int NV, int V>
__device__ __forceinline__ void row_stats(const float (&v)[NV][V], int lane, int nvec, int c,
                                          double eps, float& m, float& rs) {
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < NV; ++k)
        if (lane + 32 * k < nvec)
#pragma unroll
            for (int j = 0; j < V; ++j) s += v[k][j];
    m = ops::cuda_ops::warp_sum(s) / float(c);
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < NV; ++k)
        if (lane + 32 * k < nvec)
#pragma unroll
            for (int j = 0; j < V; ++j) q += (v[k][j] - m) * (v[k][j] - m);
    const float var = ops::cuda_ops::warp_sum(q) / float(c);
    rs = float(1.0 / sqrt(double(var) + eps));
}

// A row's input gradient from gw = dy w and the normalised row xh (both per lane vector) and
// their row sums sg, sgx: dx = rstd (gw - mean(gw) - xh mean(gw xh)). With a residual gradient
// in stage slot `res_slot + k` (has_res), dx is rounded to T first and the residual added, as
// the composed ops (ag::add) would. Stores the row at dst.
template <class T, int NV, int V, class Stage>
__device__ __forceinline__ void ln_bwd_store_row(const float (&gw)[NV][V],
                                                 const float (&xh)[NV][V], float sg, float sgx,
                                                 float rs, int c, int nvec, int lane,
                                                 const Stage& st, int i, bool has_res,
                                                 int res_slot, T* dst) {
    const float mg = ops::cuda_ops::warp_sum(sg) / float(c);
    const float mgx = ops::cuda_ops::warp_sum(sgx) / float(c);
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        const int vi = lane + 32 * k;
        if (vi >= nvec) break;
        float o[V];
#pragma unroll
        for (int j = 0; j < V; ++j) o[j] = rs * (gw[k][j] - mg - xh[k][j] * mgx);
        if (has_res) {
            float u[V];
            st.get(i, res_slot + k, u);
#pragma unroll
            for (int j = 0; j < V; ++j)
                o[j] = ops::cuda_ops::to_acc(ops::cuda_ops::from_acc<T>(o[j])) + u[j];
        }
        stv(dst + vi * V, o);
    }
}

// The block's parameter-gradient partials: NA per-lane accumulators, acc(a, k, j) the lane's
// element j of vector k of accumulator a, summed over the block's warps in a fixed order
// (deterministic) into out[a * c + channel], through shared memory at smem (warps x c floats;
// the caller's stages are done with it).
template <int NV, int V, int NA, class Acc>
__device__ __forceinline__ void ln_bwd_block_partials(float* smem, float* out, const Acc& acc,
                                                      int c, int nvec, int lane, int wi, int nw) {
#pragma unroll
    for (int a = 0; a < NA; ++a) {
        __syncthreads();
#pragma unroll
        for (int k = 0; k < NV; ++k) {
            const int vi = lane + 32 * k;
            if (vi < nvec)
#pragma unroll
                for (int j = 0; j < V; ++j) smem[wi * c + vi * V + j] = acc(a, k, j);
        }
        __syncthreads();
        for (int j = threadIdx.x; j < c; j += blockDim.x) {
            float s = 0.f;
            for (int q = 0; q < nw; ++q) s += smem[q * c + j];
            out[a * c + j] = s;
        }
    }
}

}  // namespace goose::cuda_util
