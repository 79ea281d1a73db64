// CUDA layer_norm, group_norm and l2_normalize. Forward and dx: one warp per (row, group) with
// the group in registers for groups of up to 1024 channels (one block per (row, group) beyond),
// two-pass statistics (mean, then the sum of squared deviations) through warp/block sums. dw
// and db: blocks of 32 channels x 8 row lanes over pieces of the rows, partial sums added in a
// fixed order (deterministic). layer_norm runs as one group. For bf16 x the saved mean and rstd
// are f32 (rounding them to bf16 would shift every normalised value).
#include "ops/cuda/ops_util.cuh"  // first (see there)

#include <algorithm>

#include "ops/cuda/column_sums.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/ln_row.cuh"
#include "ops/cuda/math.cuh"
#include "ops/cuda/norm_add_cuda.h"
#include "ops/cuda/row_stages.cuh"
#include "ops/cuda/vec16.cuh"

namespace goose::ops {

using namespace cuda_ops;

namespace {
constexpr int kLanes = 8;

// A product rounded on its own (no FMA contraction into the next add): gw - mean(gw) must be
// exactly 0 for a group of one channel, as on the CPU.
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

template <class T>
using stat_t = std::conditional_t<std::is_same_v<T, bf16>, float, T>;

// x, y (rows, C); mean, rstd (rows, groups); w, b (C) or null. Block = (row, group).
template <class T>
__global__ void norm_fwd_kernel(const T* __restrict__ x, T* __restrict__ y,
                                stat_t<T>* __restrict__ mean, stat_t<T>* __restrict__ rstd,
                                const T* __restrict__ w, const T* __restrict__ b, int64_t c,
                                int64_t groups, double eps) {
    using A = acc_t<T>;
    const int64_t task = blockIdx.x, r = task / groups, g = task % groups;
    const int64_t n = c / groups, j0 = g * n;
    const T* xg = x + r * c + j0;
    T* yg = y + r * c + j0;
    A s = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += to_acc(xg[j]);
    const A m = block_sum(s) / A(n);
    A q = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const A d = to_acc(xg[j]) - m;
        q += d * d;
    }
    const A var = block_sum(q) / A(n);
    const A rs = A(1.0 / sqrt(double(var) + eps));
    if (threadIdx.x == 0) {
        mean[task] = stat_t<T>(m);
        rstd[task] = stat_t<T>(rs);
    }
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        A v = (to_acc(xg[j]) - m) * rs;
        if (w) v *= to_acc(w[j0 + j]);
        if (b) v += to_acc(b[j0 + j]);
        yg[j] = from_acc<T>(v);
    }
}

// dx = rstd (gw - mean(gw) - xhat mean(gw xhat)) within each group, gw = gy w.
template <class T>
__global__ void norm_dx_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                               const stat_t<T>* __restrict__ mean,
                               const stat_t<T>* __restrict__ rstd, const T* __restrict__ w,
                               T* __restrict__ dx, int64_t c, int64_t groups) {
    using A = acc_t<T>;
    const int64_t task = blockIdx.x, r = task / groups, g = task % groups;
    const int64_t n = c / groups, j0 = g * n, off = r * c + j0;
    const A m = A(mean[task]), rs = A(rstd[task]);
    A sg = 0, sgx = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const A gw = mul_rn(to_acc(gy[off + j]), w ? to_acc(w[j0 + j]) : A(1));
        sg += gw;
        sgx += gw * (to_acc(x[off + j]) - m) * rs;
    }
    const A mg = block_sum(sg) / A(n);
    const A mgx = block_sum(sgx) / A(n);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const A gw = mul_rn(to_acc(gy[off + j]), w ? to_acc(w[j0 + j]) : A(1));
        const A xhat = (to_acc(x[off + j]) - m) * rs;
        dx[off + j] = from_acc<T>(rs * (gw - mg - xhat * mgx));
    }
}

