// Vectorised CUDA kernels of the fused RWKV-7 glue (16-byte loads: 8 bf16 or 4 f32 channels per
// thread; 8-byte bf16 in the backward of prep). A block is R row slots of C / V
// threads each, the grid one wave; a slot works through L rows, so a thread keeps fixed channels
// (parameter gradients stay in registers). token_mix: slot s of block b owns the L consecutive
// rows from (b R + s) L and carries the previous row; prep and out: slot g = b R + s owns rows
// g, g + G, g + 2 G, ... (G slots in the grid: the grid works on neighbouring rows together,
// slightly faster). Rows are staged through shared memory some rows ahead (row_stages.cuh).
// Per-head sums: the N / V lanes of a head (aligned, a power of two, within one warp) reduce by
// shuffles. Backward kernels sum their R slots in a fixed order into one partial row per block
// (deterministic); sum_partials_launch (column_sums.cu) adds the blocks.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <numeric>
#include <type_traits>

#include "core/cuda/cuda_check.h"
#include "ops/cuda/cuda_util.cuh"
#include "ops/cuda/row_stages.cuh"
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

using cuda_util::cp_wait;
using cuda_util::ldv;
using cuda_util::Stages;
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

// Queues stage i of a slot that walks the rows rb, rb + step, ... (a.L of them, those below
// a.rows; zeros past either end): the prep and out kernels, whose slots interleave rows.
template <class St, class T, int K, class Args>
__device__ __forceinline__ void queue_strided(St& st, int i, const T* const (&src)[K],
                                              const Place& p, const Args& a) {
    const int64_t r = p.rb + i * a.step;
    st.queue(i, src, r * a.C + p.c0, i < a.L && r < a.rows);
}

