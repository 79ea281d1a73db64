// Vectorised CUDA kernels of the fused RWKV-7 glue (16-byte loads: 8 bf16 or 4 f32 channels per
// thread). A block is R row slots of C / V threads each; slot s of block b owns the L consecutive
// rows from (b R + s) L, so a thread keeps fixed channels (parameter gradients stay in registers)
// and token_mix carries the previous row. Per-head sums: the N / V lanes of a head (aligned, a
// power of two, within one warp) reduce by shuffles. Backward kernels sum their R slots in a
// fixed order into one partial row per block (deterministic); sum_partials adds the blocks.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <numeric>
#include <type_traits>

#include "core/cuda/cuda_check.h"
#include "ops/cuda/cuda_util.cuh"
#include "ops/cuda/vec16.cuh"
#include "rwkv7_fused_args.cuh"
#include "rwkv7_fused_kernels.h"

namespace goose::models::fused::cuda_kernels {

namespace {

using cuda_util::bf16;
constexpr float kL2Eps = 1e-12f;
constexpr int kTargetThreads = 384;  // threads per block to aim for
constexpr int kMaxThreads = 384;     // threads per block at most (168 registers a thread)

__device__ __forceinline__ float sigm(float x) { return 1.f / (1.f + __expf(-x)); }

using cuda_util::ldv;
using cuda_util::stv;
template <class T>
constexpr int vec_of() {
    return cuda_util::vec16_of<T>();
}
template <int V>
__device__ __forceinline__ void zero(float (&v)[V]) {
    cuda_util::zero_v(v);
}
template <class T, int V>
__device__ __forceinline__ void ldv_or_zero(const T* p, bool ok, float (&v)[V]) {
    if (ok)
        ldv(p, v);
    else
        zero(v);
}

// Sum of v over the lph (power of two <= 32) aligned lanes of this thread's head.
__device__ __forceinline__ float head_sum(float v, int lph) {
    for (int off = lph >> 1; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// Where a thread sits: slot (row slot of the block), c0 (first channel), rb (first row).
struct Place {
    int slot, c0;
    int64_t rb;
};
template <int V>
__device__ __forceinline__ Place place(int C, int L) {
    const int tpr = C / V;
    Place p;
    p.slot = threadIdx.x / tpr;
    p.c0 = (threadIdx.x % tpr) * V;
    p.rb = (static_cast<int64_t>(blockIdx.x) * (blockDim.x / tpr) + p.slot) * L;
    return p;
}

// part[blockIdx.x][k][c] = Σ_slots acc over this block's slots, in slot order, for k < K.
// Every thread calls it (block barriers); sm holds blockDim.x * V floats.
template <int K, int V>
__device__ void block_partials(const float (&acc)[K][V], float* sm, float* part, int C,
                               const Place& p) {
    const int R = blockDim.x / (C / V);
    float* out = part + static_cast<int64_t>(blockIdx.x) * K * C;
#pragma unroll
    for (int k = 0; k < K; ++k) {
        __syncthreads();
#pragma unroll
        for (int i = 0; i < V; ++i) sm[p.slot * C + p.c0 + i] = acc[k][i];
        __syncthreads();
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float s = 0.f;
            for (int r = 0; r < R; ++r) s += sm[r * C + c];
            out[k * C + c] = s;
        }
    }
}

// ---- token_mix -------------------------------------------------------------------------------

template <class T>
struct MixArgsV : MixView<T> {
    int64_t rows, Tn;
    int C, L;
};

template <class T>
__global__ void __launch_bounds__(kMaxThreads, 2) mix_fwd_v(MixArgsV<T> a) {
    constexpr int V = vec_of<T>();
    const Place p = place<V>(a.C, a.L);
    float xp[V], xv[V], o[V], mu[V];
    for (int i = 0; i < a.L; ++i) {
        const int64_t r = p.rb + i;
        if (r >= a.rows) break;
        const int64_t t = r % a.Tn, off = r * a.C + p.c0;
        if (t == 0)
            ldv_or_zero(a.prev + (r / a.Tn) * a.C + p.c0, a.prev != nullptr, xp);
        else if (i == 0)
            ldv(a.x + off - a.C, xp);
        ldv(a.x + off, xv);
#pragma unroll
        for (int m = 0; m < kMaxMix; ++m) {
            if (m >= a.M) break;
            ldv(a.mu[m] + p.c0, mu);
#pragma unroll
            for (int j = 0; j < V; ++j) o[j] = xv[j] + (xp[j] - xv[j]) * mu[j];
            stv(a.out[m] + off, o);
        }
#pragma unroll
        for (int j = 0; j < V; ++j) xp[j] = xv[j];
    }
}

// dx[r] = gs[r] - dxx[r] + dxx[r+1] (gs = Σ_m g[m], dxx = Σ_m g[m] mu[m], dxx[r+1] = 0 past a
// sequence's end), written one row late: the row's own part is carried. dprev = dxx at t = 0,
// dmu[m] = Σ g[m] (xp - x). MC: the number of mixing vectors when known at compile time (the
// loads of a row then go out together), 0 for any a.M.
template <class T, int V, int MC>
__global__ void __launch_bounds__(kMaxThreads, V == 4 ? 2 : 1) mix_bwd_v(MixArgsV<T> a) {
    constexpr int MM = MC > 0 ? MC : kMaxMix;
    extern __shared__ float sm[];
    const Place p = place<V>(a.C, a.L);
    const int M = MC > 0 ? MC : a.M;
    float acc[MM][V];
#pragma unroll
    for (int m = 0; m < MM; ++m) zero(acc[m]);
    float xp[V], xv[V], carry[V], mu[V], gs[V], dxx[V];
    bool have = false;
    int64_t last = 0;
    for (int i = 0; i < a.L; ++i) {
        const int64_t r = p.rb + i;
        if (r >= a.rows) break;
        const int64_t t = r % a.Tn, off = r * a.C + p.c0;
        if (t == 0)
            ldv_or_zero(a.prev + (r / a.Tn) * a.C + p.c0, a.prev != nullptr, xp);
        else if (i == 0)
            ldv(a.x + off - a.C, xp);
        float gv[MM][V];
        ldv(a.x + off, xv);
#pragma unroll
        for (int m = 0; m < MM; ++m) {
            if (MC == 0 && m >= M) break;
            ldv(a.g[m] + off, gv[m]);
        }
        zero(gs);
        zero(dxx);
#pragma unroll
        for (int m = 0; m < MM; ++m) {
            if (MC == 0 && m >= M) break;
            ldv(a.mu[m] + p.c0, mu);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                gs[j] += gv[m][j];
                dxx[j] += gv[m][j] * mu[j];
                acc[m][j] += gv[m][j] * (xp[j] - xv[j]);
            }
        }
        if (have && a.dx) {  // row r - 1
            if (t > 0)
#pragma unroll
                for (int j = 0; j < V; ++j) carry[j] += dxx[j];
            stv(a.dx + off - a.C, carry);
        }
        if (t == 0 && a.dprev) stv(a.dprev + (r / a.Tn) * a.C + p.c0, dxx);
#pragma unroll
        for (int j = 0; j < V; ++j) {
            carry[j] = gs[j] - dxx[j];
            xp[j] = xv[j];
        }
        have = true;
        last = r;
    }
    if (have && a.dx) {  // the last row: dxx of the next row, if in the same sequence
        if (last % a.Tn + 1 < a.Tn) {
            const int64_t off = (last + 1) * a.C + p.c0;
#pragma unroll
            for (int m = 0; m < MM; ++m) {
                if (MC == 0 && m >= M) break;
                float gv[V];
                ldv(a.g[m] + off, gv);
                ldv(a.mu[m] + p.c0, mu);
#pragma unroll
                for (int j = 0; j < V; ++j) carry[j] += gv[j] * mu[j];
            }
        }
        stv(a.dx + last * a.C + p.c0, carry);
    }
    if (!a.part) return;  // uniform over the block
    const int R = blockDim.x / (a.C / V);
    float* out = a.part + static_cast<int64_t>(blockIdx.x) * M * a.C;
#pragma unroll
    for (int m = 0; m < MM; ++m) {
        if (MC == 0 && m >= M) break;
        __syncthreads();
#pragma unroll
        for (int j = 0; j < V; ++j) sm[p.slot * a.C + p.c0 + j] = acc[m][j];
        __syncthreads();
        for (int c = threadIdx.x; c < a.C; c += blockDim.x) {
            float s = 0.f;
            for (int r = 0; r < R; ++r) s += sm[r * a.C + c];
            out[m * a.C + c] = s;
        }
    }
}

// ---- rwkv7_prep -------------------------------------------------------------------------------

template <class T>
struct PrepArgsV : PrepView<T> {
    int64_t rows;
    int C, N, L;
};

template <class T>
__global__ void __launch_bounds__(kMaxThreads, 2) prep_fwd_v(PrepArgsV<T> a) {
    constexpr int V = vec_of<T>();
    const Place p = place<V>(a.C, a.L);
    const int lph = a.N / V;
    float w0[V], a0[V], kkp[V], ka[V], v0[V];
    ldv(a.w0 + p.c0, w0);
    ldv(a.a0 + p.c0, a0);
    ldv(a.kk + p.c0, kkp);
    ldv(a.ka + p.c0, ka);
    const bool gate = a.vl != nullptr;
    if (gate) ldv(a.v0 + p.c0, v0);
    for (int i = 0; i < a.L; ++i) {  // uniform trip count: the head sums shuffle
        const int64_t r = p.rb + i;
        const bool ok = r < a.rows;
        const int64_t off = r * a.C + p.c0;
        float s[V], z[V], t1[V], t2[V], zz = 0.f;
        if (ok) {
            ldv(a.wl + off, t1);
#pragma unroll
            for (int j = 0; j < V; ++j) t1[j] += w0[j];
            stv(a.w + off, t1);
            ldv(a.al + off, t1);
            ldv(a.kr + off, t2);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                s[j] = sigm(a0[j] + t1[j]);
                z[j] = t2[j] * kkp[j];
                zz += z[j] * z[j];
                t1[j] = t2[j] * (1.f + (s[j] - 1.f) * ka[j]);
            }
            stv(a.k + off, t1);
            if (gate) {
                float vr[V];
                ldv(a.vr + off, vr);
                ldv(a.vf + off, t1);
                ldv(a.vl + off, t2);
#pragma unroll
                for (int j = 0; j < V; ++j) t1[j] = vr[j] + (t1[j] - vr[j]) * sigm(v0[j] + t2[j]);
                stv(a.v + off, t1);
            }
        }
        const float hz = head_sum(zz, lph);
        if (ok) {
            const float inv = 1.f / fmaxf(sqrtf(hz), kL2Eps);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                t1[j] = -z[j] * inv;
                t2[j] = z[j] * inv * s[j];
            }
            stv(a.aa + off, t1);
            stv(a.bb + off, t2);
        }
    }
}

