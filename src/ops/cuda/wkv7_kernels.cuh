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
// Forward: one block per (h, b, group of R value rows); a thread holds an RT x C tile of the
// state (RT value rows, C = N / P keys) in registers; sa and y are summed over the P lanes of a
// row group by shuffles; y_t and the next step's sa share one pass over the state.
// Backward (spec rwkv7.md §8.3): one block of N / K * P threads per (h, b); a thread holds
// (1) K columns (keys) of the state S over rows [q C, q C + C), (2) the same piece of dL/dS
// ("column view": key sums dr, dw, dk, db, da) and (3) K rows (values) of dL/dS over columns
// [q C, q C + C) ("row view": value sums dv, dsa). It walks t backwards, reloading S from the
// snapshot at the end of every chunk and reconstructing the earlier states by inverting the
// update (decay >= 0.545, at most 15 inversions). Both kernels stage the inputs of a 16-step
// chunk into shared memory with cp.async one chunk ahead and convert them to f32 once, into
// rows padded per key block (no bank conflicts between the P lanes of a row group).
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
    float* dstate_in;         // (B, H, N, N)
    const float* state_in;    // the forward's state_in or null (zeros); the chunked form reads it
    // Gradients gathered elsewhere, added into dr, dk and dv (each may be null); only the
    // two-pass backward (wkv7_chunked_tc_bwd_b.cuh) reads them.
    const T *dr_add = nullptr, *dk_add = nullptr, *dv_add = nullptr;
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
        cp_async16(dst + t * N + p * kPer,
                   src + static_cast<int64_t>(t0 + t) * row_stride + p * kPer);
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

// Accurate expf and division (once per element and chunk, so cheap): the backward divides by
// the decay up to 15 times between exact states, which amplifies any error of it.
__device__ __forceinline__ float sigmoid_f(float x) { return 1.f / (1.f + expf(-x)); }

// Shared-memory rows of N floats split into P = N / C blocks of C, each padded by 4 floats so
// that the lanes reading different blocks hit different banks.
template <int N, int C>
struct PaddedRow {
    static constexpr int kStride = N + 4 * (N / C);  // floats per row
    __device__ __forceinline__ static int col(int j) { return (j / C) * (C + 4) + j % C; }
};

}  // namespace detail

// ---- forward --------------------------------------------------------------------------------

template <class T, int N, int C>
constexpr size_t fwd_smem_bytes() {
    // staged raw rows of 6 tensors, two chunks; f32 padded rows of 6 quantities plus one row
    // (the prefetch of the step after a chunk reads one row past the last quantity).
    return 2 * 6 * kChunk * N * sizeof(T) +
           (6 * kChunk + 1) * detail::PaddedRow<N, C>::kStride * sizeof(float);
}