// Partial dw = sum gy xhat and db = sum gy over a piece of rows; block (32, kLanes) per
// (column block, piece). Writes final values (pieces == 1) or partials (pieces, C).
template <class T>
__global__ void norm_dwdb_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                                 const stat_t<T>* __restrict__ mean,
                                 const stat_t<T>* __restrict__ rstd, int64_t rows, int64_t c,
                                 int64_t groups, int64_t rows_per_piece, int64_t pieces,
                                 T* __restrict__ dw, T* __restrict__ db,
                                 acc_t<T>* __restrict__ pw, acc_t<T>* __restrict__ pb) {
    using A = acc_t<T>;
    __shared__ A sw[kLanes][33], sb[kLanes][33];
    const int64_t cblocks = (c + 31) / 32;
    const int64_t cb = blockIdx.x % cblocks, pc = blockIdx.x / cblocks;
    const int64_t j = cb * 32 + threadIdx.x, n = c / groups;
    const int64_t r0 = pc * rows_per_piece, r1 = min(rows, r0 + rows_per_piece);
    A aw = 0, ab = 0;
    if (j < c) {
        const int64_t g = j / n;
        for (int64_t r = r0 + threadIdx.y; r < r1; r += kLanes) {
            const A gv = to_acc(gy[r * c + j]);
            const int64_t s = r * groups + g;
            aw += gv * (to_acc(x[r * c + j]) - A(mean[s])) * A(rstd[s]);
            ab += gv;
        }
    }
    sw[threadIdx.y][threadIdx.x] = aw;
    sb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && j < c) {
        A tw = 0, tb = 0;
#pragma unroll
        for (int l = 0; l < kLanes; ++l) {
            tw += sw[l][threadIdx.x];
            tb += sb[l][threadIdx.x];
        }
        if (pieces == 1) {
            if (dw) dw[j] = from_acc<T>(tw);
            if (db) db[j] = from_acc<T>(tb);
        } else {
            pw[pc * c + j] = tw;
            pb[pc * c + j] = tb;
        }
    }
}

// Warp versions of norm_fwd_kernel and norm_dx_kernel for groups of up to kWarpRowMax
// channels (the group in registers). Task = (row, group).
template <class T, int VPL>
__global__ void norm_fwd_warp_kernel(const T* __restrict__ x, T* __restrict__ y,
                                     stat_t<T>* __restrict__ mean, stat_t<T>* __restrict__ rstd,
                                     const T* __restrict__ w, const T* __restrict__ b,
                                     int64_t tasks, int64_t c, int64_t groups, double eps) {
    using A = acc_t<T>;
    const int64_t task = warp_row();
    if (task >= tasks) return;
    const int lane = threadIdx.x & 31;
    const int64_t r = task / groups, g = task % groups, n = c / groups, j0 = g * n;
    const T* xg = x + r * c + j0;
    A v[VPL];
    A s = 0;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        v[k] = j < n ? to_acc(xg[j]) : A(0);
        s += v[k];
    }
    const A m = warp_sum(s) / A(n);
    A q = 0;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const A d = v[k] - m;
        q += lane + 32 * k < n ? d * d : A(0);
    }
    const A var = warp_sum(q) / A(n);
    const A rs = A(1.0 / sqrt(double(var) + eps));
    if (lane == 0) {
        mean[task] = stat_t<T>(m);
        rstd[task] = stat_t<T>(rs);
    }
    T* yg = y + r * c + j0;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        if (j >= n) break;
        A o = (v[k] - m) * rs;
        if (w) o *= to_acc(w[j0 + j]);
        if (b) o += to_acc(b[j0 + j]);
        yg[j] = from_acc<T>(o);
    }
}

template <class T, int VPL>
__global__ void norm_dx_warp_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                                    const stat_t<T>* __restrict__ mean,
                                    const stat_t<T>* __restrict__ rstd, const T* __restrict__ w,
                                    T* __restrict__ dx, int64_t tasks, int64_t c,
                                    int64_t groups) {
    using A = acc_t<T>;
    const int64_t task = warp_row();
    if (task >= tasks) return;
    const int lane = threadIdx.x & 31;
    const int64_t r = task / groups, g = task % groups, n = c / groups, j0 = g * n;
    const int64_t off = r * c + j0;
    const A m = A(mean[task]), rs = A(rstd[task]);
    A gw[VPL], xh[VPL];
    A sg = 0, sgx = 0;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        const bool in = j < n;
        gw[k] = in ? mul_rn(to_acc(gy[off + j]), w ? to_acc(w[j0 + j]) : A(1)) : A(0);
        xh[k] = in ? (to_acc(x[off + j]) - m) * rs : A(0);
        sg += gw[k];
        sgx += gw[k] * xh[k];
    }
    const A mg = warp_sum(sg) / A(n);
    const A mgx = warp_sum(sgx) / A(n);
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        if (j >= n) break;
        dx[off + j] = from_acc<T>(rs * (gw[k] - mg - xh[k] * mgx));
    }
}