// GATE: layers > 0 (v mixed towards v_first), a compile-time branch so a row's loads go together.
template <class T, int V, bool GATE>
__global__ void __launch_bounds__(kMaxThreads, V == 4 ? 2 : 1) prep_bwd_v(PrepArgsV<T> a) {
    extern __shared__ float sm[];
    const Place p = place<V>(a.C, a.L);
    const int lph = a.N / V;
    float acc[5][V];  // w0, a0, v0, kk, ka
#pragma unroll
    for (int k = 0; k < 5; ++k) zero(acc[k]);
    float kkp[V];
    ldv(a.kk + p.c0, kkp);
    for (int i = 0; i < a.L; ++i) {
        const int64_t r = p.rb + i;
        const bool ok = r < a.rows;
        const int64_t off = r * a.C + p.c0;
        // kept over the head sums: d (gradient of kk), kr, dkr, and the gradient of a's
        // pre-sigmoid as A + B / norm (A from the k path, B from b = kk a)
        float d[V], kr[V], dkr[V], A[V], B[V];
        float zz = 0.f, dz = 0.f;
        if (ok) {
            if constexpr (GATE) {  // v = vr + (vf - vr) sigmoid(v0 + vl): no head sums
                float gv[V], vr[V], vf[V], sv[V], t[V];
                ldv(a.gv + off, gv);
                ldv(a.vr + off, vr);
                ldv(a.vf + off, vf);
                ldv(a.vl + off, sv);
                ldv(a.v0 + p.c0, t);
#pragma unroll
                for (int j = 0; j < V; ++j) {
                    const float s2 = sigm(t[j] + sv[j]);
                    vf[j] = gv[j] * (vf[j] - vr[j]) * s2 * (1.f - s2);  // d v_lora
                    vr[j] = gv[j] * (1.f - s2);
                    gv[j] *= s2;
                    acc[2][j] += vf[j];
                }
                stv(a.dvr + off, vr);
                stv(a.dvf + off, gv);
                stv(a.dvl + off, vf);
            }
            float t1[V], t2[V], s[V];
            ldv(a.gw + off, t1);
#pragma unroll
            for (int j = 0; j < V; ++j) acc[0][j] += t1[j];
            ldv(a.al + off, t1);
            ldv(a.a0 + p.c0, t2);
#pragma unroll
            for (int j = 0; j < V; ++j) s[j] = sigm(t2[j] + t1[j]);
            ldv(a.kr + off, kr);
            ldv(a.gbb + off, t1);
            ldv(a.gaa + off, t2);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const float z = kr[j] * kkp[j], q = s[j] * (1.f - s[j]);
                zz += z * z;
                d[j] = t1[j] * s[j] - t2[j];
                dz += d[j] * z;
                B[j] = t1[j] * z * q;
            }
            ldv(a.gk + off, t1);
            ldv(a.ka + p.c0, t2);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                dkr[j] = t1[j] * (1.f + (s[j] - 1.f) * t2[j]);
                acc[4][j] += t1[j] * kr[j] * (s[j] - 1.f);
                A[j] = t1[j] * kr[j] * t2[j] * s[j] * (1.f - s[j]);
            }
        }
        const float hzz = head_sum(zz, lph), hdz = head_sum(dz, lph);
        if (ok) {
            const float norm = sqrtf(hzz);
            const float iv = 1.f / fmaxf(norm, kL2Eps);
            const float coef = norm >= kL2Eps ? hdz * iv * iv : 0.f;
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const float gz = (d[j] - kr[j] * kkp[j] * coef) * iv;
                dkr[j] += gz * kkp[j];
                acc[3][j] += gz * kr[j];
                A[j] += B[j] * iv;
                acc[1][j] += A[j];
            }
            stv(a.dkr + off, dkr);
            stv(a.dal + off, A);
        }
    }
    block_partials<5, V>(acc, sm, a.part, a.C, p);
}