// Thread tile: RT value rows x C key columns; P = N / C threads share a row group; a block
// holds R rows of one (b, h).
template <class T, int N, int C, int RT, int R>
__global__ void __launch_bounds__(R / RT * (N / C), 1) wkv7_forward_kernel(Dims D, FwdArgs<T> A) {
    using namespace detail;
    using Row = PaddedRow<N, C>;
    constexpr int P = N / C, NT = R / RT * P, L = kChunk * N, NP = Row::kStride, LP = kChunk * NP;
    static_assert(N % C == 0 && R % RT == 0 && N % R == 0 && C % 4 == 0 && C % RT == 0,
                  "bad WKV-7 tile");
    static_assert(P == 1 || NT % 32 == 0, "row lanes must fill whole warps");
    static_assert(RT == 1 || RT == 2 || RT == 4, "RT must be 1, 2 or 4");
    extern __shared__ __align__(16) unsigned char smem[];
    T* stage = reinterpret_cast<T*>(smem);                               // [2][6][16][N]
    float* f = reinterpret_cast<float*>(smem + 2 * 6 * L * sizeof(T));  // [6][16][NP] (+1 row)
    float *fr = f, *fd = f + LP, *fk = f + 2 * LP, *fv = f + 3 * LP, *fa = f + 4 * LP,
          *fb = f + 5 * LP;

    const int h = blockIdx.x, bb = blockIdx.y;
    const int tid = threadIdx.x, q = tid % P, i0 = blockIdx.z * R + (tid / P) * RT;
    const int qo = q * (C + 4), vo = Row::col(i0);  // my key block and my rows in a padded row
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;  // element (bb, 0, h, 0)
    const T* src[6] = {A.r + base, A.w + base, A.k + base, A.v + base, A.a + base, A.b + base};
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;

    float S[RT][C];  // S[m][c] = S[i0 + m][q C + c]
#pragma unroll
    for (int m = 0; m < RT; ++m) {
        if (A.state_in) {
            load_vec<C>(S[m], A.state_in + bh_state + (i0 + m) * N + q * C);
        } else {
#pragma unroll
            for (int c = 0; c < C; ++c) S[m][c] = 0.f;
        }
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
            const int pe = (e / N) * NP + Row::col(e % N);
            fr[pe] = to_f(st[e]);
            fd[pe] = expf(-kDecayScale * sigmoid_f(to_f(st[L + e])));
            fk[pe] = to_f(st[2 * L + e]);
            fv[pe] = to_f(st[3 * L + e]);
            fa[pe] = to_f(st[4 * L + e]);
            fb[pe] = to_f(st[5 * L + e]);
        }
        __syncthreads();
        // y_t = S_t r_t and the next step's sa = S_t a_{t+1} in one pass over the state; the
        // next step's decay, k, b, v are loaded before this step's sums (the rows after the
        // chunk's last are other data: loaded, never used).
        float x[C], z[C], sa[RT], xd[C], xb[C], xk[C], vi[RT];
        load_vec<C>(x, fa + qo);
#pragma unroll
        for (int m = 0; m < RT; ++m) sa[m] = lane_sum<P>(dot<C>(S[m], x));
        load_vec<C>(xd, fd + qo);
        load_vec<C>(xb, fb + qo);
        load_vec<C>(xk, fk + qo);
        load_vec<RT>(vi, fv + vo);
        for (int tt = 0; tt < nt; ++tt) {
            const int o = tt * NP + qo;
#pragma unroll
            for (int m = 0; m < RT; ++m)
#pragma unroll
                for (int cc = 0; cc < C; ++cc)
                    S[m][cc] = fmaf(S[m][cc], xd[cc], fmaf(sa[m], xb[cc], vi[m] * xk[cc]));
            load_vec<C>(x, fr + o);
            load_vec<C>(z, fa + o + NP);
            load_vec<C>(xd, fd + o + NP);
            load_vec<C>(xb, fb + o + NP);
            load_vec<C>(xk, fk + o + NP);
            float y[RT], sn[RT];
#pragma unroll
            for (int m = 0; m < RT; ++m) {
                y[m] = dot<C>(S[m], x);
                sn[m] = dot<C>(S[m], z);
            }
#pragma unroll
            for (int m = 0; m < RT; ++m) {
                y[m] = lane_sum<P>(y[m]);
                sn[m] = lane_sum<P>(sn[m]);
            }
            if (q == 0) {
                const int64_t off = base + static_cast<int64_t>(t0 + tt) * HN + i0;
#pragma unroll
                for (int m = 0; m < RT; ++m) {
                    A.y[off + m] = from_f<T>(y[m]);
                    A.sa[off + m] = sa[m];
                }
            }
            load_vec<RT>(vi, fv + o - qo + NP + vo);
#pragma unroll
            for (int m = 0; m < RT; ++m) sa[m] = sn[m];
        }
        float* snap = A.snaps + (bh_state * NC + static_cast<int64_t>(c) * N * N) + q * C;
#pragma unroll
        for (int m = 0; m < RT; ++m)
#pragma unroll
            for (int cc = 0; cc < C; cc += 4)
                *reinterpret_cast<float4*>(snap + (i0 + m) * N + cc) =
                    make_float4(S[m][cc], S[m][cc + 1], S[m][cc + 2], S[m][cc + 3]);
    }