// Warp versions of the l2_normalize kernels for rows of up to kWarpRowMax.
template <class T, int VPL>
__global__ void l2_fwd_warp_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                   int64_t c, double eps) {
    using A = acc_t<T>;
    const int64_t r = warp_row();
    if (r >= rows) return;
    const int lane = threadIdx.x & 31;
    const int64_t off = r * c;
    A v[VPL];
    A s = 0;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        v[k] = j < c ? to_acc(x[off + j]) : A(0);
        s += v[k] * v[k];
    }
    const double norm = sqrt(double(warp_sum(s)));
    const A inv = A(1.0 / fmax(norm, eps));
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        if (j >= c) break;
        y[off + j] = from_acc<T>(v[k] * inv);
    }
}

template <class T, int VPL>
__global__ void l2_bwd_warp_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                                   T* __restrict__ dx, int64_t rows, int64_t c, double eps) {
    using A = acc_t<T>;
    const int64_t r = warp_row();
    if (r >= rows) return;
    const int lane = threadIdx.x & 31;
    const int64_t off = r * c;
    A v[VPL], gv[VPL];
    A s = 0, d = 0;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        v[k] = j < c ? to_acc(x[off + j]) : A(0);
        gv[k] = j < c ? to_acc(gy[off + j]) : A(0);
        s += v[k] * v[k];
        d += gv[k] * v[k];
    }
    const double norm = sqrt(double(warp_sum(s)));
    d = warp_sum(d);
    const bool clamped = !(norm >= eps);
    const A inv = A(clamped ? 1.0 / eps : 1.0 / norm);
    const A kk = clamped ? A(0) : d * inv * inv;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        if (j >= c) break;
        dx[off + j] = from_acc<T>(clamped ? gv[k] * inv : (gv[k] - v[k] * kk) * inv);
    }
}

template <class T>
__global__ void l2_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t c, double eps) {
    using A = acc_t<T>;
    const int64_t off = int64_t(blockIdx.x) * c;
    A s = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
        const A v = to_acc(x[off + j]);
        s += v * v;
    }
    const double norm = sqrt(double(block_sum(s)));
    const A inv = A(1.0 / fmax(norm, eps));
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
        y[off + j] = from_acc<T>(to_acc(x[off + j]) * inv);
}

template <class T>
__global__ void l2_bwd_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                              T* __restrict__ dx, int64_t c, double eps) {
    using A = acc_t<T>;
    const int64_t off = int64_t(blockIdx.x) * c;
    A s = 0, d = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
        const A v = to_acc(x[off + j]);
        s += v * v;
        d += to_acc(gy[off + j]) * v;
    }
    const double norm = sqrt(double(block_sum(s)));
    d = block_sum(d);
    if (norm >= eps) {  // dx = (gy - y <gy, y>) / norm with y = x / norm
        const A inv = A(1.0 / norm);
        const A k = d * inv * inv;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            dx[off + j] = from_acc<T>((to_acc(gy[off + j]) - to_acc(x[off + j]) * k) * inv);
    } else {  // the clamped norm is a constant
        const A inv = A(1.0 / eps);
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            dx[off + j] = from_acc<T>(to_acc(gy[off + j]) * inv);
    }
}

// ---- layer_norm with 16-byte vectors (one group of c channels, c a multiple of V, at most
// 32 NV V): one warp per row, lane l's vectors l + 32 k (k < NV) in registers. The backward
// computes dx and, per warp, dw and db over L consecutive rows; the warps of a block add theirs
// in a fixed order into one partial row per block (part (blocks, 2, c)), and
// sum_partials_launch (column_sums.h) adds the blocks in order (deterministic). Optional
// residual forms: the forward normalises x + a (and stores it), the backward adds the
// residual's own gradient to dx (add_layer_norm).
using cuda_util::ldv;
using cuda_util::stv;
using cuda_util::zero_v;