// ---- rwkv7_out --------------------------------------------------------------------------------

template <class T>
struct OutArgsV : OutView<T> {
    int64_t rows;
    int C, N, L;
    float eps;
};

// One row's per-head statistics of out (forward and backward): loads the thread's y, r, k
// (zeros past the last row), centres y on its head mean in place and returns its head rstd and
// s = Σ_head r k r_k.
struct OutRowStats {
    float rstd, s;
};
template <class T, int V>
__device__ __forceinline__ OutRowStats out_row_stats(const OutArgsV<T>& a, int64_t off, bool ok,
                                                     const float (&rk)[V], int lph,
                                                     float (&y)[V], float (&r)[V],
                                                     float (&k)[V]) {
    const float inv_n = 1.f / static_cast<float>(a.N);
    ldv_or_zero(a.y + off, ok, y);
    ldv_or_zero(a.r + off, ok, r);
    ldv_or_zero(a.k + off, ok, k);
    float sy = 0.f, sk = 0.f;
#pragma unroll
    for (int j = 0; j < V; ++j) {
        sy += y[j];
        sk += r[j] * k[j] * rk[j];
    }
    const float mean = head_sum(sy, lph) * inv_n, s = head_sum(sk, lph);
    float q = 0.f;
#pragma unroll
    for (int j = 0; j < V; ++j) {
        y[j] -= mean;
        q += y[j] * y[j];
    }
    return {rsqrtf(head_sum(q, lph) * inv_n + a.eps), s};
}

