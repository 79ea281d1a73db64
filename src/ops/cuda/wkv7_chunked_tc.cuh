// Chunked WKV-7 forward in two passes (N = 64): a fully parallel pre-pass over (chunk, head) for
// everything that does not depend on the state, then a state pass on tensor cores (3xTF32).
//
// Math as in bench/kernels/wkv7/wkv7_chunked.cuh. Pre-pass, one block per (chunk, h, b): decays, the four 16 x 16
// products (f32 FMAs, or kMmaGram: 3xTF32 tensor cores), the triangular solve, and per chunk a
// record in scratch of the operands in mma fragment order:
//   X = [A' TAk; R' Rk'] (32 x 80; rows 0-15 give U, 16-31 give y; columns 0-63 multiply S0^T,
//   64-79 multiply V), [Bh; Kh] (32 x 64), V (16 x 64) and e^lam_L (64).
// State pass, one warp per 16 value rows (WPB warps per block, 64 / (16 WPB) blocks per head),
// the state in registers as the accumulator of its own mma (no shared memory for the state):
//   [U^T | y^T] (16 x 32) = [S0 | V^T] (16 x 80) X^T,
//   S_L (16 x 64) = S0 o e^lam_L + [U^T | V^T] (16 x 32) [Bh; Kh].
// mma.sync m16n8k8 TF32: the k index inside an 8-wide k step is permuted (logical k = t4 is
// physical 2 t4, k = t4 + 4 is 2 t4 + 1), so that an accumulator fragment (c0 c1 of row g, c2 c3
// of row g + 8) is directly the next product's A fragment (a0 = c0, a1 = c2, a2 = c1, a3 = c3).
// 3xTF32 (x = big + small; big big + big small + small big) gives f32-level accuracy. kSplit:
// the record stores the operands already split (twice the bytes, no split in the state pass).
// kOverlap (launch_forward): persistent pre-pass and state pass at once, per-record ready flags.
// Measured variants and why: bench/kernels/wkv7/README.md, "Two-pass chunked forward".
#pragma once

#include <algorithm>

#include "wkv7_chunked_common.cuh"