// With a (else null): the row is x + a, rounded to T and stored to sum, as ag::add would.
template <class T, int NV>
__global__ void ln_fwd_vec_kernel(const T* __restrict__ x, const T* __restrict__ a,
                                  T* __restrict__ sum, T* __restrict__ y,
                                  float* __restrict__ mean, float* __restrict__ rstd,
                                  const T* __restrict__ w, const T* __restrict__ b, int64_t rows,
                                  int c, double eps) {
    constexpr int V = cuda_util::vec16_of<T>();
    const int64_t r = warp_row();
    if (r >= rows) return;
    const int lane = threadIdx.x & 31, nvec = c / V;
    float v[NV][V];
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        const int vi = lane + 32 * k;
        ldv(x + r * c + min(vi, nvec - 1) * V, v[k]);  // past the row: its last vector, as 0
    }
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        const int vi = lane + 32 * k;
        if (a) {
            float t[V];
            ldv(a + r * c + min(vi, nvec - 1) * V, t);
#pragma unroll
            for (int j = 0; j < V; ++j) v[k][j] = to_acc(from_acc<T>(v[k][j] + t[j]));
            if (vi < nvec) stv(sum + r * c + vi * V, v[k]);
        }
    }
    float m, rs;
    cuda_util::row_stats(v, lane, nvec, c, eps, m, rs);
    if (lane == 0) {
        mean[r] = m;
        rstd[r] = rs;
    }
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        const int vi = lane + 32 * k;
        if (vi >= nvec) break;
        float xh[V], o[V];
#pragma unroll
        for (int j = 0; j < V; ++j) xh[j] = (v[k][j] - m) * rs;
        cuda_util::normed_of<T, V>(xh, w, b, vi, o);
        stv(y + r * c + vi * V, o);
    }
}

constexpr int kLnBwdStages = 3;  // rows of the backward staged: 2 in flight while one is worked on

// The backward's rows staged through shared memory: gy, x and gres (lane l's vectors l + 32 k),
// kLnBwdStages rows; mean and rstd are loaded a row ahead.
template <class T, int NV>
using LnBwdStages = cuda_util::Stages<T, cuda_util::vec16_of<T>(), 3 * NV, kLnBwdStages>;

// 2 blocks of kLnWarps warps per SM up to 3 vectors a lane (registers for 4 would spill).
template <class T, int NV>
__global__ void __launch_bounds__(256, NV <= 3 ? 2 : 1)
    ln_bwd_vec_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                      const float* __restrict__ mean, const float* __restrict__ rstd,
                      const T* __restrict__ w, const T* __restrict__ gres, T* __restrict__ dx,
                      int64_t rows, int c, int L, float* __restrict__ part) {
    constexpr int V = cuda_util::vec16_of<T>(), S = kLnBwdStages;
    extern __shared__ __align__(16) char smem_raw[];  // the stages, then (warps, c) partials
    LnBwdStages<T, NV> st(smem_raw);
    const int lane = threadIdx.x & 31, wi = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int nvec = c / V;
    const int64_t rb = (int64_t(blockIdx.x) * nw + wi) * L;
    float aw[NV][V], ab[NV][V];
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        zero_v(aw[k]);
        zero_v(ab[k]);
    }
    const int n = rb >= rows ? 0 : int(rows - rb < L ? rows - rb : L);  // warp-uniform
    auto queue = [&](int i) {  // row rb + i (zeros past this warp's rows)
        const bool ok = i < n;
        const int64_t off = (ok ? rb + i : rb) * c;
#pragma unroll
        for (int k = 0; k < NV; ++k) {
            const int vi = lane + 32 * k;
            if (vi >= nvec) break;
            cuda_util::cp_async<16>(st.at(i, k), gy + off + vi * V, ok);
            cuda_util::cp_async<16>(st.at(i, NV + k), x + off + vi * V, ok);
            if (gres) cuda_util::cp_async<16>(st.at(i, 2 * NV + k), gres + off + vi * V, ok);
        }
        cuda_util::cp_commit();
    };
    for (int i = 0; i < S - 1; ++i) queue(i);
    float m_next = n > 0 ? mean[rb] : 0.f, rs_next = n > 0 ? rstd[rb] : 0.f;
    for (int i = 0; i < n; ++i) {
        const int64_t r = rb + i;
        queue(i + S - 1);
        const float m = m_next, rs = rs_next;
        if (i + 1 < n) {
            m_next = mean[r + 1];
            rs_next = rstd[r + 1];
        }
        st.wait();
        float gw[NV][V], xh[NV][V];
        float sg = 0.f, sgx = 0.f;
#pragma unroll
        for (int k = 0; k < NV; ++k) {
            const int vi = lane + 32 * k;
            if (vi < nvec) {
                float g[V], t[V];
                st.get(i, k, g);
                st.get(i, NV + k, xh[k]);
                if (w)
                    ldv(w + vi * V, t);
                else
#pragma unroll
                    for (int j = 0; j < V; ++j) t[j] = 1.f;
#pragma unroll
                for (int j = 0; j < V; ++j) {
                    xh[k][j] = (xh[k][j] - m) * rs;
                    gw[k][j] = mul_rn(g[j], t[j]);
                    sg += gw[k][j];
                    sgx += gw[k][j] * xh[k][j];
                    aw[k][j] += g[j] * xh[k][j];
                    ab[k][j] += g[j];
                }
            } else {
                zero_v(gw[k]);
                zero_v(xh[k]);
            }
        }
        cuda_util::ln_bwd_store_row<T, NV, V>(gw, xh, sg, sgx, rs, c, nvec, lane, st, i,
                                              gres != nullptr, 2 * NV, dx + r * c);
    }
    if (!part) return;
    cuda_util::cp_wait<0>();  // the zeros queued past the last row land before smem is reused
    const auto acc = [&](int which, int k, int j) { return which == 0 ? aw[k][j] : ab[k][j]; };
    cuda_util::ln_bwd_block_partials<NV, V, 2>(reinterpret_cast<float*>(smem_raw),
                                               part + int64_t(blockIdx.x) * 2 * c, acc, c, nvec,
                                               lane, wi, nw);
}