// Rows of a slot of L rows from rb, of rows in all (0 past the end).
__device__ __forceinline__ int slot_rows(int L, int64_t rows, int64_t rb) {
    return rb >= rows ? 0 : (rows - rb < L ? static_cast<int>(rows - rb) : L);
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

constexpr int kMixFwdStages = 4, kMixBwdStages = 2;

// The previous row of x for row r at position t of its sequence: prev (or zeros) at t = 0.
template <class T, int V>
__device__ __forceinline__ void load_xp(const MixArgsV<T>& a, int64_t r, int64_t t, int c0,
                                        float (&xp)[V]) {
    if (t == 0)
        ldv_or_zero(a.prev + (r / a.Tn) * a.C + c0, a.prev != nullptr, xp);
    else
        ldv(a.x + (r - 1) * a.C + c0, xp);
}

template <class T>
__global__ void __launch_bounds__(kMaxThreads, 2) mix_fwd_v(MixArgsV<T> a) {
    constexpr int V = vec_of<T>(), S = kMixFwdStages;
    extern __shared__ __align__(16) char smem[];
    Stages<T, V, 1, S> st(smem);
    const Place p = place<V>(a.C, a.L);
    const int n = slot_rows(a.L, a.rows, p.rb);
    if (n == 0) return;
    const T* const src[1] = {a.x};
    for (int i = 0; i < S - 1; ++i) st.queue(i, src, (p.rb + i) * a.C + p.c0, i < n);
    int64_t t = p.rb % a.Tn;
    float xp[V], xv[V], o[V], mu[V];
    load_xp<T, V>(a, p.rb, t, p.c0, xp);
    for (int i = 0; i < n; ++i) {
        const int64_t r = p.rb + i, off = r * a.C + p.c0;
        st.queue(i + S - 1, src, off + (S - 1) * int64_t(a.C), i + S - 1 < n);
        st.wait();
        st.get(i, 0, xv);
        if (t == 0 && i > 0) load_xp<T, V>(a, r, t, p.c0, xp);
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
        if (++t == a.Tn) t = 0;
    }
}

// dx[r] = gs[r] - dxx[r] + dxx[r+1] (gs = Σ_m g[m], dxx = Σ_m g[m] mu[m], dxx[r+1] = 0 past a
// sequence's end), written one row late: the row's own part is carried. dprev = dxx at t = 0,
// dmu[m] = Σ g[m] (xp - x). g[m] is the sum of mix m's gradients (a.g grouped by mix, added in
// f32 as they are read; a mix without any is skipped). MC: the number of mixing vectors when
// known at compile time, 0 for any a.M; GK: the gradients staged at most (a.G <= GK); S: the
// stages. Staged: x and the gradients of rows rb .. rb + n (those of the row after a slot's last
// complete its last dx). MUS: the mixing vectors copied to shared memory (f32) once, behind the
// stages, instead of read from global memory every row: no faster (bench/kernels/mix, H100
// B16 T512: 58.0 against 56.6 us), kept for the lab.
template <class T, int V, int MC, int GK, int S, bool MUS = false>
__global__ void __launch_bounds__(kMaxThreads, V == 4 ? 2 : 1) mix_bwd_v(MixArgsV<T> a) {
    constexpr int MM = MC > 0 ? MC : kMaxMix;
    constexpr int kStaged = Stages<T, V, 1 + GK, S>::kPerThread;
    constexpr int kPerThread = kStaged > V * 4 ? kStaged : V * 4;  // smem_of(true)
    extern __shared__ __align__(16) char smem[];
    Stages<T, V, 1 + GK, S> st(smem);
    const Place p = place<V>(a.C, a.L);
    const int M = MC > 0 ? MC : a.M;
    float* mus = reinterpret_cast<float*>(smem + static_cast<size_t>(kPerThread) * blockDim.x);
    if constexpr (MUS) {
#pragma unroll
        for (int m = 0; m < MM; ++m) {
            if (MC == 0 && m >= M) break;
            for (int c = threadIdx.x; c < a.C; c += blockDim.x)
                mus[m * a.C + c] = cuda_util::load_f(a.mu[m] + c);
        }
        __syncthreads();
    }
    // mixing vector m at this thread's channels
    auto get_mu = [&](int m, float(&mu)[V]) {
        if constexpr (MUS) {
#pragma unroll
            for (int j = 0; j < V; j += 4) {
                const float4 q = *reinterpret_cast<const float4*>(mus + m * a.C + p.c0 + j);
                mu[j] = q.x, mu[j + 1] = q.y, mu[j + 2] = q.z, mu[j + 3] = q.w;
            }
        } else {
            ldv(a.mu[m] + p.c0, mu);
        }
    };
    float acc[MM][V];
#pragma unroll
    for (int m = 0; m < MM; ++m) zero(acc[m]);
    // g[m] of staged row i into gv; false (gv untouched) when mix m has no gradient
    auto mix_grad = [&](int i, int m, float(&gv)[V]) {
        const int k0 = a.g_first[m], k1 = a.g_first[m + 1];
        if (k0 == k1) return false;
        st.get(i, 1 + k0, gv);
        for (int k = k0 + 1; k < k1; ++k) {
            float t[V];
            st.get(i, 1 + k, t);
#pragma unroll
            for (int j = 0; j < V; ++j) gv[j] += t[j];
        }
        return true;
    };
    const int n = slot_rows(a.L, a.rows, p.rb);
    if (n > 0) {  // not a return: every thread reaches the barriers of the partial sums
        const T* src[1 + GK];
        src[0] = a.x;
#pragma unroll
        for (int k = 0; k < GK; ++k) src[1 + k] = k < a.G ? a.g[k] : nullptr;
        const int64_t more = a.rows - p.rb;  // rows from rb on (g is read at row rb + n)
        // rows 0 .. n - 1 and row n if it exists (its x is read too: one row a slot)
        const int last = static_cast<int>(n < more ? n : more - 1);  // last row staged
        for (int i = 0; i < S - 1; ++i) st.queue(i, src, (p.rb + i) * a.C + p.c0, i <= last);
        int64_t t = p.rb % a.Tn;
        float xp[V], xv[V], carry[V], mu[V], gs[V], dxx[V], gv[V];
        load_xp<T, V>(a, p.rb, t, p.c0, xp);
        for (int i = 0; i < n; ++i) {
            const int64_t r = p.rb + i, off = r * a.C + p.c0;
            st.queue(i + S - 1, src, off + (S - 1) * int64_t(a.C), i + S - 1 <= last);
            st.wait();
            st.get(i, 0, xv);
            if (t == 0 && i > 0) load_xp<T, V>(a, r, t, p.c0, xp);
            zero(gs);
            zero(dxx);
#pragma unroll
            for (int m = 0; m < MM; ++m) {
                if (MC == 0 && m >= M) break;
                if (!mix_grad(i, m, gv)) continue;
                get_mu(m, mu);
#pragma unroll
                for (int j = 0; j < V; ++j) {
                    gs[j] += gv[j];
                    dxx[j] += gv[j] * mu[j];
                    acc[m][j] += gv[j] * (xp[j] - xv[j]);
                }
            }
            if (i > 0 && a.dx) {  // row r - 1
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
            if (++t == a.Tn) t = 0;
        }
        cp_wait<0>();
        if (a.dx) {  // the last row: dxx of the next row (staged), if in the same sequence
            if (t != 0) {
#pragma unroll
                for (int m = 0; m < MM; ++m) {
                    if (MC == 0 && m >= M) break;
                    if (!mix_grad(n, m, gv)) continue;
                    get_mu(m, mu);
#pragma unroll
                    for (int j = 0; j < V; ++j) carry[j] += gv[j] * mu[j];
                }
            }
            stv(a.dx + (p.rb + n - 1) * a.C + p.c0, carry);
        }
    }
    if (!a.part) return;  // uniform over the block
    float* sm = reinterpret_cast<float*>(smem);
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
    int64_t rows, step;  // step: rows between a slot's rows (the slots of the grid)
    int C, N, L;
};

constexpr int kPrepFwdStages = 2, kPrepBwdStages = 3;

// GATE: layers > 0 (v mixed towards v_first). Staged: wl, al, kr [, vr, vf, vl].
template <class T, int V, bool GATE>
__global__ void __launch_bounds__(kMaxThreads, 2) prep_fwd_v(PrepArgsV<T> a) {
    constexpr int S = kPrepFwdStages, K = GATE ? 6 : 3;
    extern __shared__ __align__(16) char smem[];
    Stages<T, V, K, S> st(smem);
    const Place p = place<V>(a.C, 1);  // rb: the slot in the grid, its first row
    const int lph = a.N / V;
    float w0[V], a0[V], kkp[V], ka[V], v0[V];
    ldv(a.w0 + p.c0, w0);
    ldv(a.a0 + p.c0, a0);
    ldv(a.kk + p.c0, kkp);
    ldv(a.ka + p.c0, ka);
    if constexpr (GATE) ldv(a.v0 + p.c0, v0);
    const T* src[K];
    src[0] = a.wl, src[1] = a.al, src[2] = a.kr;
    if constexpr (GATE) src[3] = a.vr, src[4] = a.vf, src[5] = a.vl;
    for (int i = 0; i < S - 1; ++i) queue_strided(st, i, src, p, a);
    for (int i = 0; i < a.L; ++i) {  // uniform trip count: the head sums shuffle
        const int64_t r = p.rb + i * a.step;
        const bool ok = r < a.rows;
        const int64_t off = r * a.C + p.c0;
        queue_strided(st, i + S - 1, src, p, a);
        st.wait();
        float s[V], z[V], t1[V], t2[V], zz = 0.f;
        st.get(i, 0, t1);
#pragma unroll
        for (int j = 0; j < V; ++j) t1[j] += w0[j];
        if (ok) stv(a.w + off, t1);
        st.get(i, 1, t1);
        st.get(i, 2, t2);
#pragma unroll
        for (int j = 0; j < V; ++j) {
            s[j] = sigm(a0[j] + t1[j]);
            z[j] = t2[j] * kkp[j];
            zz += z[j] * z[j];
            t1[j] = t2[j] * (1.f + (s[j] - 1.f) * ka[j]);
        }
        if (ok) stv(a.k + off, t1);
        if constexpr (GATE) {
            float vr[V];
            st.get(i, 3, vr);
            st.get(i, 4, t1);
            st.get(i, 5, t2);
#pragma unroll
            for (int j = 0; j < V; ++j) t1[j] = vr[j] + (t1[j] - vr[j]) * sigm(v0[j] + t2[j]);
            if (ok) stv(a.v + off, t1);
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

// GATE: layers > 0. Staged: gw, al, kr, gbb, gaa, gk [, gv, vr, vf, vl].
template <class T, int V, bool GATE>
__global__ void __launch_bounds__(kMaxThreads, V == 4 ? 2 : 1) prep_bwd_v(PrepArgsV<T> a) {
    constexpr int S = kPrepBwdStages, K = GATE ? 10 : 6;
    extern __shared__ __align__(16) char smem[];
    Stages<T, V, K, S> st(smem);
    const Place p = place<V>(a.C, 1);  // rb: the slot in the grid, its first row
    const int lph = a.N / V;
    float acc[5][V];  // w0, a0, v0, kk, ka
#pragma unroll
    for (int k = 0; k < 5; ++k) zero(acc[k]);
    float kkp[V];
    ldv(a.kk + p.c0, kkp);
    const T* src[K];
    src[0] = a.gw, src[1] = a.al, src[2] = a.kr, src[3] = a.gbb, src[4] = a.gaa, src[5] = a.gk;
    if constexpr (GATE) src[6] = a.gv, src[7] = a.vr, src[8] = a.vf, src[9] = a.vl;
    for (int i = 0; i < S - 1; ++i) queue_strided(st, i, src, p, a);
    for (int i = 0; i < a.L; ++i) {
        const int64_t r = p.rb + i * a.step;
        const bool ok = r < a.rows;
        const int64_t off = r * a.C + p.c0;
        queue_strided(st, i + S - 1, src, p, a);
        st.wait();
        // kept over the head sums: d (gradient of kk), kr, dkr, and the gradient of a's
        // pre-sigmoid as A + B / norm (A from the k path, B from b = kk a)
        float d[V], kr[V], dkr[V], A[V], B[V];
        float zz = 0.f, dz = 0.f;
        if (ok) {
            if constexpr (GATE) {  // v = vr + (vf - vr) sigmoid(v0 + vl): no head sums
                float gv[V], vr[V], vf[V], sv[V], t[V];
                st.get(i, 6, gv);
                st.get(i, 7, vr);
                st.get(i, 8, vf);
                st.get(i, 9, sv);
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
                if (a.dvf_add) {  // v_first's gradient gathered so far
                    ldv(a.dvf_add + off, t);
#pragma unroll
                    for (int j = 0; j < V; ++j) t[j] += gv[j];
                    stv(a.dvf + off, t);
                } else {
                    stv(a.dvf + off, gv);
                }
                stv(a.dvl + off, vf);
            }
            float t1[V], t2[V], s[V];
            st.get(i, 0, t1);
#pragma unroll
            for (int j = 0; j < V; ++j) acc[0][j] += t1[j];
            st.get(i, 1, t1);
            ldv(a.a0 + p.c0, t2);
#pragma unroll
            for (int j = 0; j < V; ++j) s[j] = sigm(t2[j] + t1[j]);
            st.get(i, 2, kr);
            st.get(i, 3, t1);
            st.get(i, 4, t2);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const float z = kr[j] * kkp[j], q = s[j] * (1.f - s[j]);
                zz += z * z;
                d[j] = t1[j] * s[j] - t2[j];
                dz += d[j] * z;
                B[j] = t1[j] * z * q;
            }
            st.get(i, 5, t1);
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
    cp_wait<0>();  // the zeros queued past the last row land before smem is reused
    block_partials<5, V>(acc, reinterpret_cast<float*>(smem), a.part, a.C, p);
}

// ---- rwkv7_out --------------------------------------------------------------------------------

template <class T>
struct OutArgsV : OutView<T> {
    int64_t rows, step;  // step: rows between a slot's rows (the slots of the grid)
    int C, N, L;
    float eps;
};

constexpr int kOutFwdStages = 3, kOutBwdStages = 3;

// One row's per-head statistics of out (forward and backward) from the thread's y, r, k (zeros
// past the last row): centres y on its head mean in place and returns its head rstd and
// s = Σ_head r k r_k.
struct OutRowStats {
    float rstd, s;
};
template <int V>
__device__ __forceinline__ OutRowStats out_row_stats(int N, float eps, const float (&rk)[V],
                                                     int lph, float (&y)[V], const float (&r)[V],
                                                     const float (&k)[V]) {
    const float inv_n = 1.f / static_cast<float>(N);
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
    return {rsqrtf(head_sum(q, lph) * inv_n + eps), s};
}

// Staged: y, r, k, v, g.
template <class T>
__global__ void __launch_bounds__(kMaxThreads, 2) out_fwd_v(OutArgsV<T> a) {
    constexpr int V = vec_of<T>(), S = kOutFwdStages, K = 5;
    extern __shared__ __align__(16) char smem[];
    Stages<T, V, K, S> st(smem);
    const Place p = place<V>(a.C, 1);  // rb: the slot in the grid, its first row
    const int lph = a.N / V;
    float rk[V], lw[V], lb[V];
    ldv(a.rk + p.c0, rk);
    ldv(a.lw + p.c0, lw);
    ldv(a.lb + p.c0, lb);
    const T* const src[K] = {a.y, a.r, a.k, a.v, a.g};
    for (int i = 0; i < S - 1; ++i) queue_strided(st, i, src, p, a);
    for (int i = 0; i < a.L; ++i) {
        const int64_t r = p.rb + i * a.step;
        const bool ok = r < a.rows;
        const int64_t off = r * a.C + p.c0;
        queue_strided(st, i + S - 1, src, p, a);
        st.wait();
        float y[V], t1[V], t2[V];
        st.get(i, 0, y);
        st.get(i, 1, t1);
        st.get(i, 2, t2);
        const OutRowStats rs = out_row_stats<V>(a.N, a.eps, rk, lph, y, t1, t2);
        if (ok) {
            st.get(i, 3, t1);
            st.get(i, 4, t2);
#pragma unroll
            for (int j = 0; j < V; ++j)
                t1[j] = (y[j] * rs.rstd * lw[j] + lb[j] + rs.s * t1[j]) * t2[j];
            stv(a.z + off, t1);
        }
    }
}

// Staged: y, r, k, gz, g, v.
template <class T>
__global__ void __launch_bounds__(kMaxThreads) out_bwd_v(OutArgsV<T> a) {
    constexpr int V = vec_of<T>(), S = kOutBwdStages, K = 6;
    extern __shared__ __align__(16) char smem[];
    Stages<T, V, K, S> st(smem);
    const Place p = place<V>(a.C, 1);  // rb: the slot in the grid, its first row
    const int lph = a.N / V;
    const float inv_n = 1.f / static_cast<float>(a.N);
    float acc[3][V];  // r_k, ln_w, ln_b
#pragma unroll
    for (int k = 0; k < 3; ++k) zero(acc[k]);
    float rk[V], lw[V], lb[V];
    ldv(a.rk + p.c0, rk);
    ldv(a.lw + p.c0, lw);
    ldv(a.lb + p.c0, lb);
    const T* const src[K] = {a.y, a.r, a.k, a.gz, a.g, a.v};
    for (int i = 0; i < S - 1; ++i) queue_strided(st, i, src, p, a);
    for (int i = 0; i < a.L; ++i) {
        const int64_t r = p.rb + i * a.step;
        const bool ok = r < a.rows;
        const int64_t off = r * a.C + p.c0;
        queue_strided(st, i + S - 1, src, p, a);
        st.wait();
        float h[V], rr[V], kk[V], d[V], t1[V], t2[V], t3[V];
        st.get(i, 0, h);
        st.get(i, 1, rr);
        st.get(i, 2, kk);
        const OutRowStats rs = out_row_stats<V>(a.N, a.eps, rk, lph, h, rr, kk);
        const float rstd = rs.rstd, s = rs.s;
        float sv = 0.f, s1 = 0.f, s2 = 0.f;
        st.get(i, 3, t1);
        st.get(i, 4, t2);
        st.get(i, 5, t3);
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
    cp_wait<0>();  // the zeros queued past the last row land before smem is reused
    block_partials<3, V>(acc, reinterpret_cast<float*>(smem), a.part, a.C, p);
}

// ---- plans and launchers ----------------------------------------------------------------------

// Launch shape of a vectorised row kernel: R slots of C / V threads, L rows per slot.
struct Plan {
    int threads = 0, R = 0, L = 0, blocks = 0;
    size_t smem = 0;
};

// R: the fewest slots for a whole number of warps, times the most that keeps the block at
// kTargetThreads or less; the grid fills the GPU once (occupancy of `kernel`), L = rows per slot.
// smem_per_thread: the kernel's shared bytes a thread (its row stages, its partial sums).
template <class K>
Plan make_plan(K kernel, int64_t rows, int C, int V, int smem_per_thread, size_t smem_extra = 0) {
    Plan p;
    const int tpr = C / V;
    const int unit = std::lcm(tpr, 32) / tpr;
    p.R = unit * std::max(1, kTargetThreads / (unit * tpr));
    p.threads = p.R * tpr;
    p.smem = static_cast<size_t>(p.threads) * smem_per_thread + smem_extra;
    GOOSE_CUDA_CHECK(
        cuda_util::allow_dynamic_smem(reinterpret_cast<const void*>(kernel), p.smem));
    int per_sm = 0;
    GOOSE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, p.threads,
                                                                   p.smem));
    const int64_t target = int64_t(std::max(per_sm, 1)) * cuda_util::num_sms();
    p.L = static_cast<int>(std::max<int64_t>(1, (rows + p.R * target - 1) / (p.R * target)));
    p.blocks = static_cast<int>((rows + int64_t(p.R) * p.L - 1) / (int64_t(p.R) * p.L));
    return p;
}

// Launches kernel(args) with plan pl on stream s.
template <class K, class A>
void launch(K kernel, const Plan& pl, cudaStream_t s, const A& args) {
    GOOSE_CUDA_CHECK(
        cuda_util::allow_dynamic_smem(reinterpret_cast<const void*>(kernel), pl.smem));
    kernel<<<pl.blocks, pl.threads, pl.smem, s>>>(args);
}

// Shared bytes a thread of a kernel staging K tensors in S stages needs; partials: it also sums
// V float partials through shared memory.
template <class T, int V, int K, int S>
constexpr int smem_of(bool partials) {
    return std::max(Stages<T, V, K, S>::kPerThread, partials ? V * 4 : 0);
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

// Channels per thread of the backward kernel of prep: 4 where they fit (bf16: 8-byte
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

// Calls f(kernel, V, shared bytes a thread, shared bytes beside) with the backward token_mix
// kernel for (T, C, M, G): the RWKV-7 time mix's six mixes with up to seven gradients (v: the
// value's and the v LoRA's), one mix with one, or any M <= kMaxMix and G <= kMaxMixGrads.
// 16-byte pieces (8 bf16 or 4 f32 channels a thread, cp.async.cg past L1) in two stages:
// measured against 8-byte pieces (4 bf16 channels) in three, H100 B16 T512 C768, seven
// gradients: 56.6 against 69.7 us (lab, cold L2), 50.5 against 65.6 us (ncu inside a training
// step), L12 training 281.0k / 281.4k against 278.8k / 279.5k tokens/s (bench/kernels/mix/NOTES.md).
template <class T, class F>
void with_mix_kernel(int C, int M, int G, F&& f) {
    constexpr int V = vec_of<T>(), S = kMixBwdStages;
    if (M == 6 && G <= 7)
        f(mix_bwd_v<T, V, 6, 7, S>, V, smem_of<T, V, 8, S>(true), size_t(0));
    else if (M == 1 && G == 1)
        f(mix_bwd_v<T, V, 1, 1, S>, V, smem_of<T, V, 2, S>(true), size_t(0));
    else
        f(mix_bwd_v<T, V, 0, kMaxMixGrads, S>, V, smem_of<T, V, 1 + kMaxMixGrads, S>(true),
          size_t(0));
}

template <class T>
Plan mix_plan(int64_t rows, int C, int M, int G, bool backward) {
    constexpr int V = vec_of<T>();
    if (!backward)
        return make_plan(mix_fwd_v<T>, rows, C, V, smem_of<T, V, 1, kMixFwdStages>(false));
    Plan p;
    with_mix_kernel<T>(C, M, G, [&](auto kernel, int v, int sm, size_t extra) {
        p = make_plan(kernel, rows, C, v, sm, extra);
    });
    return p;
}
// Calls f(kernel, V) with the backward prep kernel for (T, C, N, gate).
template <class T, class F>
void with_prep_kernel(int C, int N, bool gate, F&& f) {
    by_vec(std::is_same_v<T, float> ? 4 : bwd_vec(C, N, true), [&](auto v) {
        constexpr int V = decltype(v)::value;
        if constexpr (valid_vec<T>(V)) {
            constexpr int S = kPrepBwdStages;
            if (gate)
                f(prep_bwd_v<T, V, true>, V, smem_of<T, V, 10, S>(true));
            else
                f(prep_bwd_v<T, V, false>, V, smem_of<T, V, 6, S>(true));
        }
    });
}

template <class T>
Plan prep_plan(int64_t rows, int C, int N, bool backward, bool gate) {
    constexpr int V = vec_of<T>(), S = kPrepFwdStages;
    if (!backward)
        return gate ? make_plan(prep_fwd_v<T, V, true>, rows, C, V, smem_of<T, V, 6, S>(false))
                    : make_plan(prep_fwd_v<T, V, false>, rows, C, V, smem_of<T, V, 3, S>(false));
    // The backward plans with the gated kernel either way: prep_vec_chunks does not know the
    // gate, and the plan sets the chunks its partial sums fill.
    Plan p;
    with_prep_kernel<T>(C, N, true, [&](auto kernel, int v, int sm) {
        p = make_plan(kernel, rows, C, v, sm);
    });
    return p;
}
template <class T>
Plan out_plan(int64_t rows, int C, bool backward) {
    constexpr int V = vec_of<T>();
    return backward ? make_plan(out_bwd_v<T>, rows, C, V, smem_of<T, V, 6, kOutBwdStages>(true))
                    : make_plan(out_fwd_v<T>, rows, C, V, smem_of<T, V, 5, kOutFwdStages>(false));
}

bool aligned(const void* p) { return cuda_util::aligned16(p); }

template <class F>
void by_dtype(bool bf16, F&& f) {
    if (bf16)
        f(cuda_util::bf16{});
    else
        f(float{});
}

}  // namespace

// Whether the vector kernels take (C, N) in both directions (N = 0: no heads).
bool vec_ok(int C, int N, bool bf16) {
    return fits(bf16 ? 8 : 4, C, N) && bwd_vec(C, N, bf16) != 0;
}

int mix_vec_chunks(int64_t rows, int C, int M, int G, bool bf16) {
    int n = 0;
    if (vec_ok(C, 0, bf16))
        by_dtype(bf16, [&](auto tag) {
            n = mix_plan<decltype(tag)>(rows, C, M, G, true).blocks;
        });
    return n;
}
int prep_vec_chunks(int64_t rows, int C, int N, bool bf16) {
    int n = 0;
    if (vec_ok(C, N, bf16))
        by_dtype(bf16, [&](auto tag) {
            n = prep_plan<decltype(tag)>(rows, C, N, true, true).blocks;
        });
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
        if (!aligned(p.mu[i]) || !aligned(p.out[i])) return false;
    for (int i = 0; i < p.G; ++i)
        if (!aligned(p.g[i])) return false;
    by_dtype(bf16, [&](auto tag) {
        using T = decltype(tag);
        MixArgsV<T> a{view_of<T>(p)};
        a.rows = B * Tn;
        a.Tn = Tn;
        a.C = static_cast<int>(C);
        const Plan pl = mix_plan<T>(a.rows, a.C, a.M, a.G, backward);
        a.L = pl.L;
        const auto s = static_cast<cudaStream_t>(st);
        if (backward)
            with_mix_kernel<T>(a.C, a.M, a.G, [&](auto kernel, int, int, size_t) {
                launch(kernel, pl, s, a);
            });
        else
            launch(mix_fwd_v<T>, pl, s, a);
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
        const Plan pl = prep_plan<T>(rows, C, N, backward, a.vl != nullptr);
        a.L = pl.L;
        a.step = int64_t(pl.blocks) * pl.R;  // the slots of the grid
        const auto s = static_cast<cudaStream_t>(st);
        if (backward)
            with_prep_kernel<T>(C, N, a.vl != nullptr, [&](auto kernel, int, int) {
                launch(kernel, pl, s, a);
            });
        else if (a.vl)
            launch(prep_fwd_v<T, vec_of<T>(), true>, pl, s, a);
        else
            launch(prep_fwd_v<T, vec_of<T>(), false>, pl, s, a);
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
        a.step = int64_t(pl.blocks) * pl.R;  // the slots of the grid
        const auto s = static_cast<cudaStream_t>(st);
        if (backward)
            launch(out_bwd_v<T>, pl, s, a);
        else
            launch(out_fwd_v<T>, pl, s, a);
    });
    GOOSE_CUDA_LAUNCH_CHECK();
    return true;
}

}  // namespace goose::models::fused::cuda_kernels
