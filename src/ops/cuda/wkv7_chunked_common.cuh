// Chunked WKV-7, shared part: sizes, scratch layout, decay and small-product helpers, 3xTF32
// tensor-core products. Used by the two-pass kernels here (wkv7_chunked_tc*.cuh) and by the
// lab's FMA chunked kernels (bench/kernels/wkv7/wkv7_chunked*.cuh: the math overview is in
// wkv7_chunked.cuh there).
#pragma once

#include "wkv7_kernels.cuh"

namespace goose_wkv7 {
namespace chunked {

constexpr int N = 64, L = kChunk;
constexpr int SP = N + 4;   // padded row of the state / of L x N operands in shared memory
constexpr int XP = N + 16;  // [A' | TAk] rows
constexpr int LN = L * SP;  // floats of one padded L x N array

struct BwdScratch {
    float* du;  // (B, T, H, N)
    float* gh;  // (B, H, chunks, N, N): dL/dS at the exit of every chunk
};

namespace detail {
using goose_wkv7::detail::cp_async_commit;
using goose_wkv7::detail::cp_async_wait;
using goose_wkv7::detail::from_f;
using goose_wkv7::detail::sigmoid_f;
using goose_wkv7::detail::stage_rows;
using goose_wkv7::detail::to_f;

__device__ __forceinline__ float4 ld4(const float* p) {
    return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ void st4(float* p, float4 v) {
    *reinterpret_cast<float4*>(p) = v;
}
__device__ __forceinline__ float dot4(float4 x, float4 y, float acc) {
    acc = fmaf(x.x, y.x, acc);
    acc = fmaf(x.y, y.y, acc);
    acc = fmaf(x.z, y.z, acc);
    return fmaf(x.w, y.w, acc);
}
__device__ __forceinline__ float comp(float4 v, int e) {
    return e == 0 ? v.x : e == 1 ? v.y : e == 2 ? v.z : v.w;
}

// The decay quantities of one chunk for key column j, steps t = E q .. E q + E - 1 with
// E = L / QN (q = lane % QN; the QN lanes of a column are adjacent): the log decay is 0 and the
// inputs zero past step n. Outputs (any may be null): At, Rt, Bs, Ks, Bh, Kh (padded L x N),
// eL = e^lam_L.
struct DecayOut {
    float *At, *Rt, *Bs, *Ks, *Bh, *Kh, *eL;
};

template <class T, int QN>
__device__ __forceinline__ void decay_column(const T* rr, const T* ww, const T* kk, const T* aa,
                                             const T* bb, int n, int j, int q, const DecayOut& o) {
    constexpr int E = L / QN;
    float x[E];
    float run = 0.f;
#pragma unroll
    for (int e = 0; e < E; ++e) {
        const int t = E * q + e;
        run += t < n ? -kDecayScale * sigmoid_f(to_f(ww[t * N + j])) : 0.f;
        x[e] = run;  // inclusive prefix within my steps
    }
    // inclusive scan of the QN lanes' totals
    const unsigned mask = 0xffffffffu;
    float incl = run;
#pragma unroll
    for (int d = 1; d < QN; d <<= 1) {
        const float up = __shfl_up_sync(mask, incl, d, QN);
        if (q >= d) incl += up;
    }
    const float off = incl - run;
    const float lamL = __shfl_sync(mask, incl, QN - 1, QN);
    if (o.eL && q == 0) o.eL[j] = expf(lamL);
#pragma unroll
    for (int e = 0; e < E; ++e) {
        const int t = E * q + e, p = t * SP + j;
        const bool ok = t < n;
        const float lam = off + x[e], lamp = off + (e > 0 ? x[e - 1] : 0.f);
        const float ep = expf(lamp), ev = expf(lam), em = expf(-lam), eh = expf(lamL - lam);
        const float r = ok ? to_f(rr[t * N + j]) : 0.f, k = ok ? to_f(kk[t * N + j]) : 0.f;
        const float a = ok ? to_f(aa[t * N + j]) : 0.f, b = ok ? to_f(bb[t * N + j]) : 0.f;
        if (o.At) o.At[p] = a * ep;
        if (o.Rt) o.Rt[p] = r * ev;
        if (o.Bs) o.Bs[p] = b * em;
        if (o.Ks) o.Ks[p] = k * em;
        if (o.Bh) o.Bh[p] = b * eh;
        if (o.Kh) o.Kh[p] = k * eh;
    }
}

// out[t][s] (16 x 16, row stride 16) = sum_j X[t][j] Y[s][j] over padded L x N arrays, masked
// to s < t (strict) or s <= t; the calling thread computes row t, columns O sb .. O sb + O - 1.
template <int O>
__device__ __forceinline__ void gram(float* out, const float* X, const float* Y, int t, int sb,
                                     bool strict) {
    float acc[O];
#pragma unroll
    for (int e = 0; e < O; ++e) acc[e] = 0.f;
#pragma unroll 4
    for (int j = 0; j < N; j += 4) {
        const float4 x = ld4(X + t * SP + j);
#pragma unroll
        for (int e = 0; e < O; ++e) acc[e] = dot4(x, ld4(Y + (O * sb + e) * SP + j), acc[e]);
    }
#pragma unroll
    for (int e = 0; e < O; ++e) {
        const int s = O * sb + e;
        out[t * 16 + s] = (strict ? s < t : s <= t) ? acc[e] : 0.f;
    }
}

// The value rows of an L x R array (row stride R) that a state-update thread uses: RI floats.
template <int RI>
__device__ __forceinline__ void load_rows(float* dst, const float* src) {
    if constexpr (RI == 4) {
        const float4 v = ld4(src);
        dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
    } else if constexpr (RI == 2) {
        const float2 v = *reinterpret_cast<const float2*>(src);
        dst[0] = v.x, dst[1] = v.y;
    } else {
#pragma unroll
        for (int m = 0; m < RI; ++m) dst[m] = src[m];
    }
}

}  // namespace detail

namespace detail {

// ---- 3xTF32 tensor-core products (f32-level accuracy: x = big + small, three products) ----

__device__ __forceinline__ uint32_t to_tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}
template <int K>
__device__ __forceinline__ void split_tf32(const float* x, uint32_t* big, uint32_t* small) {
#pragma unroll
    for (int q = 0; q < K; ++q) {
        big[q] = to_tf32(x[q]);
        small[q] = to_tf32(x[q] - __uint_as_float(big[q]));
    }
}
__device__ __forceinline__ void mma_tf32(float* c, const uint32_t* a, const uint32_t* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// A warp's 16 x 8 NTL tile (NTL n-tiles of 8 columns from column n0) of C += A B over K = 8 KS:
// a(m, k) and b(k, n) read shared memory. Accumulator element q of n-tile nt: row
// g + 8 (q >> 1), column n0 + 8 nt + 2 t4 + (q & 1) (g = lane / 4, t4 = lane % 4).
template <int KS, int NTL, class FA, class FB>
__device__ __forceinline__ void warp_mma(float (*acc)[4], int n0, int lane, FA a_at, FB b_at) {
    const int g = lane >> 2, t4 = lane & 3;
    auto step = [&](int ks, auto&& product) {
        const int k0 = 8 * ks;
        float af[4] = {a_at(g, k0 + t4), a_at(g + 8, k0 + t4), a_at(g, k0 + t4 + 4),
                       a_at(g + 8, k0 + t4 + 4)};
        uint32_t ab[4], as[4];
        split_tf32<4>(af, ab, as);
#pragma unroll
        for (int nt = 0; nt < NTL; ++nt) {
            const int n = n0 + 8 * nt + g;
            float bf[2] = {b_at(k0 + t4, n), b_at(k0 + t4 + 4, n)};
            uint32_t bb[2], bs[2];
            split_tf32<2>(bf, bb, bs);
            product(nt, ab, as, bb, bs);
        }
    };
    if constexpr (NTL <= 2) {
        // few tiles: the two correction products go to their own accumulators (three short
        // dependency chains per tile instead of one of length 3 KS)
        float cx[NTL][4], cy[NTL][4];
#pragma unroll
        for (int nt = 0; nt < NTL; ++nt)
#pragma unroll
            for (int q = 0; q < 4; ++q) cx[nt][q] = cy[nt][q] = 0.f;
#pragma unroll
        for (int ks = 0; ks < KS; ++ks)
            step(ks, [&](int nt, const uint32_t* ab, const uint32_t* as, const uint32_t* bb,
                         const uint32_t* bs) {
                mma_tf32(cx[nt], ab, bs);
                mma_tf32(cy[nt], as, bb);
                mma_tf32(acc[nt], ab, bb);
            });
#pragma unroll
        for (int nt = 0; nt < NTL; ++nt)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[nt][q] += cx[nt][q] + cy[nt][q];
    } else {
#pragma unroll 2
        for (int ks = 0; ks < KS; ++ks)
            step(ks, [&](int nt, const uint32_t* ab, const uint32_t* as, const uint32_t* bb,
                         const uint32_t* bs) {
                mma_tf32(acc[nt], ab, bs);  // small products first
                mma_tf32(acc[nt], as, bb);
                mma_tf32(acc[nt], ab, bb);
            });
    }
}

template <class T>
__device__ __forceinline__ float2 load2(const T* p) {
    if constexpr (sizeof(T) == 4) {
        return *reinterpret_cast<const float2*>(p);
    } else {
        return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
    }
}
template <class T>
__device__ __forceinline__ void store2(T* p, float x, float y) {
    if constexpr (sizeof(T) == 4) {
        *reinterpret_cast<float2*>(p) = make_float2(x, y);
    } else {
        *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(x, y);
    }
}

}  // namespace detail

}  // namespace chunked
}  // namespace goose_wkv7