template <class T>
__global__ void __launch_bounds__(kMaxThreads, 2) out_fwd_v(OutArgsV<T> a) {
    constexpr int V = vec_of<T>();
    const Place p = place<V>(a.C, a.L);
    const int lph = a.N / V;
    float rk[V], lw[V], lb[V];
    ldv(a.rk + p.c0, rk);
    ldv(a.lw + p.c0, lw);
    ldv(a.lb + p.c0, lb);
    for (int i = 0; i < a.L; ++i) {
        const int64_t r = p.rb + i;
        const bool ok = r < a.rows;
        const int64_t off = r * a.C + p.c0;
        float y[V], t1[V], t2[V];
        const OutRowStats st = out_row_stats<T, V>(a, off, ok, rk, lph, y, t1, t2);
        if (ok) {
            ldv(a.v + off, t1);
            ldv(a.g + off, t2);
#pragma unroll
            for (int j = 0; j < V; ++j)
                t1[j] = (y[j] * st.rstd * lw[j] + lb[j] + st.s * t1[j]) * t2[j];
            stv(a.z + off, t1);
        }
    }
}

template <class T>
__global__ void __launch_bounds__(kMaxThreads) out_bwd_v(OutArgsV<T> a) {
    constexpr int V = vec_of<T>();
    extern __shared__ float sm[];
    const Place p = place<V>(a.C, a.L);
    const int lph = a.N / V;
    const float inv_n = 1.f / static_cast<float>(a.N);
    float acc[3][V];  // r_k, ln_w, ln_b
#pragma unroll
    for (int k = 0; k < 3; ++k) zero(acc[k]);
    float rk[V], lw[V], lb[V];
    ldv(a.rk + p.c0, rk);
    ldv(a.lw + p.c0, lw);
    ldv(a.lb + p.c0, lb);
    for (int i = 0; i < a.L; ++i) {
        const int64_t r = p.rb + i;
        const bool ok = r < a.rows;
        const int64_t off = r * a.C + p.c0;
        float h[V], rr[V], kk[V], d[V], t1[V], t2[V], t3[V];
        const OutRowStats st = out_row_stats<T, V>(a, off, ok, rk, lph, h, rr, kk);
        const float rstd = st.rstd, s = st.s;
        float sv = 0.f, s1 = 0.f, s2 = 0.f;
        ldv_or_zero(a.gz + off, ok, t1);
        ldv_or_zero(a.g + off, ok, t2);
        ldv_or_zero(a.v + off, ok, t3);
#pragma unroll
        for (int j = 0; j < V; ++j) {
            h[j] *= rstd;
            const float dp = t1[j] * t2[j];  // gradient of ln_x(y) + s v
            t2[j] = t1[j] * (h[j] * lw[j] + lb[j] + s * t3[j]);  // dg
            acc[1][j] += dp * h[j];
            acc[2][j] += dp;
            sv += dp * t3[j];
            t3[j] = dp * s;  // dv
            d[j] = dp * lw[j];
            s1 += d[j];
            s2 += d[j] * h[j];
        }
        if (ok) {
            stv(a.dg + off, t2);
            stv(a.dv + off, t3);
        }
        const float ds = head_sum(sv, lph), m1 = head_sum(s1, lph) * inv_n,
                    m2 = head_sum(s2, lph) * inv_n;
        if (ok) {
#pragma unroll
            for (int j = 0; j < V; ++j) {
                t1[j] = rstd * (d[j] - m1 - h[j] * m2);
                t2[j] = ds * kk[j] * rk[j];
                t3[j] = ds * rr[j] * rk[j];
                acc[0][j] += ds * rr[j] * kk[j];
            }
            stv(a.dy + off, t1);
            stv(a.dr + off, t2);
            stv(a.dk + off, t3);
        }
    }
    block_partials<3, V>(acc, sm, a.part, a.C, p);
}