#pragma unroll
    for (int m = 0; m < RT; ++m)
#pragma unroll
        for (int cc = 0; cc < C; cc += 4)
            *reinterpret_cast<float4*>(A.state_out + bh_state + (i0 + m) * N + q * C + cc) =
                make_float4(S[m][cc], S[m][cc + 1], S[m][cc + 2], S[m][cc + 3]);
}

// ---- backward -------------------------------------------------------------------------------

template <class T, int N, int C>
constexpr size_t bwd_smem_bytes() {
    // staged raw rows: 7 tensors in T plus sa in f32, two chunks; f32 padded rows of 10
    // quantities; dsa of two steps.
    return 2 * kChunk * N * (7 * sizeof(T) + sizeof(float)) +
           (10 * kChunk + 2) * detail::PaddedRow<N, C>::kStride * sizeof(float);
}

// Thread tile: K keys (column view) and K values (row view), each over C = N / P entries.
template <class T, int N, int C, int K>
__global__ void __launch_bounds__(N / K * (N / C), 1) wkv7_backward_kernel(Dims D, BwdArgs<T> A) {
    using namespace detail;
    using Row = PaddedRow<N, C>;
    constexpr int P = N / C, NT = N / K * P, L = kChunk * N, NP = Row::kStride, LP = kChunk * NP;
    constexpr bool kPrefetchSnap = K * C <= 32;  // registers for the next snapshot
    static_assert(N % C == 0 && N % K == 0 && C % 4 == 0 && C % K == 0, "bad WKV-7 backward tile");
    static_assert(P == 1 || NT % 32 == 0, "row lanes must fill whole warps");
    static_assert(K == 1 || K == 2 || K == 4, "K must be 1, 2 or 4");
    extern __shared__ __align__(16) unsigned char smem[];
    T* stage = reinterpret_cast<T*>(smem);                                     // [2][7][16][N]
    float* stage_sa = reinterpret_cast<float*>(smem + 2 * 7 * L * sizeof(T));  // [2][16][N]
    float* f = stage_sa + 2 * L;                                               // [10][16][NP]
    float *fr = f, *fd = f + LP, *finv = f + 2 * LP, *fdw = f + 3 * LP, *fk = f + 4 * LP,
          *fv = f + 5 * LP, *fa = f + 6 * LP, *fb = f + 7 * LP, *fdy = f + 8 * LP,
          *fsa = f + 9 * LP;
    float* dsa_s = f + 10 * LP;  // [2][NP]

    const int h = blockIdx.x, bb = blockIdx.y;
    const int tid = threadIdx.x, q = tid % P, x0 = (tid / P) * K;
    const int qo = q * (C + 4), xo = Row::col(x0);  // my block of C, my K keys/values
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;
    const T* src[7] = {A.r + base, A.w + base, A.k + base, A.v + base,
                       A.a + base, A.b + base, A.dy + base};
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;
    const float* snaps = A.snaps + bh_state * NC;

    // Column view: S[m][c] = S[qC+c][x0+m], dSc[m][c] = dS[qC+c][x0+m];
    // row view: dSr[m][c] = dS[x0+m][qC+c].
    float S[K][C], dSc[K][C], dSr[K][C];
    float Snext[kPrefetchSnap ? K : 1][kPrefetchSnap ? C : 1];
    auto load_cols = [&](float (*dst)[C], const float* mat) {
#pragma unroll
        for (int c = 0; c < C; ++c) {
            float v[K];
            load_vec<K>(v, mat + (q * C + c) * N + x0);
#pragma unroll
            for (int m = 0; m < K; ++m) dst[m][c] = v[m];
        }
    };
    load_cols(S, snaps + static_cast<int64_t>(NC - 1) * N * N);
    if (A.dstate_out) {
        load_cols(dSc, A.dstate_out + bh_state);
#pragma unroll
        for (int m = 0; m < K; ++m)
            load_vec<C>(dSr[m], A.dstate_out + bh_state + (x0 + m) * N + q * C);
    } else {
#pragma unroll
        for (int m = 0; m < K; ++m)
#pragma unroll
            for (int c = 0; c < C; ++c) dSc[m][c] = dSr[m][c] = 0.f;
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
                for (int m = 0; m < K; ++m)
#pragma unroll
                    for (int cc = 0; cc < C; ++cc) S[m][cc] = Snext[m][cc];
            } else {
                load_cols(S, snaps + static_cast<int64_t>(c) * N * N);
            }
        }
        if constexpr (kPrefetchSnap) {
            if (c > 0) load_cols(Snext, snaps + static_cast<int64_t>(c - 1) * N * N);
        }
        __syncthreads();
        const T* st = stage + buf * 7 * L;
        const float* ssa = stage_sa + buf * L;
        for (int e = tid; e < nt * N; e += NT) {
            const int pe = (e / N) * NP + Row::col(e % N);
            fr[pe] = to_f(st[e]);
            const float sg = sigmoid_f(to_f(st[L + e]));
            const float d = expf(-kDecayScale * sg);
            fd[pe] = d;
            finv[pe] = 1.f / d;
            fdw[pe] = -kDecayScale * d * sg * (1.f - sg);
            fk[pe] = to_f(st[2 * L + e]);
            fv[pe] = to_f(st[3 * L + e]);
            fa[pe] = to_f(st[4 * L + e]);
            fb[pe] = to_f(st[5 * L + e]);
            fdy[pe] = to_f(st[6 * L + e]);
            fsa[pe] = ssa[e];
        }
        __syncthreads();
        for (int tt = nt - 1; tt >= 0; --tt) {
            const int row = tt * NP, o = row + qo, ox = row + xo;
            const int64_t gout = base + static_cast<int64_t>(t0 + tt) * HN + x0;
            float u[C], z[C], w2[C];
            float rj[K], kj[K], bj[K], invj[K], dr[K], dd[K], dk[K], db[K];
            // Column view (keys x0..): dr from S_t; dS += dy rᵀ; S_{t-1}; dd, dk, db.
            load_vec<K>(rj, fr + ox);
            load_vec<K>(kj, fk + ox);
            load_vec<K>(bj, fb + ox);
            load_vec<K>(invj, finv + ox);
            load_vec<C>(u, fdy + o);
            load_vec<C>(z, fv + o);
            load_vec<C>(w2, fsa + o);
#pragma unroll
            for (int m = 0; m < K; ++m) {
                dr[m] = dot<C>(S[m], u);
#pragma unroll
                for (int cc = 0; cc < C; ++cc) {
                    dSc[m][cc] = fmaf(u[cc], rj[m], dSc[m][cc]);
                    S[m][cc] = (S[m][cc] - z[cc] * kj[m] - w2[cc] * bj[m]) * invj[m];
                }
                dd[m] = dot<C>(dSc[m], S[m]);
                dk[m] = dot<C>(dSc[m], z);
                db[m] = dot<C>(dSc[m], w2);
            }
            // Row view (values x0..): dS += dy rᵀ; dv, dsa; dS <- dS diag(decay) + dsa aᵀ.
            float dyi[K], dv[K], dsa[K];
            load_vec<K>(dyi, fdy + ox);
            load_vec<C>(u, fr + o);
            load_vec<C>(z, fk + o);
            load_vec<C>(w2, fb + o);
#pragma unroll
            for (int m = 0; m < K; ++m) {
#pragma unroll
                for (int cc = 0; cc < C; ++cc) dSr[m][cc] = fmaf(dyi[m], u[cc], dSr[m][cc]);
                dv[m] = dot<C>(dSr[m], z);
                dsa[m] = dot<C>(dSr[m], w2);
            }
#pragma unroll
            for (int m = 0; m < K; ++m) {
                dv[m] = lane_sum<P>(dv[m]);
                dsa[m] = lane_sum<P>(dsa[m]);
            }
            load_vec<C>(u, fd + o);
            load_vec<C>(z, fa + o);
#pragma unroll
            for (int m = 0; m < K; ++m)
#pragma unroll
                for (int cc = 0; cc < C; ++cc) dSr[m][cc] = fmaf(dSr[m][cc], u[cc], dsa[m] * z[cc]);
            if (q == 0) {
#pragma unroll
                for (int m = 0; m < K; ++m) {
                    dsa_s[(tt & 1) * NP + xo + m] = dsa[m];
                    A.dv[gout + m] = from_f<T>(dv[m]);
                }
            }
            __syncthreads();
            // Column view: da; dS <- dS diag(decay) + dsa aᵀ; the key sums over the row lanes.
            float dj[K], aj[K], dwj[K], da[K];
            load_vec<C>(u, dsa_s + (tt & 1) * NP + qo);
            load_vec<K>(dj, fd + ox);
            load_vec<K>(aj, fa + ox);
            load_vec<K>(dwj, fdw + ox);
#pragma unroll
            for (int m = 0; m < K; ++m) {
                da[m] = dot<C>(S[m], u);
#pragma unroll
                for (int cc = 0; cc < C; ++cc) dSc[m][cc] = fmaf(dSc[m][cc], dj[m], u[cc] * aj[m]);
            }
#pragma unroll
            for (int m = 0; m < K; ++m) {
                da[m] = lane_sum<P>(da[m]);
                dr[m] = lane_sum<P>(dr[m]);
                dd[m] = lane_sum<P>(dd[m]);
                dk[m] = lane_sum<P>(dk[m]);
                db[m] = lane_sum<P>(db[m]);
            }
            if (q == 0) {
#pragma unroll
                for (int m = 0; m < K; ++m) {
                    A.dr[gout + m] = from_f<T>(dr[m]);
                    A.dw[gout + m] = from_f<T>(dd[m] * dwj[m]);
                    A.dk[gout + m] = from_f<T>(dk[m]);
                    A.db[gout + m] = from_f<T>(db[m]);
                    A.da[gout + m] = from_f<T>(da[m]);
                }
            }
        }
    }
