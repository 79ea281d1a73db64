// WKV-7 CUDA kernels (forward and backstepping backward), raw pointers, no goose dependencies
// (the kernel lab bench/kernels/wkv7 includes this file as is).
//
// Layouts: r, w, k, v, a, b, y, dy and their gradients (B, T, H, N) in T_IO (float or bf16);
// state in/out (B, H, N, N) f32, row = value i, column = key j; saved for the backward: sa
// (B, T, H, N) f32 (sa_i = sum_j S_{t-1}[i, j] a_j) and the state after the last step of every
// 16-step chunk, snaps (B, H, chunks, N, N) f32 (row-major like the state). w is the raw decay:
// decay_j = exp(-exp(-0.5) sigmoid(w_j)) is formed in f32 inside. Any T >= 1 (the last chunk
// may be short). N is 16, 32 or 64.
//
// Forward: one block per (h, b, group of R value rows); P threads share one value row i, each
// owning N/P columns of it in registers; sa and y are summed over the P lanes by shuffles.
// Backward (spec rwkv7.md §8.3): one block of N*P threads per (h, b); thread x*P+q holds
// (1) column x of the state S rows [q C, q C + C) (C = N/P), (2) the same piece of dL/dS
// ("column view": key sums dr, dw, dk, db, da), (3) row x of dL/dS, columns [q C, q C + C)
// ("row view": value sums dv, dsa). It walks t backwards, reloading S from the snapshot at the
// end of every chunk and reconstructing the earlier states by inverting the update
// (decay >= 0.545). Both kernels stage the inputs of a 16-step chunk into shared memory with
// cp.async, one chunk ahead, and convert them to f32 once.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace goose_wkv7 {

constexpr int kChunk = 16;
constexpr float kDecayScale = 0.6065306597126334f;  // exp(-0.5)

struct Dims {
    int B, T, H, N;
    __host__ __device__ int chunks() const { return (T + kChunk - 1) / kChunk; }
};

template <class T>
struct FwdArgs {
    const T *r, *w, *k, *v, *a, *b;
    const float* state_in;  // (B, H, N, N) or null (zeros)
    T* y;
    float* sa;         // (B, T, H, N)
    float* snaps;      // (B, H, chunks, N, N)
    float* state_out;  // (B, H, N, N)
};

template <class T>
struct BwdArgs {
    const T *r, *w, *k, *v, *a, *b, *dy;
    const float* dstate_out;  // gradient of the final state (B, H, N, N) or null (zeros)
    const float* sa;
    const float* snaps;
    T *dr, *dw, *dk, *dv, *da, *db;
    float* dstate_in;  // (B, H, N, N)
};

namespace detail {

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) {
    return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int n>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(n) : "memory");
}

// Starts copying rows t0 .. t0+nt-1 of one (b, h) of a (B, T, H, N) tensor into dst[nt][N];
// src points at element (b, 0, h, 0), rows are row_stride = H N elements apart.
template <class T, int N>
__device__ __forceinline__ void stage_rows(T* dst, const T* src, int64_t row_stride, int t0,
                                           int nt, int tid, int nthreads) {
    constexpr int kPer = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte piece
    constexpr int kPieces = N / kPer;                       // pieces per row
    for (int e = tid; e < nt * kPieces; e += nthreads) {
        const int t = e / kPieces, p = e % kPieces;
        cp_async16(dst + t * N + p * kPer, src + static_cast<int64_t>(t0 + t) * row_stride + p * kPer);
    }
}