namespace goose_wkv7 {
namespace chunked_tc {

using chunked::L;
using chunked::LN;
using chunked::N;
using chunked::SP;

// Record layout (floats), fragment order, lane-contiguous float4s:
//   X  [nt 4][kp 5][lane 32][4]: B fragment of X^T, n-tile nt (rows 8 nt .. of X), k steps
//      2 kp and 2 kp + 1: {b0, b1 of 2 kp, b0, b1 of 2 kp + 1}
//   BK [nt 8][kp 2][lane 32][4]: B fragment of [Bh; Kh], n-tile nt (keys 8 nt ..), same k pairs
//   V  [w 4][kv 2][lane 32][4]: A fragment of V^T for value rows 16 w .., k step kv
//   (kSplit: the three again as the small parts; the first copy is the big parts)
//   eL [t4 4][nt 8][2]: e^lam_L of key 8 nt + 2 t4 + b
constexpr int kXo = 0, kBKo = 4 * 5 * 128, kVo = kBKo + 8 * 2 * 128, kFrag = kVo + 4 * 2 * 128;
template <bool kSplit>
__host__ __device__ constexpr int record_floats() {
    return (kSplit ? 2 : 1) * kFrag + N;
}
template <bool kSplit>
__host__ __device__ constexpr int el_offset() {
    return (kSplit ? 2 : 1) * kFrag;
}

// The records, then one ready flag (u32) per record for the overlapped launch.
template <bool kSplit>
inline size_t forward_scratch_floats(const Dims& D) {
    return static_cast<size_t>(D.B) * D.H * D.chunks() * (record_floats<kSplit>() + 1);
}

namespace detail {
using namespace goose_wkv7::chunked::detail;

// Raw input rows in shared memory padded to RS elements (16-byte multiple): the four lanes of
// a key column read steps 4 apart, which then fall in different banks (2-way at most).
template <class T>
__host__ __device__ constexpr int raw_stride() {
    return sizeof(T) == 2 ? N + 8 : N + 4;
}
constexpr int XS = N + L + 4;  // row of X in shared memory (fragment reads 2-way at most)

struct PreSmem {
    static constexpr int kDec = 6 * LN;    // At Rt Bs Ks Bh Kh (padded rows)
    static constexpr int kG = 4 * 256;     // Ab Ak Rb Rk
    static constexpr int kX = 2 * L * XS;  // [A' TAk; R' Rk']
    static constexpr int kFloats = kDec + kG + kX + N;  // + eL
    template <class T>
    static constexpr size_t bytes() {
        return 6 * L * raw_stride<T>() * sizeof(T) + kFloats * sizeof(float);
    }
};

// The log-decay prefix of key column j (raw decay rows RS apart) for steps 4 q .. 4 q + 3, the
// four lanes of a column adjacent: x[e] sums this lane's steps up to 4 q + e, off is the sum of
// the steps before 4 q, lamL the whole chunk's (padded steps t >= n add 0).
template <class T, int RS>
__device__ __forceinline__ void log_decay_prefix(const T* ww, int n, int j, int q, float (&x)[4],
                                                 float& off, float& lamL) {
    constexpr int E = 4, QN = 4;
    float run = 0.f;
#pragma unroll
    for (int e = 0; e < E; ++e) {
        const int t = E * q + e;
        run += t < n ? -kDecayScale * sigmoid_f(to_f(ww[t * RS + j])) : 0.f;
        x[e] = run;
    }
    float incl = run;
#pragma unroll
    for (int d = 1; d < QN; d <<= 1) {
        const float up = __shfl_up_sync(0xffffffffu, incl, d, QN);
        if (q >= d) incl += up;
    }
    off = incl - run;
    lamL = __shfl_sync(0xffffffffu, incl, QN - 1, QN);
}

// The decay quantities of one chunk for key column j (as chunked::detail::decay_column, raw
// rows RS apart): steps 4 q .. 4 q + 3, the four lanes of a column adjacent.
template <class T, int RS>
__device__ __forceinline__ void decays(const T* st, int n, int j, int q, float* At, float* Rt,
                                       float* Bs, float* Ks, float* Bh, float* Kh, float* eL) {
    constexpr int E = 4;
    const T *rr = st, *ww = st + L * RS, *kk = st + 2 * L * RS, *aa = st + 4 * L * RS,
            *bb = st + 5 * L * RS;
    float x[E], off, lamL;
    log_decay_prefix<T, RS>(ww, n, j, q, x, off, lamL);
    if (q == 0) eL[j] = expf(lamL);
#pragma unroll
    for (int e = 0; e < E; ++e) {
        const int t = E * q + e, p = t * SP + j, o = t * RS + j;
        const bool ok = t < n;
        const float lam = off + x[e], lamp = off + (e > 0 ? x[e - 1] : 0.f);
        const float ep = expf(lamp), ev = expf(lam), em = expf(-lam), eh = expf(lamL - lam);
        const float r = ok ? to_f(rr[o]) : 0.f, k = ok ? to_f(kk[o]) : 0.f;
        const float a = ok ? to_f(aa[o]) : 0.f, b = ok ? to_f(bb[o]) : 0.f;
        At[p] = a * ep;
        Rt[p] = r * ev;
        Bs[p] = b * em;
        Ks[p] = k * em;
        Bh[p] = b * eh;
        Kh[p] = k * eh;
    }
}

// x = big + small for 3xTF32 in three integer / f32 instructions (cvt.rna.tf32 costs more):
// big rounded to nearest on the TF32 mantissa (ties away), small = x - big exactly in f32, left
// for the tensor core to truncate (error <= 2^-21 |x|).
__device__ __forceinline__ void split1(float x, uint32_t& big, uint32_t& small) {
    big = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
    small = __float_as_uint(x - __uint_as_float(big));
}
__device__ __forceinline__ void split4(const float* x, uint32_t* big, uint32_t* small) {
#pragma unroll
    for (int q = 0; q < 4; ++q) split1(x[q], big[q], small[q]);
}

__device__ __forceinline__ void put(float* rec, int off, float4 v, bool split) {
    if (!split) {
        st4(rec + off, v);
        return;
    }
    const float x[4] = {v.x, v.y, v.z, v.w};
    uint32_t b[4], m[4];
    split4(x, b, m);
    st4(rec + off, make_float4(__uint_as_float(b[0]), __uint_as_float(b[1]),
                               __uint_as_float(b[2]), __uint_as_float(b[3])));
    st4(rec + kFrag + off, make_float4(__uint_as_float(m[0]), __uint_as_float(m[1]),
                                       __uint_as_float(m[2]), __uint_as_float(m[3])));
}

}  // namespace detail

// ---- pre-pass: one block of 256 threads per (chunk, h, b) ------------------------------------

constexpr int kPreThreads = 256;

namespace detail {
__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void st_release(unsigned* p, unsigned v) {
    asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}

// The four 16 x 16 products of the pre-pass on tensor cores (3xTF32), warp m < 4 computing
// product m (Ab, Ak strictly lower; Rb, Rk lower) into G + 256 m (row stride 16).
__device__ __forceinline__ void gram_mma(float* G, const float* At, const float* Rt,
                                         const float* Bs, const float* Ks, int m, int lane) {
    const float* X = m < 2 ? At : Rt;
    const float* Y = (m & 1) ? Ks : Bs;
    const int g = lane >> 2, t4 = lane & 3;
    float acc[2][4], cx[2][4], cy[2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[n][q] = cx[n][q] = cy[n][q] = 0.f;
#pragma unroll
    for (int k0 = 0; k0 < N; k0 += 8) {
        const float af[4] = {X[g * SP + k0 + t4], X[(g + 8) * SP + k0 + t4],
                             X[g * SP + k0 + t4 + 4], X[(g + 8) * SP + k0 + t4 + 4]};
        uint32_t ab[4], as[4];
        split4(af, ab, as);
#pragma unroll
        for (int n = 0; n < 2; ++n) {
            const float* y = Y + (8 * n + g) * SP + k0 + t4;
            uint32_t bb[2], bs[2];
            split1(y[0], bb[0], bs[0]);
            split1(y[4], bb[1], bs[1]);
            mma_tf32(cx[n], ab, bs);
            mma_tf32(cy[n], as, bb);
            mma_tf32(acc[n], ab, bb);
        }
    }
    const bool strict = m < 2;
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const int t = g + 8 * (q >> 1), sc = 8 * n + 2 * t4 + (q & 1);
            const float v = acc[n][q] + (cx[n][q] + cy[n][q]);
            G[256 * m + 16 * t + sc] = (strict ? sc < t : sc <= t) ? v : 0.f;
        }
}

// The record of chunk c of (b, h) (the block's 256 threads; ends with the record written).
template <class T, bool kSplit, bool kMmaGram>
__device__ __forceinline__ void prepass_record(const Dims& D, const FwdArgs<T>& A, float* scratch,
                                               unsigned char* smem, int c, int h, int bb) {
    constexpr int NT = kPreThreads, RS = raw_stride<T>();
    const int tid = threadIdx.x;
    T* st = reinterpret_cast<T*>(smem);  // raw r w k v a b [6][L][RS]
    float* f = reinterpret_cast<float*>(smem + 6 * L * RS * sizeof(T));
    float *At = f, *Rt = f + LN, *Bs = f + 2 * LN, *Ks = f + 3 * LN, *Bh = f + 4 * LN,
          *Kh = f + 5 * LN;
    float* G = f + PreSmem::kDec;
    float* X = G + PreSmem::kG;
    float* eL = X + PreSmem::kX;

    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;
    const int t0 = c * L, nt = min(L, Tn - t0);
    const T* src[6] = {A.r + base, A.w + base, A.k + base, A.v + base, A.a + base, A.b + base};
    {
        constexpr int kPer = 16 / static_cast<int>(sizeof(T)), kPieces = N / kPer;
#pragma unroll
        for (int m = 0; m < 6; ++m)
            for (int e = tid; e < nt * kPieces; e += NT) {
                const int t = e / kPieces, p = e % kPieces;
                goose_wkv7::detail::cp_async16(st + (m * L + t) * RS + p * kPer,
                                               src[m] + (t0 + t) * HN + p * kPer);
            }
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    static_assert(NT == 4 * N, "four lanes per key column");
    decays<T, RS>(st, nt, tid / 4, tid % 4, At, Rt, Bs, Ks, Bh, Kh, eL);
    __syncthreads();
    if constexpr (kMmaGram) {
        if (tid < 128) gram_mma(G, At, Rt, Bs, Ks, tid >> 5, tid & 31);
    } else {
        constexpr int O = 1024 / NT, PM = NT / 4;
        const int m = tid / PM, t = (tid % PM) / (16 / O), sb = tid % (16 / O);
        gram<O>(G + m * 256, m < 2 ? At : Rt, (m & 1) ? Ks : Bs, t, sb, m < 2);
    }
    __syncthreads();
    if (tid < N + L) {  // A' = (I - Ab)^-1 [At | Ak], by columns
        const int col = tid;
        const float *Ab = G, *Ak = G + 256;
        float ap[L];
#pragma unroll
        for (int t = 0; t < L; ++t) {
            float s = col < N ? At[t * SP + col] : Ak[t * 16 + col - N];
#pragma unroll
            for (int u = 0; u < t; ++u) s = fmaf(Ab[t * 16 + u], ap[u], s);
            ap[t] = s;
            X[t * XS + col] = s;
        }
    }
    __syncthreads();
    if (tid < 2 * (N + L)) {  // R' = [Rt | Rk] + Rb A' (Rb is zero above the diagonal)
        const float* Rb = G + 512;
        const float* Rk = G + 768;
        const int col = tid % (N + L), half = tid / (N + L);
        float xc[L];
#pragma unroll
        for (int u = 0; u < L; ++u) xc[u] = X[u * XS + col];
#pragma unroll 2
        for (int tt = 0; tt < L / 2; ++tt) {
            const int t = (L / 2) * half + tt;
            float s = col < N ? Rt[t * SP + col] : Rk[t * 16 + col - N];
#pragma unroll
            for (int u = 0; u < L; u += 4) {
                const float4 rb = ld4(Rb + t * 16 + u);
                s = fmaf(rb.x, xc[u], s);
                s = fmaf(rb.y, xc[u + 1], s);
                s = fmaf(rb.z, xc[u + 2], s);
                s = fmaf(rb.w, xc[u + 3], s);
            }
            X[(16 + t) * XS + col] = s;
        }
    }
    __syncthreads();
    float* rec = scratch + ((static_cast<int64_t>(bb) * H + h) * NC + c) * record_floats<kSplit>();
    // X^T B fragments: n-tile nt = rows 8 nt + g of X, k step ks: columns 8 ks + 2 t4 + {0, 1}
    for (int e = tid; e < 4 * 5 * 32; e += NT) {
        const int lane = e & 31, kp = (e >> 5) % 5, ntl = (e >> 5) / 5;
        const int g = lane >> 2, t4 = lane & 3, row = 8 * ntl + g, col = 16 * kp + 2 * t4;
        const float* x = X + row * XS + col;
        put(rec, kXo + 4 * e, make_float4(x[0], x[1], x[8], x[9]), kSplit);
    }
    // [Bh; Kh] B fragments: n-tile nt = keys 8 nt + g, k step ks: steps 8 ks + 2 t4 + {0, 1}
    for (int e = tid; e < 8 * 2 * 32; e += NT) {
        const int lane = e & 31, kp = (e >> 5) & 1, ntl = e >> 6;
        const int g = lane >> 2, t4 = lane & 3, j = 8 * ntl + g, t = 2 * t4;
        const float* m = kp ? Kh : Bh;
        put(rec, kBKo + 4 * e,
            make_float4(m[t * SP + j], m[(t + 1) * SP + j], m[(t + 8) * SP + j],
                        m[(t + 9) * SP + j]),
            kSplit);
    }
    // V^T A fragments: rows (values) 16 w + g (+ 8), k step kv: steps 8 kv + 2 t4 + {0, 1}
    for (int e = tid; e < 4 * 2 * 32; e += NT) {
        const int lane = e & 31, kv = (e >> 5) & 1, w = e >> 6;
        const int g = lane >> 2, t4 = lane & 3, i = 16 * w + g, t = 8 * kv + 2 * t4;
        const T* v = st + 3 * L * RS;
        auto at = [&](int tt, int ii) { return tt < nt ? to_f(v[tt * RS + ii]) : 0.f; };
        put(rec, kVo + 4 * e, make_float4(at(t, i), at(t, i + 8), at(t + 1, i), at(t + 1, i + 8)),
            kSplit);
    }
    if (tid < N) {  // eL[t4][nt][b] = e^lam_L of key 8 nt + 2 t4 + b
        const int t4 = tid >> 4, ntl = (tid >> 1) & 7, b = tid & 1;
        rec[el_offset<kSplit>() + tid] = eL[8 * ntl + 2 * t4 + b];
    }
}
}  // namespace detail

// kFlags false: one block per (chunk, h, b), grid (chunks, H, B). kFlags true: a persistent
// grid walking the records chunk-major (chunk 0 of every head first), setting each record's
// ready flag (release) for the state pass running at the same time.
// (Four blocks per SM, as the shared memory allows; kFlags: at most 80 registers, so that two
// blocks leave room for a state-pass block.)
template <class T, bool kSplit, bool kFlags, bool kMmaGram>
__global__ void __launch_bounds__(kPreThreads, kFlags ? 3 : 4)
    wkv7_tc_prepass_kernel(Dims D, FwdArgs<T> A, float* scratch) {
    extern __shared__ __align__(16) unsigned char smem[];
    if constexpr (!kFlags) {
        detail::prepass_record<T, kSplit, kMmaGram>(D, A, scratch, smem, blockIdx.x, blockIdx.y,
                                                    blockIdx.z);
    } else {
        asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");  // state pass may start
        const int BH = D.B * D.H, NC = D.chunks();
        const int64_t total = static_cast<int64_t>(BH) * NC;
        unsigned* flags = reinterpret_cast<unsigned*>(scratch + total * record_floats<kSplit>());
        for (int64_t rr = blockIdx.x; rr < total; rr += gridDim.x) {
            const int c = static_cast<int>(rr / BH), bh = static_cast<int>(rr % BH);
            detail::prepass_record<T, kSplit, kMmaGram>(D, A, scratch, smem, c, bh % D.H, bh / D.H);
            __threadfence();
            __syncthreads();  // every thread's part written and fenced; shared memory free again
            if (threadIdx.x == 0) detail::st_release(flags + static_cast<int64_t>(bh) * NC + c, 1u);
        }
    }
}

// ---- state pass: one warp per 16 value rows -----------------------------------------------------

constexpr int kStages = 3;

template <class T, int WPB, bool kSplit, bool kFlags>
__global__ void __launch_bounds__(32 * WPB, 1)
    wkv7_tc_state_kernel(Dims D, FwdArgs<T> A, const float* scratch) {
    using namespace detail;
    constexpr int NT = 32 * WPB, REC = record_floats<kSplit>();
    extern __shared__ __align__(16) float sm[];  // [kStages][REC]
    const int h = blockIdx.x, bb = blockIdx.y, tid = threadIdx.x, lane = tid & 31;
    const int w = blockIdx.z * WPB + (tid >> 5), i0 = 16 * w;
    const int g = lane >> 2, t4 = lane & 3;
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;
    const float* recs = scratch + (static_cast<int64_t>(bb) * H + h) * NC * REC;

    // S[nt] = accumulator fragment of keys 8 nt ..: {S[g][k], S[g][k+1], S[g+8][k], S[g+8][k+1]}
    // with k = 8 nt + 2 t4 (rows relative to i0)
    float S[8][4];
#pragma unroll
    for (int ntl = 0; ntl < 8; ++ntl)
#pragma unroll
        for (int h2 = 0; h2 < 2; ++h2) {
            float2 v = make_float2(0.f, 0.f);
            if (A.state_in)
                v = *reinterpret_cast<const float2*>(A.state_in + bh_state +
                                                     (i0 + g + 8 * h2) * N + 8 * ntl + 2 * t4);
            S[ntl][2 * h2] = v.x;
            S[ntl][2 * h2 + 1] = v.y;
        }

    const unsigned* flags =
        reinterpret_cast<const unsigned*>(scratch + static_cast<int64_t>(D.B) * H * NC * REC) +
        (static_cast<int64_t>(bb) * H + h) * NC;
    auto issue = [&](int c) {
        if (c < NC) {
            if constexpr (kFlags)
                while (ld_acquire(flags + c) == 0) __nanosleep(100);
            const float* src = recs + static_cast<int64_t>(c) * REC;
            float* dst = sm + (c % kStages) * REC;
            for (int p = tid; p < REC / 4; p += NT)
                goose_wkv7::detail::cp_async16(dst + 4 * p, src + 4 * p);
        }
        cp_async_commit();
    };
    for (int s = 0; s < kStages - 1; ++s) issue(s);

    // a float4 of the record as big / small TF32 parts
    auto frag = [&](const float* rc, int off, uint32_t* big, uint32_t* small) {
        const float4 v = ld4(rc + off);
        if constexpr (kSplit) {
            const float4 s = ld4(rc + kFrag + off);
            big[0] = __float_as_uint(v.x), big[1] = __float_as_uint(v.y);
            big[2] = __float_as_uint(v.z), big[3] = __float_as_uint(v.w);
            small[0] = __float_as_uint(s.x), small[1] = __float_as_uint(s.y);
            small[2] = __float_as_uint(s.z), small[3] = __float_as_uint(s.w);
        } else {
            const float x[4] = {v.x, v.y, v.z, v.w};
            split4(x, big, small);
        }
    };
    // an accumulator fragment as an A fragment (a0 = c0, a1 = c2, a2 = c1, a3 = c3), split
    auto acc_to_a = [&](const float* cfr, uint32_t* big, uint32_t* small) {
        const float x[4] = {cfr[0], cfr[2], cfr[1], cfr[3]};
        split4(x, big, small);
    };

    for (int c = 0; c < NC; ++c) {
        cp_async_wait<kStages - 2>();
        __syncthreads();  // chunk c's record landed (all threads); chunk c-1's buffer free
        issue(c + kStages - 1);
        const float* rc = sm + (c % kStages) * REC;
        const int t0 = c * L, ntv = min(L, Tn - t0);

        uint32_t vb[2][4], vs[2][4];  // V^T A fragments, k steps 0 and 1
#pragma unroll
        for (int kv = 0; kv < 2; ++kv)
            frag(rc, kVo + ((w * 2 + kv) * 32 + lane) * 4, vb[kv], vs[kv]);

        // ---- [U^T | y^T] = [S0 | V^T] X^T: n-tiles 0, 1 = U^T, 2, 3 = y^T
        float o[4][4], ox[4][4], oy[4][4];
#pragma unroll
        for (int n = 0; n < 4; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) o[n][q] = ox[n][q] = oy[n][q] = 0.f;
        {
            uint32_t sb[8][4], ss[8][4];
#pragma unroll
            for (int k = 0; k < 8; ++k) acc_to_a(S[k], sb[k], ss[k]);
#pragma unroll
            for (int kp = 0; kp < 5; ++kp)
#pragma unroll
                for (int n = 0; n < 4; ++n) {
                    uint32_t xb[4], xs[4];
                    frag(rc, kXo + ((n * 5 + kp) * 32 + lane) * 4, xb, xs);
#pragma unroll
                    for (int hk = 0; hk < 2; ++hk) {
                        const int ks = 2 * kp + hk;
                        const uint32_t* ab = ks < 8 ? sb[ks] : vb[ks - 8];
                        const uint32_t* as = ks < 8 ? ss[ks] : vs[ks - 8];
                        mma_tf32(ox[n], ab, xs + 2 * hk);
                        mma_tf32(oy[n], as, xb + 2 * hk);
                        mma_tf32(o[n], ab, xb + 2 * hk);
                    }
                }
        }
#pragma unroll
        for (int n = 0; n < 4; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) o[n][q] += ox[n][q] + oy[n][q];
        // o[n][q]: row (value) i0 + g + 8 (q >> 1), column (step) 8 (n & 1) + 2 t4 + (q & 1)
#pragma unroll
        for (int n = 0; n < 4; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int t = 8 * (n & 1) + 2 * t4 + (q & 1), i = i0 + g + 8 * (q >> 1);
                if (t < ntv) {
                    const int64_t off = base + static_cast<int64_t>(t0 + t) * HN + i;
                    if (n < 2) A.sa[off] = o[n][q];
                    else A.y[off] = from_f<T>(o[n][q]);
                }
            }

        // ---- S_L = S0 o e^lam_L + [U^T | V^T] [Bh; Kh]
        float el[16];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const float4 e4 = ld4(rc + el_offset<kSplit>() + 16 * t4 + 4 * q);
            el[4 * q] = e4.x, el[4 * q + 1] = e4.y, el[4 * q + 2] = e4.z, el[4 * q + 3] = e4.w;
        }
        uint32_t ub[2][4], us[2][4];
#pragma unroll
        for (int k = 0; k < 2; ++k) acc_to_a(o[k], ub[k], us[k]);
        float sx[8][4];
#pragma unroll
        for (int n = 0; n < 8; ++n) {
            S[n][0] *= el[2 * n];
            S[n][1] *= el[2 * n + 1];
            S[n][2] *= el[2 * n];
            S[n][3] *= el[2 * n + 1];
#pragma unroll
            for (int q = 0; q < 4; ++q) sx[n][q] = 0.f;
        }
#pragma unroll
        for (int kp = 0; kp < 2; ++kp)
#pragma unroll
            for (int n = 0; n < 8; ++n) {
                uint32_t bkb[4], bks[4];
                frag(rc, kBKo + ((n * 2 + kp) * 32 + lane) * 4, bkb, bks);
#pragma unroll
                for (int hk = 0; hk < 2; ++hk) {
                    const uint32_t* ab = kp == 0 ? ub[hk] : vb[hk];
                    const uint32_t* as = kp == 0 ? us[hk] : vs[hk];
                    mma_tf32(sx[n], ab, bks + 2 * hk);
                    mma_tf32(sx[n], as, bkb + 2 * hk);
                    mma_tf32(S[n], ab, bkb + 2 * hk);
                }
            }
        float* snap = A.snaps + bh_state * NC + static_cast<int64_t>(c) * N * N;
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int h2 = 0; h2 < 2; ++h2) {
                S[n][2 * h2] += sx[n][2 * h2];
                S[n][2 * h2 + 1] += sx[n][2 * h2 + 1];
                const int off = (i0 + g + 8 * h2) * N + 8 * n + 2 * t4;
                const float2 v = make_float2(S[n][2 * h2], S[n][2 * h2 + 1]);
                *reinterpret_cast<float2*>(snap + off) = v;
                if (c == NC - 1) *reinterpret_cast<float2*>(A.state_out + bh_state + off) = v;
            }
    }
}

// ---- launcher ---------------------------------------------------------------------------------

// scratch: forward_scratch_floats<kSplit>(D) floats (every record is written before it is read).
// kMmaGram: the pre-pass's four 16 x 16 products on tensor cores (3xTF32) instead of FMAs.
// kOverlap: the pre-pass runs as a persistent grid (two blocks per SM, leaving room for the state
// pass's blocks) and the state pass is launched as its programmatic dependent, so that both run
// at once: the state pass waits on per-record ready flags (zeroed here first) instead of the end
// of the pre-pass, and reads records soon after they were written (mostly from L2).
template <class T, int WPB = 4, bool kSplit = false, bool kOverlap = false, bool kMmaGram = false>
cudaError_t launch_forward(const Dims& D, const FwdArgs<T>& A, float* scratch,
                           cudaStream_t stream) {
    static_assert(WPB == 1 || WPB == 2 || WPB == 4, "WPB: warps (16 value rows each) per block");
    constexpr size_t smem_pre = detail::PreSmem::bytes<T>();
    auto kp = wkv7_tc_prepass_kernel<T, kSplit, kOverlap, kMmaGram>;
    cudaError_t e = cudaFuncSetAttribute(kp, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem_pre));
    if (e != cudaSuccess) return e;
    constexpr size_t smem_st = kStages * record_floats<kSplit>() * sizeof(float);
    auto ks = wkv7_tc_state_kernel<T, WPB, kSplit, kOverlap>;
    e = cudaFuncSetAttribute(ks, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem_st));
    if (e != cudaSuccess) return e;
    const dim3 state_grid(D.H, D.B, 4 / WPB);
    if constexpr (!kOverlap) {
        kp<<<dim3(D.chunks(), D.H, D.B), kPreThreads, smem_pre, stream>>>(D, A, scratch);
        e = cudaGetLastError();
        if (e != cudaSuccess) return e;
        ks<<<state_grid, 32 * WPB, smem_st, stream>>>(D, A, scratch);
        return cudaGetLastError();
    } else {
        const int64_t records = static_cast<int64_t>(D.B) * D.H * D.chunks();
        e = cudaMemsetAsync(scratch + records * record_floats<kSplit>(), 0,
                            records * sizeof(unsigned), stream);
        if (e != cudaSuccess) return e;
        int dev = 0, sms = 0;
        e = cudaGetDevice(&dev);
        if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
        if (e != cudaSuccess) return e;
        const int64_t pre_blocks = std::min<int64_t>(records, 2 * static_cast<int64_t>(sms));
        kp<<<static_cast<unsigned>(pre_blocks), kPreThreads, smem_pre, stream>>>(D, A, scratch);
        e = cudaGetLastError();
        if (e != cudaSuccess) return e;
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = state_grid;
        cfg.blockDim = dim3(32 * WPB);
        cfg.dynamicSmemBytes = smem_st;
        cfg.stream = stream;
        cudaLaunchAttribute attr[1];
        attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
        return cudaLaunchKernelEx(&cfg, ks, D, A, static_cast<const float*>(scratch));
    }
}

}  // namespace chunked_tc
}  // namespace goose_wkv7