#pragma unroll
    for (int m = 0; m < K; ++m)
#pragma unroll
        for (int cc = 0; cc < C; cc += 4)
            *reinterpret_cast<float4*>(A.dstate_in + bh_state + (x0 + m) * N + q * C + cc) =
                make_float4(dSr[m][cc], dSr[m][cc + 1], dSr[m][cc + 2], dSr[m][cc + 3]);
}

// ---- launchers ------------------------------------------------------------------------------

template <class T, int N, int C, int RT, int R>
cudaError_t launch_forward(const Dims& D, const FwdArgs<T>& A, cudaStream_t stream) {
    constexpr size_t smem = fwd_smem_bytes<T, N, C>();
    auto kernel = wkv7_forward_kernel<T, N, C, RT, R>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kernel<<<dim3(D.H, D.B, N / R), R / RT * (N / C), smem, stream>>>(D, A);
    return cudaGetLastError();
}

template <class T, int N, int C, int K>
cudaError_t launch_backward(const Dims& D, const BwdArgs<T>& A, cudaStream_t stream) {
    constexpr size_t smem = bwd_smem_bytes<T, N, C>();
    auto kernel = wkv7_backward_kernel<T, N, C, K>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kernel<<<dim3(D.H, D.B), N / K * (N / C), smem, stream>>>(D, A);
    return cudaGetLastError();
}

}  // namespace goose_wkv7