template <int P>
__device__ __forceinline__ float lane_sum(float x) {  // sum over the P adjacent lanes of a row
#pragma unroll
    for (int o = P / 2; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

// sum_c x[c] y[c] over C values with four independent accumulators.
template <int C>
__device__ __forceinline__ float dot(const float* x, const float* y) {
    float s[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int c = 0; c < C; ++c) s[c % 4] = fmaf(x[c], y[c], s[c % 4]);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

// Copies C floats from shared memory (16-byte aligned) into registers.
template <int C>
__device__ __forceinline__ void load_vec(float* dst, const float* src) {
    if constexpr (C % 4 == 0) {
#pragma unroll
        for (int c = 0; c < C; c += 4) {
            const float4 v = *reinterpret_cast<const float4*>(src + c);
            dst[c] = v.x;
            dst[c + 1] = v.y;
            dst[c + 2] = v.z;
            dst[c + 3] = v.w;
        }
    } else {
#pragma unroll
        for (int c = 0; c < C; ++c) dst[c] = src[c];
    }
}

__device__ __forceinline__ float sigmoid_f(float x) { return 1.f / (1.f + expf(-x)); }

}  // namespace detail

// ---- forward --------------------------------------------------------------------------------

template <class T, int N>
constexpr size_t fwd_smem_bytes() {
    return 2 * 6 * kChunk * N * sizeof(T) + 6 * kChunk * N * sizeof(float);
}

template <class T, int N, int P, int R, bool kFused>
__global__ void __launch_bounds__(R * P, 1) wkv7_forward_kernel(Dims D, FwdArgs<T> A) {
    using namespace detail;
    constexpr int C = N / P, NT = R * P, L = kChunk * N;
    static_assert(N % P == 0 && N % R == 0 && C % 4 == 0, "bad WKV-7 forward split");
    static_assert(P == 1 || NT % 32 == 0, "row lanes must fill whole warps");
    extern __shared__ __align__(16) unsigned char smem[];
    T* stage = reinterpret_cast<T*>(smem);                                    // [2][6][16][N]
    float* f = reinterpret_cast<float*>(smem + 2 * 6 * L * sizeof(T));       // [6][16][N]
    float *fr = f, *fd = f + L, *fk = f + 2 * L, *fv = f + 3 * L, *fa = f + 4 * L, *fb = f + 5 * L;

    const int h = blockIdx.x, bb = blockIdx.y;
    const int tid = threadIdx.x, q = tid % P, i = blockIdx.z * R + tid / P;
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;  // element (bb, 0, h, 0)
    const T* src[6] = {A.r + base, A.w + base, A.k + base, A.v + base, A.a + base, A.b + base};
    const int64_t state_off = (static_cast<int64_t>(bb) * H + h) * N * N + i * N + q * C;

    float S[C];
    if (A.state_in) {
        load_vec<C>(S, A.state_in + state_off);  // global, 16-byte aligned
    } else {
#pragma unroll
        for (int c = 0; c < C; ++c) S[c] = 0.f;
    }

    auto issue = [&](int c, int buf) {
        const int t0 = c * kChunk, nt = min(kChunk, Tn - t0);
#pragma unroll
        for (int m = 0; m < 6; ++m)
            stage_rows<T, N>(stage + (buf * 6 + m) * L, src[m], HN, t0, nt, tid, NT);
        cp_async_commit();
    };
    issue(0, 0);
    for (int c = 0; c < NC; ++c) {
        const int buf = c & 1, t0 = c * kChunk, nt = min(kChunk, Tn - t0);
        if (c + 1 < NC) {
            issue(c + 1, buf ^ 1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();  // chunk c staged by every thread; chunk c-1's f32 rows no longer read
        const T* st = stage + buf * 6 * L;
        for (int e = tid; e < nt * N; e += NT) {
            fr[e] = to_f(st[e]);
            fd[e] = expf(-kDecayScale * sigmoid_f(to_f(st[L + e])));
            fk[e] = to_f(st[2 * L + e]);
            fv[e] = to_f(st[3 * L + e]);
            fa[e] = to_f(st[4 * L + e]);
            fb[e] = to_f(st[5 * L + e]);
        }
        __syncthreads();
        if constexpr (kFused) {
            // y_t = S_t r_t and the next step's sa = S_t a_{t+1} in one pass over the state (the
            // row after the last one is other data, computed and never used).
            float x[C], z[C];
            load_vec<C>(x, fa + q * C);
            float sa = lane_sum<P>(dot<C>(S, x));
            for (int tt = 0; tt < nt; ++tt) {
                const int o = tt * N + q * C;
                const float vi = fv[tt * N + i];
                load_vec<C>(x, fd + o);
                load_vec<C>(z, fk + o);
#pragma unroll
                for (int cc = 0; cc < C; ++cc) S[cc] = fmaf(S[cc], x[cc], vi * z[cc]);
                load_vec<C>(x, fb + o);
#pragma unroll
                for (int cc = 0; cc < C; ++cc) S[cc] = fmaf(sa, x[cc], S[cc]);
                load_vec<C>(x, fr + o);
                load_vec<C>(z, fa + o + N);
                const float y = lane_sum<P>(dot<C>(S, x));
                const float sa_next = lane_sum<P>(dot<C>(S, z));
                if (q == 0) {
                    const int64_t off = base + static_cast<int64_t>(t0 + tt) * HN + i;
                    A.y[off] = from_f<T>(y);
                    A.sa[off] = sa;
                }
                sa = sa_next;
            }
        } else {
            for (int tt = 0; tt < nt; ++tt) {
                const int o = tt * N + q * C;
                float x[C];
                load_vec<C>(x, fa + o);
                const float sa = lane_sum<P>(dot<C>(S, x));
                const float vi = fv[tt * N + i];
                float dd[C], kb[C];
                load_vec<C>(dd, fd + o);
                load_vec<C>(kb, fk + o);
#pragma unroll
                for (int cc = 0; cc < C; ++cc) S[cc] = fmaf(S[cc], dd[cc], vi * kb[cc]);
                load_vec<C>(kb, fb + o);
#pragma unroll
                for (int cc = 0; cc < C; ++cc) S[cc] = fmaf(sa, kb[cc], S[cc]);
                load_vec<C>(x, fr + o);
                const float y = lane_sum<P>(dot<C>(S, x));
                if (q == 0) {
                    const int64_t off = base + static_cast<int64_t>(t0 + tt) * HN + i;
                    A.y[off] = from_f<T>(y);
                    A.sa[off] = sa;
                }
            }
        }
        float* snap = A.snaps + ((static_cast<int64_t>(bb) * H + h) * NC + c) * N * N + i * N + q * C;
#pragma unroll
        for (int cc = 0; cc < C; cc += 4)
            *reinterpret_cast<float4*>(snap + cc) = make_float4(S[cc], S[cc + 1], S[cc + 2], S[cc + 3]);
    }
#pragma unroll
    for (int cc = 0; cc < C; cc += 4)
        *reinterpret_cast<float4*>(A.state_out + state_off + cc) =
            make_float4(S[cc], S[cc + 1], S[cc + 2], S[cc + 3]);
}

// ---- backward -------------------------------------------------------------------------------

template <class T, int N>
constexpr size_t bwd_smem_bytes() {
    // staged raw rows: 7 tensors in T plus sa in f32, two chunks; f32 rows of 10 quantities;
    // dsa of two steps.
    return 2 * kChunk * N * (7 * sizeof(T) + sizeof(float)) + 10 * kChunk * N * sizeof(float) +
           2 * N * sizeof(float);
}

template <class T, int N, int P>
__global__ void __launch_bounds__(N * P, 1) wkv7_backward_kernel(Dims D, BwdArgs<T> A) {
    using namespace detail;
    constexpr int C = N / P, NT = N * P, L = kChunk * N;
    constexpr bool kPrefetchSnap = C <= 32;  // registers for the next snapshot
    static_assert(N % P == 0 && C % 4 == 0, "bad WKV-7 backward split");
    static_assert(P == 1 || NT % 32 == 0, "row lanes must fill whole warps");
    extern __shared__ __align__(16) unsigned char smem[];
    T* stage = reinterpret_cast<T*>(smem);                                     // [2][7][16][N]
    float* stage_sa = reinterpret_cast<float*>(smem + 2 * 7 * L * sizeof(T));  // [2][16][N]
    float* f = stage_sa + 2 * L;                                               // [10][16][N]
    float *fr = f, *fd = f + L, *finv = f + 2 * L, *fdw = f + 3 * L, *fk = f + 4 * L,
          *fv = f + 5 * L, *fa = f + 6 * L, *fb = f + 7 * L, *fdy = f + 8 * L, *fsa = f + 9 * L;
    float* dsa_s = f + 10 * L;  // [2][N]

    const int h = blockIdx.x, bb = blockIdx.y;
    const int tid = threadIdx.x, q = tid % P, x = tid / P;
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;
    const T* src[7] = {A.r + base, A.w + base, A.k + base, A.v + base,
                       A.a + base, A.b + base, A.dy + base};
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;
    const float* snaps = A.snaps + (static_cast<int64_t>(bb) * H + h) * NC * N * N;

    float S[C], dSc[C], dSr[C];  // S[c] = S[qC+c][x]; dSc[c] = dS[qC+c][x]; dSr[c] = dS[x][qC+c]
    float Snext[kPrefetchSnap ? C : 1];
    auto load_col = [&](float* dst, const float* m) {  // column x, rows qC .. qC+C-1
#pragma unroll
        for (int c = 0; c < C; ++c) dst[c] = m[(q * C + c) * N + x];
    };
    load_col(S, snaps + static_cast<int64_t>(NC - 1) * N * N);
    if (A.dstate_out) {
        load_col(dSc, A.dstate_out + bh_state);
        load_vec<C>(dSr, A.dstate_out + bh_state + x * N + q * C);
    } else {
#pragma unroll
        for (int c = 0; c < C; ++c) dSc[c] = dSr[c] = 0.f;
    }

    auto issue = [&](int c, int buf) {
        const int t0 = c * kChunk, nt = min(kChunk, Tn - t0);
#pragma unroll
        for (int m = 0; m < 7; ++m)
            stage_rows<T, N>(stage + (buf * 7 + m) * L, src[m], HN, t0, nt, tid, NT);
        stage_rows<float, N>(stage_sa + buf * L, A.sa + base, HN, t0, nt, tid, NT);
        cp_async_commit();
    };
    issue(NC - 1, (NC - 1) & 1);
    for (int c = NC - 1; c >= 0; --c) {
        const int buf = c & 1, t0 = c * kChunk, nt = min(kChunk, Tn - t0);
        if (c > 0) {
            issue(c - 1, buf ^ 1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        if (c < NC - 1) {  // the exact state at the end of this chunk
            if constexpr (kPrefetchSnap) {
#pragma unroll
                for (int cc = 0; cc < C; ++cc) S[cc] = Snext[cc];
            } else {
                load_col(S, snaps + static_cast<int64_t>(c) * N * N);
            }
        }
        if constexpr (kPrefetchSnap) {
            if (c > 0) load_col(Snext, snaps + static_cast<int64_t>(c - 1) * N * N);
        }
        __syncthreads();
        const T* st = stage + buf * 7 * L;
        const float* ssa = stage_sa + buf * L;
        for (int e = tid; e < nt * N; e += NT) {
            fr[e] = to_f(st[e]);
            const float sg = sigmoid_f(to_f(st[L + e]));
            const float d = expf(-kDecayScale * sg);
            fd[e] = d;
            finv[e] = 1.f / d;
            fdw[e] = -kDecayScale * d * sg * (1.f - sg);
            fk[e] = to_f(st[2 * L + e]);
            fv[e] = to_f(st[3 * L + e]);
            fa[e] = to_f(st[4 * L + e]);
            fb[e] = to_f(st[5 * L + e]);
            fdy[e] = to_f(st[6 * L + e]);
            fsa[e] = ssa[e];
        }
        __syncthreads();
        for (int tt = nt - 1; tt >= 0; --tt) {
            const int row = tt * N, o = row + q * C;
            const int64_t gout = base + static_cast<int64_t>(t0 + tt) * HN + x;
            float u[C], z[C];
            // Column view (key x): dr from S_t; dS += dy rᵀ; S_{t-1}; dd, dk, db.
            const float rj = fr[row + x], kj = fk[row + x], bj = fb[row + x],
                        invj = finv[row + x];
            load_vec<C>(u, fdy + o);
            const float dr = dot<C>(S, u);
#pragma unroll
            for (int cc = 0; cc < C; ++cc) dSc[cc] = fmaf(u[cc], rj, dSc[cc]);
            load_vec<C>(u, fv + o);
            load_vec<C>(z, fsa + o);
#pragma unroll
            for (int cc = 0; cc < C; ++cc) S[cc] = (S[cc] - u[cc] * kj - z[cc] * bj) * invj;
            const float dd = dot<C>(dSc, S), dk = dot<C>(dSc, u), db = dot<C>(dSc, z);
            // Row view (value x): dS += dy rᵀ; dv, dsa; dS <- dS diag(decay) + dsa aᵀ.
            const float dyi = fdy[row + x];
            load_vec<C>(u, fr + o);
#pragma unroll
            for (int cc = 0; cc < C; ++cc) dSr[cc] = fmaf(dyi, u[cc], dSr[cc]);
            load_vec<C>(u, fk + o);
            load_vec<C>(z, fb + o);
            const float dv = lane_sum<P>(dot<C>(dSr, u));
            const float dsa = lane_sum<P>(dot<C>(dSr, z));
            load_vec<C>(u, fd + o);
            load_vec<C>(z, fa + o);
#pragma unroll
            for (int cc = 0; cc < C; ++cc) dSr[cc] = fmaf(dSr[cc], u[cc], dsa * z[cc]);
            if (q == 0) {
                dsa_s[(tt & 1) * N + x] = dsa;
                A.dv[gout] = from_f<T>(dv);
            }
            __syncthreads();
            // Column view: da; dS <- dS diag(decay) + dsa aᵀ.
            load_vec<C>(u, dsa_s + (tt & 1) * N + q * C);
            const float da = dot<C>(S, u);
            const float dj = fd[row + x], aj = fa[row + x];
#pragma unroll
            for (int cc = 0; cc < C; ++cc) dSc[cc] = fmaf(dSc[cc], dj, u[cc] * aj);
            const float s_dr = lane_sum<P>(dr), s_dd = lane_sum<P>(dd), s_dk = lane_sum<P>(dk),
                        s_db = lane_sum<P>(db), s_da = lane_sum<P>(da);
            if (q == 0) {
                A.dr[gout] = from_f<T>(s_dr);
                A.dw[gout] = from_f<T>(s_dd * fdw[row + x]);
                A.dk[gout] = from_f<T>(s_dk);
                A.db[gout] = from_f<T>(s_db);
                A.da[gout] = from_f<T>(s_da);
            }
        }
    }
    float* out = A.dstate_in + bh_state + x * N + q * C;
#pragma unroll
    for (int cc = 0; cc < C; cc += 4)
        *reinterpret_cast<float4*>(out + cc) = make_float4(dSr[cc], dSr[cc + 1], dSr[cc + 2], dSr[cc + 3]);
}

// ---- launchers ------------------------------------------------------------------------------

template <class T, int N, int P, int R, bool kFused = true>
cudaError_t launch_forward(const Dims& D, const FwdArgs<T>& A, cudaStream_t stream) {
    constexpr size_t smem = fwd_smem_bytes<T, N>();
    auto kernel = wkv7_forward_kernel<T, N, P, R, kFused>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kernel<<<dim3(D.H, D.B, N / R), R * P, smem, stream>>>(D, A);
    return cudaGetLastError();
}

template <class T, int N, int P>
cudaError_t launch_backward(const Dims& D, const BwdArgs<T>& A, cudaStream_t stream) {
    constexpr size_t smem = bwd_smem_bytes<T, N>();
    auto kernel = wkv7_backward_kernel<T, N, P>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kernel<<<dim3(D.H, D.B), N * P, smem, stream>>>(D, A);
    return cudaGetLastError();
}

}  // namespace goose_wkv7