// ---- plans and launchers ----------------------------------------------------------------------

// Launch shape of a vectorised row kernel: R slots of C / V threads, L rows per slot.
struct Plan {
    int threads = 0, R = 0, L = 0, blocks = 0;
    size_t smem = 0;
};

// R: the fewest slots for a whole number of warps, times the most that keeps the block at
// kTargetThreads or less; the grid fills the GPU once (occupancy of `kernel`), L = rows per slot.
template <class K>
Plan make_plan(K kernel, int64_t rows, int C, int V, bool needs_smem) {
    Plan p;
    const int tpr = C / V;
    const int unit = std::lcm(tpr, 32) / tpr;
    p.R = unit * std::max(1, kTargetThreads / (unit * tpr));
    p.threads = p.R * tpr;
    p.smem = needs_smem ? static_cast<size_t>(p.threads) * V * sizeof(float) : 0;
    int per_sm = 0;
    GOOSE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, p.threads,
                                                                   p.smem));
    const int64_t target = int64_t(std::max(per_sm, 1)) * cuda_util::num_sms();
    p.L = static_cast<int>(std::max<int64_t>(1, (rows + p.R * target - 1) / (p.R * target)));
    p.blocks = static_cast<int>((rows + int64_t(p.R) * p.L - 1) / (int64_t(p.R) * p.L));
    return p;
}