constexpr int kLnWarps = 8;  // warps per block of the vector layer_norm kernels

DType stat_dtype(DType x) { return x == DType::bf16 ? DType::f32 : x; }

NormForward norm_forward(const Tensor& x, int64_t groups, bool group_dim, const Tensor& w,
                         const Tensor& b, double eps) {
    const char* op = group_dim ? "group_norm" : "layer_norm";
    const Tensor xc = x.contiguous();
    const Tensor wc = w.defined() ? w.contiguous() : Tensor();
    const Tensor bc = b.defined() ? b.contiguous() : Tensor();
    const int64_t c = x.size(-1), rows = c ? x.numel() / c : 0;
    Shape ss = x.shape().without(x.ndim() - 1);
    if (group_dim) ss.push_back(groups);
    NormForward f{empty_on(x.shape(), x.dtype(), x), empty_on(ss, stat_dtype(x.dtype()), x),
                  empty_on(ss, stat_dtype(x.dtype()), x)};
    if (x.numel() == 0) return f;
    if (groups == 1 && (x.dtype() == DType::bf16 || x.dtype() == DType::f32) &&
        cuda_util::aligned16(xc.raw_data()) && cuda_util::aligned16(f.y.raw_data()) &&
        (!wc.defined() || cuda_util::aligned16(wc.raw_data())) &&
        (!bc.defined() || cuda_util::aligned16(bc.raw_data()))) {
        bool done = false;
        dispatch_float(x.dtype(), op, [&](auto tag) {
            using T = decltype(tag);
            if constexpr (!std::is_same_v<T, double>)
                done = cuda_util::with_lane_vectors<T>(c, [&](auto nv) {
                    ln_fwd_vec_kernel<T, decltype(nv)::value>
                        <<<warp_row_blocks(rows), 32 * kWarpRowsPerBlock, 0, stream()>>>(
                            ptr<T>(xc), nullptr, nullptr, ptr<T>(f.y), ptr<float>(f.mean),
                            ptr<float>(f.rstd), ptr_or_null<T>(wc), ptr_or_null<T>(bc), rows,
                            int(c), eps);
                });
        });
        if (done) {
            check_launch(op);
            return f;
        }
    }
    dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const int64_t n = c / groups, tasks = rows * groups;
        if (n <= kWarpRowMax)
            with_vpl(n, [&](auto vpl) {
                norm_fwd_warp_kernel<T, decltype(vpl)::value>
                    <<<warp_row_blocks(tasks), 32 * kWarpRowsPerBlock, 0, stream()>>>(
                        ptr<T>(xc), ptr<T>(f.y), ptr<stat_t<T>>(f.mean), ptr<stat_t<T>>(f.rstd),
                        ptr_or_null<T>(wc), ptr_or_null<T>(bc), tasks, c, groups, eps);
            });
        else
            norm_fwd_kernel<T><<<unsigned(tasks), row_threads(n), 0, stream()>>>(
                ptr<T>(xc), ptr<T>(f.y), ptr<stat_t<T>>(f.mean), ptr<stat_t<T>>(f.rstd),
                ptr_or_null<T>(wc), ptr_or_null<T>(bc), c, groups, eps);
    });
    check_launch(op);
    return f;
}