// Whether V channels per thread fit (C, N): whole warps in at most kMaxThreads threads, and
// (N > 0) heads of a power of two of lanes, at most 32.
bool fits(int V, int C, int N) {
    if (C <= 0 || C % V != 0 || std::lcm(C / V, 32) > kMaxThreads) return false;
    if (N <= 0) return true;
    if (C % N != 0 || N % V != 0) return false;
    const int lph = N / V;
    return lph <= 32 && (lph & (lph - 1)) == 0;
}

// Channels per thread of the backward kernels of mix and prep: 4 where they fit (bf16: 8-byte
// loads, half the registers of 8, twice the resident threads), else 8 (bf16 only); 0: none.
int bwd_vec(int C, int N, bool bf16) {
    if (fits(4, C, N)) return 4;
    return bf16 && fits(8, C, N) ? 8 : 0;
}

// Whether T has a vector form of V elements (f32: 4 only).
template <class T>
constexpr bool valid_vec(int V) {
    return V == 4 || !std::is_same_v<T, float>;
}

// Calls f(integral_constant<int, V>) for V = 4 or 8.
template <class F>
void by_vec(int v, F&& f) {
    if (v == 4)
        f(std::integral_constant<int, 4>{});
    else
        f(std::integral_constant<int, 8>{});
}

// Calls f(kernel, V) with the backward token_mix kernel for (T, C, M).
template <class T, class F>
void with_mix_kernel(int C, int M, F&& f) {
    by_vec(std::is_same_v<T, float> ? 4 : bwd_vec(C, 0, true), [&](auto v) {
        constexpr int V = decltype(v)::value;
        if constexpr (valid_vec<T>(V)) {
            if (M == 6)
                f(mix_bwd_v<T, V, 6>, V);
            else if (M == 1)
                f(mix_bwd_v<T, V, 1>, V);
            else
                f(mix_bwd_v<T, V, 0>, V);
        }
    });
}

template <class T>
Plan mix_plan(int64_t rows, int C, int M, bool backward) {
    if (!backward) return make_plan(mix_fwd_v<T>, rows, C, vec_of<T>(), false);
    Plan p;
    with_mix_kernel<T>(C, M, [&](auto kernel, int v) { p = make_plan(kernel, rows, C, v, true); });
    return p;
}
// Calls f(kernel, V) with the backward prep kernel for (T, C, N, gate).
template <class T, class F>
void with_prep_kernel(int C, int N, bool gate, F&& f) {
    by_vec(std::is_same_v<T, float> ? 4 : bwd_vec(C, N, true), [&](auto v) {
        constexpr int V = decltype(v)::value;
        if constexpr (valid_vec<T>(V)) {
            if (gate)
                f(prep_bwd_v<T, V, true>, V);
            else
                f(prep_bwd_v<T, V, false>, V);
        }
    });
}