// layer_norm backward by the vector kernels: false (nothing launched) unless x is f32 or bf16
// with a width they take and every tensor 16-byte aligned.
bool ln_backward_vec(const Tensor& gc, const Tensor& xc, const Tensor& mc, const Tensor& rc,
                     const Tensor& wc, const Tensor& gres, NormGrads& r, bool need_dw,
                     bool need_db) {
    if (xc.dtype() != DType::bf16 && xc.dtype() != DType::f32) return false;
    for (const Tensor* t : {&gc, &xc, &wc, &gres, static_cast<const Tensor*>(&r.dx)})
        if (t->defined() && !cuda_util::aligned16(t->raw_data())) return false;
    const int64_t c = xc.size(-1), rows = xc.numel() / c;
    bool done = false;
    dispatch_float(xc.dtype(), "layer_norm", [&](auto tag) {
        using T = decltype(tag);
        if constexpr (!std::is_same_v<T, double>)
            done = cuda_util::with_lane_vectors<T>(c, [&](auto nv) {
                const auto kernel = ln_bwd_vec_kernel<T, decltype(nv)::value>;
                const int threads = 32 * kLnWarps;
                constexpr int kNv = decltype(nv)::value;
                const size_t smem = std::max(size_t(kLnWarps) * size_t(c) * sizeof(float),
                                             size_t(32 * kLnWarps) *
                                                 LnBwdStages<T, kNv>::kPerThread);
                check_cuda(cuda_util::allow_dynamic_smem(
                               reinterpret_cast<const void*>(kernel), smem),
                           "cudaFuncSetAttribute");
                int per_sm = 0;
                check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads,
                                                                         smem),
                           "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
                static const int sms = goose::cuda::multiprocessor_count();
                const int64_t target = int64_t(std::max(per_sm, 1)) * sms;
                const int64_t L = std::max<int64_t>(1, (rows + target * kLnWarps - 1) /
                                                           (target * kLnWarps));
                const int64_t blocks = (rows + L * kLnWarps - 1) / (L * kLnWarps);
                const bool sums = need_dw || need_db;
                Tensor part = sums ? empty_on(Shape{blocks, 2, c}, DType::f32, xc) : Tensor();
                kernel<<<unsigned(blocks), threads, smem, stream()>>>(
                    ptr<T>(gc), ptr<T>(xc), ptr<float>(mc), ptr<float>(rc), ptr_or_null<T>(wc),
                    ptr_or_null<T>(gres), ptr<T>(r.dx), rows, int(c), int(L),
                    sums ? ptr<float>(part) : nullptr);
                if (sums) {
                    cuda_column_sums::PartialOuts outs;
                    outs.n = 2;
                    outs.out[0] = need_dw ? ptr<T>(r.dw) : nullptr;
                    outs.out[1] = need_db ? ptr<T>(r.db) : nullptr;
                    cuda_column_sums::sum_partials_launch(ptr<float>(part), outs, int(blocks),
                                                          int(c), std::is_same_v<T, bf16>,
                                                          stream());
                }
            });
    });
    return done;
}

NormGrads norm_backward(const char* op, const Tensor& gy, const Tensor& x, int64_t groups,
                        const Tensor& w, const Tensor& mean, const Tensor& rstd, bool need_dw,
                        bool need_db) {
    const Tensor xc = x.contiguous(), gc = gy.contiguous();
    const DType sdt = stat_dtype(x.dtype());
    const Tensor mc = mean.dtype() == sdt ? mean.contiguous() : mean.to(sdt);
    const Tensor rc = rstd.dtype() == sdt ? rstd.contiguous() : rstd.to(sdt);
    const Tensor wc = w.defined() ? w.contiguous() : Tensor();
    const int64_t c = x.size(-1), rows = c ? x.numel() / c : 0;
    NormGrads r{empty_on(x.shape(), x.dtype(), x),
                need_dw ? zeros_on(Shape{c}, x.dtype(), x) : Tensor(),
                need_db ? zeros_on(Shape{c}, x.dtype(), x) : Tensor()};
    if (x.numel() == 0) return r;
    if (groups == 1 && ln_backward_vec(gc, xc, mc, rc, wc, Tensor(), r, need_dw, need_db)) {
        check_launch(op);
        return r;
    }
    dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        using S = stat_t<T>;
        const int64_t n = c / groups, tasks = rows * groups;
        if (n <= kWarpRowMax)
            with_vpl(n, [&](auto vpl) {
                norm_dx_warp_kernel<T, decltype(vpl)::value>
                    <<<warp_row_blocks(tasks), 32 * kWarpRowsPerBlock, 0, stream()>>>(
                        ptr<T>(gc), ptr<T>(xc), ptr<S>(mc), ptr<S>(rc), ptr_or_null<T>(wc),
                        ptr<T>(r.dx), tasks, c, groups);
            });
        else
            norm_dx_kernel<T><<<unsigned(tasks), row_threads(n), 0, stream()>>>(
                ptr<T>(gc), ptr<T>(xc), ptr<S>(mc), ptr<S>(rc), ptr_or_null<T>(wc), ptr<T>(r.dx),
                c, groups);
        check_launch(op);
        if (!need_dw && !need_db) return;
        const int64_t cblocks = (c + 31) / 32;
        const int64_t pieces = std::max<int64_t>(
            1, std::min<int64_t>((rows + 63) / 64, 2048 / std::max<int64_t>(1, cblocks)));
        const int64_t per = (rows + pieces - 1) / pieces;
        const int64_t used = (rows + per - 1) / per;
        Tensor pw, pb;
        if (used > 1) {
            pw = empty_on(Shape{used, c}, acc_dtype<T>(), x);
            pb = empty_on(Shape{used, c}, acc_dtype<T>(), x);
        }
        norm_dwdb_kernel<T><<<unsigned(cblocks * used), dim3(32, kLanes), 0, stream()>>>(
            ptr<T>(gc), ptr<T>(xc), ptr<S>(mc), ptr<S>(rc), rows, c, groups, per, used,
            need_dw ? ptr<T>(r.dw) : nullptr, need_db ? ptr<T>(r.db) : nullptr,
            used > 1 ? ptr<acc_t<T>>(pw) : nullptr, used > 1 ? ptr<acc_t<T>>(pb) : nullptr);
        check_launch(op);
        if (used > 1) {
            if (need_dw) sum_oai(pw, r.dw, 1, used, c, 1.0);
            if (need_db) sum_oai(pb, r.db, 1, used, c, 1.0);
        }
    });
    return r;
}
}  // namespace

bool add_layer_norm_forward_cuda(const Tensor& x, const Tensor& a, const Tensor& w,
                                 const Tensor& b, double eps, AddNormForward& f) {
    if ((x.dtype() != DType::bf16 && x.dtype() != DType::f32) || a.dtype() != x.dtype() ||
        a.shape() != x.shape() || x.numel() == 0)
        return false;
    const Tensor xc = x.contiguous(), ac = a.contiguous();
    const Tensor wc = w.defined() ? w.contiguous() : Tensor();
    const Tensor bc = b.defined() ? b.contiguous() : Tensor();
    const int64_t c = x.size(-1), rows = x.numel() / c;
    for (const Tensor* t : {&xc, &ac, &wc, &bc})
        if (t->defined() && !cuda_util::aligned16(t->raw_data())) return false;
    const Shape ss = x.shape().without(x.ndim() - 1);
    AddNormForward o{empty_on(x.shape(), x.dtype(), x), empty_on(x.shape(), x.dtype(), x),
                     empty_on(ss, DType::f32, x), empty_on(ss, DType::f32, x)};
    if (!cuda_util::aligned16(o.sum.raw_data()) || !cuda_util::aligned16(o.y.raw_data()))
        return false;
    bool done = false;
    dispatch_float(x.dtype(), "add_layer_norm", [&](auto tag) {
        using T = decltype(tag);
        if constexpr (!std::is_same_v<T, double>)
            done = cuda_util::with_lane_vectors<T>(c, [&](auto nv) {
                ln_fwd_vec_kernel<T, decltype(nv)::value>
                    <<<warp_row_blocks(rows), 32 * kWarpRowsPerBlock, 0, stream()>>>(
                        ptr<T>(xc), ptr<T>(ac), ptr<T>(o.sum), ptr<T>(o.y), ptr<float>(o.mean),
                        ptr<float>(o.rstd), ptr_or_null<T>(wc), ptr_or_null<T>(bc), rows, int(c),
                        eps);
            });
    });
    if (!done) return false;
    check_launch("add_layer_norm");
    f = std::move(o);
    return true;
}