template <class T>
Plan prep_plan(int64_t rows, int C, int N, bool backward) {
    if (!backward) return make_plan(prep_fwd_v<T>, rows, C, vec_of<T>(), false);
    Plan p;  // the gate does not change the registers much: plan with the gated kernel
    with_prep_kernel<T>(C, N, true,
                        [&](auto kernel, int v) { p = make_plan(kernel, rows, C, v, true); });
    return p;
}
template <class T>
Plan out_plan(int64_t rows, int C, bool backward) {
    constexpr int V = vec_of<T>();
    return backward ? make_plan(out_bwd_v<T>, rows, C, V, true)
                    : make_plan(out_fwd_v<T>, rows, C, V, false);
}

bool aligned(const void* p) { return cuda_util::aligned16(p); }

template <class F>
void by_dtype(bool bf16, F&& f) {
    if (bf16)
        f(cuda_util::bf16{});
    else
        f(float{});
}

// ---- sum_partials ----------------------------------------------------------------------------

constexpr int kSumCols = 8, kSumLanes = 64;

// out[i] = Σ_chunk part[chunk][i], kSumCols columns per block: lane y adds chunks y,
// y + kSumLanes, ..., then the lanes add up in a fixed tree (deterministic).
template <class T>
__global__ void sum_partials_cols(const float* __restrict__ part, T* __restrict__ out, int chunks,
                                  int K) {
    __shared__ float sh[kSumLanes][kSumCols];
    const int i = blockIdx.x * kSumCols + threadIdx.x, y = threadIdx.y;
    float s = 0.f;
    if (i < K)
        for (int ch = y; ch < chunks; ch += kSumLanes) s += part[static_cast<int64_t>(ch) * K + i];
    sh[y][threadIdx.x] = s;
    for (int half = kSumLanes / 2; half > 0; half /= 2) {
        __syncthreads();
        if (y < half) sh[y][threadIdx.x] += sh[y + half][threadIdx.x];
    }
    if (y == 0 && i < K) cuda_util::store_f(out + i, sh[0][threadIdx.x]);
}

}  // namespace

void sum_partials_launch(const float* part, void* out, int chunks, int K, bool bf16, void* st) {
    by_dtype(bf16, [&](auto tag) {
        using T = decltype(tag);
        const auto s = static_cast<cudaStream_t>(st);
        sum_partials_cols<T><<<(K + kSumCols - 1) / kSumCols, dim3(kSumCols, kSumLanes), 0, s>>>(
            part, static_cast<T*>(out), chunks, K);
    });
    GOOSE_CUDA_LAUNCH_CHECK();
}

// Whether the vector kernels take (C, N) in both directions (N = 0: no heads).
bool vec_ok(int C, int N, bool bf16) {
    return fits(bf16 ? 8 : 4, C, N) && bwd_vec(C, N, bf16) != 0;
}

int mix_vec_chunks(int64_t rows, int C, int M, bool bf16) {
    int n = 0;
    if (vec_ok(C, 0, bf16))
        by_dtype(bf16, [&](auto tag) { n = mix_plan<decltype(tag)>(rows, C, M, true).blocks; });
    return n;
}
int prep_vec_chunks(int64_t rows, int C, int N, bool bf16) {
    int n = 0;
    if (vec_ok(C, N, bf16))
        by_dtype(bf16, [&](auto tag) { n = prep_plan<decltype(tag)>(rows, C, N, true).blocks; });
    return n;
}
int out_vec_chunks(int64_t rows, int C, int N, bool bf16) {
    int n = 0;
    if (vec_ok(C, N, bf16))
        by_dtype(bf16, [&](auto tag) { n = out_plan<decltype(tag)>(rows, C, true).blocks; });
    return n;
}

bool token_mix_vec_launch(const MixPtrs& p, int64_t B, int64_t Tn, int64_t C, bool backward,
                          bool bf16, void* st) {
    if (!vec_ok(static_cast<int>(C), 0, bf16) || !aligned(p.x) || !aligned(p.prev) ||
        !aligned(p.dx) || !aligned(p.dprev))
        return false;
    for (int i = 0; i < p.M; ++i)
        if (!aligned(p.mu[i]) || !aligned(p.out[i]) || !aligned(p.g[i])) return false;
    by_dtype(bf16, [&](auto tag) {
        using T = decltype(tag);
        MixArgsV<T> a{view_of<T>(p)};
        a.rows = B * Tn;
        a.Tn = Tn;
        a.C = static_cast<int>(C);
        const Plan pl = mix_plan<T>(a.rows, a.C, a.M, backward);
        a.L = pl.L;
        const auto s = static_cast<cudaStream_t>(st);
        if (backward)
            with_mix_kernel<T>(a.C, a.M, [&](auto kernel, int) {
                kernel<<<pl.blocks, pl.threads, pl.smem, s>>>(a);
            });
        else
            mix_fwd_v<T><<<pl.blocks, pl.threads, pl.smem, s>>>(a);
    });
    GOOSE_CUDA_LAUNCH_CHECK();
    return true;
}

bool prep_vec_launch(const PrepPtrs& p, int64_t rows, int C, int N, bool backward, bool bf16,
                     void* st) {
    if (!vec_ok(C, N, bf16)) return false;
    for (const void* q : {p.wl, p.kr, p.vr, p.al, p.vl, p.vf, p.w0, p.a0, p.v0, p.kk, p.ka})
        if (!aligned(q)) return false;
    for (const void* q : {p.w, p.k, p.aa, p.bb, p.v, p.dkr, p.dvr, p.dal, p.dvl, p.dvf})
        if (!aligned(q)) return false;
    for (const void* q : {p.gw, p.gk, p.gaa, p.gbb, p.gv})
        if (!aligned(q)) return false;
    by_dtype(bf16, [&](auto tag) {
        using T = decltype(tag);
        PrepArgsV<T> a{view_of<T>(p)};
        a.rows = rows;
        a.C = C;
        a.N = N;
        const Plan pl = prep_plan<T>(rows, C, N, backward);
        a.L = pl.L;
        const auto s = static_cast<cudaStream_t>(st);
        if (backward)
            with_prep_kernel<T>(C, N, a.vl != nullptr, [&](auto kernel, int) {
                kernel<<<pl.blocks, pl.threads, pl.smem, s>>>(a);
            });
        else
            prep_fwd_v<T><<<pl.blocks, pl.threads, pl.smem, s>>>(a);
    });
    GOOSE_CUDA_LAUNCH_CHECK();
    return true;
}

bool out_vec_launch(const OutPtrs& p, int64_t rows, int C, int N, float eps, bool backward,
                    bool bf16, void* st) {
    if (!vec_ok(C, N, bf16)) return false;
    for (const void* q : {p.y, p.r, p.k, p.v, p.g, p.rk, p.lw, p.lb, p.gz})
        if (!aligned(q)) return false;
    for (const void* q : {p.z, p.dy, p.dr, p.dk, p.dv, p.dg})
        if (!aligned(q)) return false;
    by_dtype(bf16, [&](auto tag) {
        using T = decltype(tag);
        OutArgsV<T> a{view_of<T>(p)};
        a.rows = rows;
        a.C = C;
        a.N = N;
        a.eps = eps;
        const Plan pl = out_plan<T>(rows, C, backward);
        a.L = pl.L;
        const auto s = static_cast<cudaStream_t>(st);
        if (backward)
            out_bwd_v<T><<<pl.blocks, pl.threads, pl.smem, s>>>(a);
        else
            out_fwd_v<T><<<pl.blocks, pl.threads, pl.smem, s>>>(a);
    });
    GOOSE_CUDA_LAUNCH_CHECK();
    return true;
}

}  // namespace goose::models::fused::cuda_kernels