bool layer_norm_backward_res_cuda(const Tensor& gy, const Tensor& gres, const Tensor& x,
                                  const Tensor& w, const Tensor& mean, const Tensor& rstd,
                                  bool need_dw, bool need_db, NormGrads& out) {
    if (mean.dtype() != DType::f32 || rstd.dtype() != DType::f32 || gy.dtype() != x.dtype() ||
        gres.dtype() != x.dtype() || gres.shape() != x.shape() || x.numel() == 0)
        return false;
    const Tensor xc = x.contiguous(), gc = gy.contiguous(), rc = gres.contiguous();
    const Tensor wc = w.defined() ? w.contiguous() : Tensor();
    const int64_t c = x.size(-1);
    NormGrads r{empty_on(x.shape(), x.dtype(), x),
                need_dw ? empty_on(Shape{c}, x.dtype(), x) : Tensor(),
                need_db ? empty_on(Shape{c}, x.dtype(), x) : Tensor()};
    if (!ln_backward_vec(gc, xc, mean.contiguous(), rstd.contiguous(), wc, rc, r, need_dw,
                         need_db))
        return false;
    check_launch("add_layer_norm");
    out = std::move(r);
    return true;
}

NormForward layer_norm_forward_cuda(const Tensor& x, const Tensor& w, const Tensor& b,
                                    double eps) {
    return norm_forward(x, 1, false, w, b, eps);
}

NormGrads layer_norm_backward_cuda(const Tensor& gy, const Tensor& x, const Tensor& w,
                                   const Tensor& mean, const Tensor& rstd, bool need_dw,
                                   bool need_db) {
    return norm_backward("layer_norm", gy, x, 1, w, mean, rstd, need_dw, need_db);
}

NormForward group_norm_forward_cuda(const Tensor& x, int groups, const Tensor& w,
                                    const Tensor& b, double eps) {
    return norm_forward(x, groups, true, w, b, eps);
}

NormGrads group_norm_backward_cuda(const Tensor& gy, const Tensor& x, int groups,
                                   const Tensor& w, const Tensor& mean, const Tensor& rstd,
                                   bool need_dw, bool need_db) {
    return norm_backward("group_norm", gy, x, groups, w, mean, rstd, need_dw, need_db);
}

Tensor l2_normalize_forward_cuda(const Tensor& x, double eps) {
    const Tensor xc = x.contiguous();
    Tensor y = empty_on(x.shape(), x.dtype(), x);
    if (x.numel() == 0) return y;
    const int64_t c = x.size(-1), rows = x.numel() / c;
    dispatch_float(x.dtype(), "l2_normalize", [&](auto tag) {
        using T = decltype(tag);
        if (c <= kWarpRowMax)
            with_vpl(c, [&](auto vpl) {
                l2_fwd_warp_kernel<T, decltype(vpl)::value>
                    <<<warp_row_blocks(rows), 32 * kWarpRowsPerBlock, 0, stream()>>>(
                        ptr<T>(xc), ptr<T>(y), rows, c, eps);
            });
        else
            l2_fwd_kernel<T><<<unsigned(rows), row_threads(c), 0, stream()>>>(ptr<T>(xc),
                                                                              ptr<T>(y), c, eps);
    });
    check_launch("l2_normalize");
    return y;
}

Tensor l2_normalize_backward_cuda(const Tensor& gy, const Tensor& x, double eps) {
    const Tensor xc = x.contiguous(), gc = gy.contiguous();
    Tensor dx = empty_on(x.shape(), x.dtype(), x);
    if (x.numel() == 0) return dx;
    const int64_t c = x.size(-1), rows = x.numel() / c;
    dispatch_float(x.dtype(), "l2_normalize", [&](auto tag) {
        using T = decltype(tag);
        if (c <= kWarpRowMax)
            with_vpl(c, [&](auto vpl) {
                l2_bwd_warp_kernel<T, decltype(vpl)::value>
                    <<<warp_row_blocks(rows), 32 * kWarpRowsPerBlock, 0, stream()>>>(
                        ptr<T>(gc), ptr<T>(xc), ptr<T>(dx), rows, c, eps);
            });
        else
            l2_bwd_kernel<T><<<unsigned(rows), row_threads(c), 0, stream()>>>(
                ptr<T>(gc), ptr<T>(xc), ptr<T>(dx), c, eps);
    });
    check_launch("l2_normalize");
    return dx;
}

}  // namespace goose::ops
