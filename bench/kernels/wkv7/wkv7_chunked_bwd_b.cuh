// Chunked WKV-7 backward, phase B: every chunk's input gradients in parallel (N = 64).
#pragma once

#include "wkv7_chunked_common.cuh"

namespace goose_wkv7 {
namespace chunked {

// ---- backward phase B: every chunk's input gradients, in parallel ---------------------------
//
// One block of 320 threads per (chunk, h, b). Ten warps: two per product, each thread a 4 x 4
// register tile (steps t, keys j or values i) of dr (dY S0), da (dU S0), dk (V Gh), db (U Gh)
// or dv (Kh Gh^T), then the in-chunk terms through masked 16 x 16 coefficient matrices, stored
// [s][t] so that four steps t are one float4.

constexpr int NTB = 320;
constexpr int TP = L + 4;  // padded row of a transposed (N x L) operand

struct BwdBSmem {
    enum { kAt, kRt, kBs, kKs, kKh, kLam, kLamp, kRows };  // padded L x N arrays
    enum { kDYt, kDUt, kVt, kUt, kCols };                  // transposed N x L arrays
    // masked coefficient matrices [s][t]
    enum { cDr1, cDr2, cDa3, cDa4, cDk2, cDk4, cDb1, cDb3, cRk, cAk, kCoef };
    static constexpr int kFloats = kRows * LN + kCols * N * TP + 2 * N * SP + kCoef * 256 + 5 * N;
    static constexpr size_t bytes() { return kFloats * sizeof(float); }
};

template <class T>
__device__ __forceinline__ float4 load4(const T* p) {
    if constexpr (sizeof(T) == 4) {
        return *reinterpret_cast<const float4*>(p);
    } else {
        const uint2 u = *reinterpret_cast<const uint2*>(p);
        const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.x));
        const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.y));
        return make_float4(lo.x, lo.y, hi.x, hi.y);
    }
}
template <class T>
__device__ __forceinline__ void store4(T* p, const float* x) {
    if constexpr (sizeof(T) == 4) {
        *reinterpret_cast<float4*>(p) = make_float4(x[0], x[1], x[2], x[3]);
    } else {
        __nv_bfloat162 lo = __floats2bfloat162_rn(x[0], x[1]),
                       hi = __floats2bfloat162_rn(x[2], x[3]);
        uint2 u;
        u.x = *reinterpret_cast<unsigned*>(&lo);
        u.y = *reinterpret_cast<unsigned*>(&hi);
        *reinterpret_cast<uint2*>(p) = u;
    }
}

// Phase B products on tensor cores: warp w computes product p = w / 2 (0 dr, 1 da, 2 dk, 3 db,
// 4 dv) for columns 32 (w % 2) .. + 31, all 16 steps; then the same epilogue as the FFMA path.
template <class T>
__device__ __forceinline__ void bwd_products_mma(
    const BwdArgs<T>& A, const float* At, const float* Rt, const float* Bs, const float* Ks,
    const float* Kh, const float* Lam, const float* Lamp, const float* DYt, const float* DUt,
    const float* Vt, const float* Ut, float* S0, const float* Gh, const float* C, const float* eL,
    int64_t base, int64_t HN, int nt_steps, int tid) {
    using namespace detail;
    using Sm = BwdBSmem;
    const int warp = tid >> 5, lane = tid & 31, p = warp >> 1, n0 = 32 * (warp & 1);
    const int g = lane >> 2, t4 = lane & 3;
    float acc[4][4];
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[a][e] = 0.f;
    if (p < 4) {
        const float* X = p == 0 ? DYt : p == 1 ? DUt : p == 2 ? Vt : Ut;
        const float* Y = p < 2 ? S0 : Gh;
        warp_mma<N / 8, 4>(
            acc, n0, lane, [&](int m, int k) { return X[k * TP + m]; },
            [&](int k, int n) { return Y[k * SP + n]; });
        if (p >= 2) {
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                const float e0 = eL[n0 + 8 * nt + 2 * t4], e1 = eL[n0 + 8 * nt + 2 * t4 + 1];
                acc[nt][0] *= e0, acc[nt][1] *= e1, acc[nt][2] *= e0, acc[nt][3] *= e1;
            }
        }
        const int c1 = p == 0 ? Sm::cDr1 : p == 1 ? Sm::cDa3 : p == 2 ? Sm::cDk2 : Sm::cDb1;
        const int c2 = p == 0 ? Sm::cDr2 : p == 1 ? Sm::cDa4 : p == 2 ? Sm::cDk4 : Sm::cDb3;
        const float* Y1 = p < 2 ? Bs : Rt;
        const float* Y2 = p < 2 ? Ks : At;
        const float* C1 = C + c1 * 256;
        const float* C2 = C + c2 * 256;
        warp_mma<L / 8, 4>(
            acc, n0, lane, [&](int m, int k) { return C1[k * 16 + m]; },
            [&](int k, int n) { return Y1[k * SP + n]; });
        warp_mma<L / 8, 4>(
            acc, n0, lane, [&](int m, int k) { return C2[k * 16 + m]; },
            [&](int k, int n) { return Y2[k * SP + n]; });
    } else {
        warp_mma<N / 8, 4>(
            acc, n0, lane, [&](int m, int k) { return Kh[m * SP + k]; },
            [&](int k, int n) { return Gh[n * SP + k]; });
        const float* C1 = C + Sm::cRk * 256;
        const float* C2 = C + Sm::cAk * 256;
        warp_mma<L / 8, 4>(
            acc, n0, lane, [&](int m, int k) { return C1[k * 16 + m]; },
            [&](int k, int n) { return DYt[n * TP + k]; });
        warp_mma<L / 8, 4>(
            acc, n0, lane, [&](int m, int k) { return C2[k * 16 + m]; },
            [&](int k, int n) { return DUt[n * TP + k]; });
    }
    // element q of n-tile nt: row t = g + 8 (q >> 1), column n0 + 8 nt + 2 t4 + (q & 1)
    if (p < 4) {
        const float* lam = p == 1 ? Lamp : Lam;
        const float sign = p < 2 ? 1.f : -1.f;
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int t = g + 8 * (q >> 1), j = n0 + 8 * nt + 2 * t4 + (q & 1);
                acc[nt][q] *= expf(sign * lam[t * SP + j]);
            }
    }
    __syncthreads();  // S0 is free: it takes x_r = r dr, x_b = b db, x_k = k dk, z = a da
    float* xs = S0 + (p == 0 ? 0 : p == 1 ? 3 : p == 2 ? 2 : 1) * LN;
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int h2 = 0; h2 < 2; ++h2) {
            const int t = g + 8 * h2, j = n0 + 8 * nt + 2 * t4;
            const bool ok = t < nt_steps;
            const int64_t gi = base + t * HN + j;
            const float v0 = acc[nt][2 * h2], v1 = acc[nt][2 * h2 + 1];
            if (p < 4) {
                T* out = p == 0 ? A.dr : p == 1 ? A.da : p == 2 ? A.dk : A.db;
                const T* in = p == 0 ? A.r : p == 1 ? A.a : p == 2 ? A.k : A.b;
                const float2 x2 = ok ? load2(in + gi) : make_float2(0.f, 0.f);
                *reinterpret_cast<float2*>(xs + t * SP + j) = make_float2(x2.x * v0, x2.y * v1);
                if (ok) store2(out + gi, v0, v1);
            } else if (ok) {
                store2(A.dv + gi, v0, v1);
            }
        }
}

template <class T, bool kMma>
__global__ void __launch_bounds__(NTB, 2)
    wkv7_chunked_bwd_grads_kernel(Dims D, BwdArgs<T> A, BwdScratch W) {
    using namespace detail;
    using Sm = BwdBSmem;
    extern __shared__ __align__(16) unsigned char smem[];
    float* f = reinterpret_cast<float*>(smem);
    float *At = f + Sm::kAt * LN, *Rt = f + Sm::kRt * LN, *Bs = f + Sm::kBs * LN,
          *Ks = f + Sm::kKs * LN, *Kh = f + Sm::kKh * LN, *Lam = f + Sm::kLam * LN,
          *Lamp = f + Sm::kLamp * LN;
    float* cols = f + Sm::kRows * LN;
    float *DYt = cols + Sm::kDYt * N * TP, *DUt = cols + Sm::kDUt * N * TP,
          *Vt = cols + Sm::kVt * N * TP, *Ut = cols + Sm::kUt * N * TP;
    float* S0 = cols + Sm::kCols * N * TP;  // [N][SP]; after the products: xr, xb, xk, z
    float* Gh = S0 + N * SP;                // [N][SP]
    float* C = Gh + N * SP;                 // kCoef x [16][16]
    float* eL = C + Sm::kCoef * 256;
    float* cL = eL + N;  // [4][N] partial sums, then cL[0..N)

    const int c = blockIdx.x, h = blockIdx.y, bb = blockIdx.z, tid = threadIdx.x;
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int t0 = c * L, nt = min(L, Tn - t0);
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N + t0 * HN;
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;

    // inputs (zero past step nt): At, Rt, Bs, Ks hold the raw a, r, b, k and Lam the raw w until
    // the decay pass; dY, dU, V, U transposed; the entering state and the exit gradient
    for (int e = tid; e < L * N / 4; e += NTB) {
        const int t = e / (N / 4), j = 4 * (e % (N / 4)), p = t * SP + j;
        const int64_t g = base + t * HN + j;
        const float4 z4 = make_float4(0.f, 0.f, 0.f, 0.f);
        const bool ok = t < nt;
        st4(Rt + p, ok ? load4(A.r + g) : z4);
        st4(Ks + p, ok ? load4(A.k + g) : z4);
        st4(At + p, ok ? load4(A.a + g) : z4);
        st4(Bs + p, ok ? load4(A.b + g) : z4);
        st4(Lam + p, ok ? load4(A.w + g) : z4);
        const float4 dy4 = ok ? load4(A.dy + g) : z4, du4 = ok ? load4(W.du + g) : z4;
        const float4 v4 = ok ? load4(A.v + g) : z4, u4 = ok ? load4(A.sa + g) : z4;
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            DYt[(j + q) * TP + t] = comp(dy4, q);
            DUt[(j + q) * TP + t] = comp(du4, q);
            Vt[(j + q) * TP + t] = comp(v4, q);
            Ut[(j + q) * TP + t] = comp(u4, q);
        }
    }
    const float* s0 = c > 0        ? A.snaps + bh_state * NC + static_cast<int64_t>(c - 1) * N * N
                      : A.state_in ? A.state_in + bh_state
                                   : nullptr;
    const float* gh = W.gh + bh_state * NC + static_cast<int64_t>(c) * N * N;
    const float* sl = A.snaps + bh_state * NC + static_cast<int64_t>(c) * N * N;
    for (int e = tid; e < N * N / 4; e += NTB) {
        const int i = e / (N / 4), j = 4 * (e % (N / 4));
        st4(S0 + i * SP + j, s0 ? ld4(s0 + i * N + j) : make_float4(0.f, 0.f, 0.f, 0.f));
        st4(Gh + i * SP + j, ld4(gh + i * N + j));
    }
    __syncthreads();
    if (tid < 256) {
        // decays: column j, steps 4q .. 4q+3 (each thread converts its own elements)
        const int j = tid >> 2, q = tid & 3;
        float x[4], run = 0.f;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int t = 4 * q + e;
            run += t < nt ? -kDecayScale * sigmoid_f(Lam[t * SP + j]) : 0.f;
            x[e] = run;
        }
        float off = 0.f;
        const unsigned mask = 0xffffffffu;
        float up = __shfl_up_sync(mask, run, 1, 4);
        if (q >= 1) off += up;
        up = __shfl_up_sync(mask, run, 2, 4);
        if (q >= 2) off += up;
        up = __shfl_up_sync(mask, run, 3, 4);
        if (q >= 3) off += up;
        const float lamL = __shfl_sync(mask, off + run, 3, 4);
        if (q == 0) eL[j] = expf(lamL);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int t = 4 * q + e, p = t * SP + j;
            const float lam = off + x[e], lamp = off + (e > 0 ? x[e - 1] : 0.f);
            const float ep = expf(lamp), ev = expf(lam), em = expf(-lam), eh = expf(lamL - lam);
            At[p] *= ep;
            Rt[p] *= ev;
            Bs[p] *= em;
            Kh[p] = Ks[p] * eh;
            Ks[p] *= em;
            Lam[p] = lam;
            Lamp[p] = lamp;
        }
        // cL[j] = sum_i Gh[i][j] S_L[i][j] (partial over i = q, q + 4, ...)
        float s = 0.f;
        for (int i = q; i < N; i += 4) s = fmaf(Gh[i * SP + j], sl[i * N + j], s);
        cL[q * N + j] = s;
    }
    __syncthreads();
    // The 16 x 16 products, tiles of 4 rows x 2 columns, written masked into C:
    // P1 = dY U^T, P2 = dY V^T, P3 = dU U^T, P4 = dU V^T (sums over values, transposed operands),
    // Rk[s][t] = Rt_s . Ks_t, Ak[s][t] = At_s . Ks_t (sums over keys, row operands).
    if (tid < 192) {
        const int m = tid >> 5, x0 = 4 * ((tid & 31) >> 3), y0 = 2 * (tid & 7);
        float acc[4][2];
#pragma unroll
        for (int a = 0; a < 4; ++a) acc[a][0] = acc[a][1] = 0.f;
        if (m < 4) {
            const float* X = m < 2 ? DYt : DUt;
            const float* Y = (m & 1) ? Vt : Ut;
#pragma unroll 4
            for (int i = 0; i < N; ++i) {
                const float4 xv = ld4(X + i * TP + x0);
                const float2 yv = *reinterpret_cast<const float2*>(Y + i * TP + y0);
#pragma unroll
                for (int a = 0; a < 4; ++a) {
                    acc[a][0] = fmaf(comp(xv, a), yv.x, acc[a][0]);
                    acc[a][1] = fmaf(comp(xv, a), yv.y, acc[a][1]);
                }
            }
        } else {
            const float* X = m == 4 ? Rt : At;
#pragma unroll 2
            for (int j = 0; j < N; j += 4) {
                const float4 y0v = ld4(Ks + y0 * SP + j), y1v = ld4(Ks + (y0 + 1) * SP + j);
#pragma unroll
                for (int a = 0; a < 4; ++a) {
                    const float4 xv = ld4(X + (x0 + a) * SP + j);
                    acc[a][0] = dot4(xv, y0v, acc[a][0]);
                    acc[a][1] = dot4(xv, y1v, acc[a][1]);
                }
            }
        }
        // element (row x, column y) of the product
#pragma unroll
        for (int a = 0; a < 4; ++a)
#pragma unroll
            for (int b2 = 0; b2 < 2; ++b2) {
                const int x = x0 + a, y = y0 + b2;
                const float v = acc[a][b2];
                switch (m) {
                    case 0:  // P1: dr [s=y][t=x] (y <= x); db [s=x][t=y] (x >= y)
                        C[Sm::cDr1 * 256 + y * 16 + x] = y <= x ? v : 0.f;
                        C[Sm::cDb1 * 256 + x * 16 + y] = x >= y ? v : 0.f;
                        break;
                    case 1:  // P2: dr (Ks), dk (Rt)
                        C[Sm::cDr2 * 256 + y * 16 + x] = y <= x ? v : 0.f;
                        C[Sm::cDk2 * 256 + x * 16 + y] = x >= y ? v : 0.f;
                        break;
                    case 2:  // P3: da [s=y][t=x] (y < x); db (At) [s=x][t=y] (x > y)
                        C[Sm::cDa3 * 256 + y * 16 + x] = y < x ? v : 0.f;
                        C[Sm::cDb3 * 256 + x * 16 + y] = x > y ? v : 0.f;
                        break;
                    case 3:  // P4: da (Ks), dk (At)
                        C[Sm::cDa4 * 256 + y * 16 + x] = y < x ? v : 0.f;
                        C[Sm::cDk4 * 256 + x * 16 + y] = x > y ? v : 0.f;
                        break;
                    case 4:  // Rk[s=x][t=y], t <= s
                        C[Sm::cRk * 256 + x * 16 + y] = y <= x ? v : 0.f;
                        break;
                    default:  // Ak[s=x][t=y], t < s
                        C[Sm::cAk * 256 + x * 16 + y] = y < x ? v : 0.f;
                        break;
                }
            }
    } else if (tid < 192 + N) {
        const int j = tid - 192;
        cL[j] = (cL[j] + cL[N + j]) + (cL[2 * N + j] + cL[3 * N + j]);
    }
    __syncthreads();
    if constexpr (kMma) {
        bwd_products_mma<T>(A, At, Rt, Bs, Ks, Kh, Lam, Lamp, DYt, DUt, Vt, Ut, S0, Gh, C, eL, base,
                            HN, nt, tid);
    } else {
        // products: p = 0 dr, 1 da, 2 dk, 3 db (tile t0..t0+3 x keys j0..j0+3), 4 dv (values
        // jb, jb + 16, jb + 32, jb + 48)
        const int p = tid >> 6, tb = 4 * ((tid & 63) >> 4), jb = tid & 15, j0 = 4 * jb;
        float acc[4][4];
#pragma unroll
        for (int a = 0; a < 4; ++a)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[a][e] = 0.f;
        if (p < 4) {
            const float* X = p == 0 ? DYt : p == 1 ? DUt : p == 2 ? Vt : Ut;
            const float* Y = p < 2 ? S0 : Gh;
#pragma unroll 4
            for (int i = 0; i < N; ++i) {
                const float4 xv = ld4(X + i * TP + tb), yv = ld4(Y + i * SP + j0);
#pragma unroll
                for (int a = 0; a < 4; ++a)
#pragma unroll
                    for (int e = 0; e < 4; ++e)
                        acc[a][e] = fmaf(comp(xv, a), comp(yv, e), acc[a][e]);
            }
            if (p >= 2) {
                const float4 el = ld4(eL + j0);
#pragma unroll
                for (int a = 0; a < 4; ++a)
#pragma unroll
                    for (int e = 0; e < 4; ++e) acc[a][e] *= comp(el, e);
            }
            const int c1 = p == 0 ? Sm::cDr1 : p == 1 ? Sm::cDa3 : p == 2 ? Sm::cDk2 : Sm::cDb1;
            const int c2 = p == 0 ? Sm::cDr2 : p == 1 ? Sm::cDa4 : p == 2 ? Sm::cDk4 : Sm::cDb3;
            const float* Y1 = p < 2 ? Bs : Rt;
            const float* Y2 = p < 2 ? Ks : At;
#pragma unroll 4
            for (int s = 0; s < L; ++s) {
                const float4 k1 = ld4(C + c1 * 256 + s * 16 + tb),
                             k2 = ld4(C + c2 * 256 + s * 16 + tb);
                const float4 y1 = ld4(Y1 + s * SP + j0), y2 = ld4(Y2 + s * SP + j0);
#pragma unroll
                for (int a = 0; a < 4; ++a)
#pragma unroll
                    for (int e = 0; e < 4; ++e)
                        acc[a][e] = fmaf(comp(k1, a), comp(y1, e),
                                         fmaf(comp(k2, a), comp(y2, e), acc[a][e]));
            }
            const float* lam = p == 1 ? Lamp : Lam;
            const float sign = p < 2 ? 1.f : -1.f;
#pragma unroll
            for (int a = 0; a < 4; ++a) {
                const float4 l4 = ld4(lam + (tb + a) * SP + j0);
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[a][e] *= expf(sign * comp(l4, e));
            }
        } else {
#pragma unroll 2
            for (int j = 0; j < N; j += 4) {
                float4 kh[4];
#pragma unroll
                for (int a = 0; a < 4; ++a) kh[a] = ld4(Kh + (tb + a) * SP + j);
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const float4 g = ld4(Gh + (jb + 16 * e) * SP + j);
#pragma unroll
                    for (int a = 0; a < 4; ++a) acc[a][e] = dot4(kh[a], g, acc[a][e]);
                }
            }
#pragma unroll
            for (int s = 0; s < L; s += 4) {
                float4 k1[4], k2[4];
#pragma unroll
                for (int q = 0; q < 4; ++q) {
                    k1[q] = ld4(C + Sm::cRk * 256 + (s + q) * 16 + tb);
                    k2[q] = ld4(C + Sm::cAk * 256 + (s + q) * 16 + tb);
                }
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const float4 dy4 = ld4(DYt + (jb + 16 * e) * TP + s);
                    const float4 du4 = ld4(DUt + (jb + 16 * e) * TP + s);
#pragma unroll
                    for (int q = 0; q < 4; ++q)
#pragma unroll
                        for (int a = 0; a < 4; ++a)
                            acc[a][e] = fmaf(comp(k1[q], a), comp(dy4, q),
                                             fmaf(comp(k2[q], a), comp(du4, q), acc[a][e]));
                }
            }
        }
        __syncthreads();  // S0 is free: it takes x_r = r dr, x_b = b db, x_k = k dk, z = a da
        float* xs = S0 + (p < 4 ? (p == 0 ? 0 : p == 1 ? 3 : p == 2 ? 2 : 1) : 0) * LN;
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            const int t = tb + a;
            const bool ok = t < nt;
            const int64_t g = base + t * HN;
            if (p < 4) {
                T* out = p == 0 ? A.dr : p == 1 ? A.da : p == 2 ? A.dk : A.db;
                const T* in = p == 0 ? A.r : p == 1 ? A.a : p == 2 ? A.k : A.b;
                const float4 x4 = ok ? load4(in + g + j0) : make_float4(0.f, 0.f, 0.f, 0.f);
                st4(xs + t * SP + j0,
                    make_float4(comp(x4, 0) * acc[a][0], comp(x4, 1) * acc[a][1],
                                comp(x4, 2) * acc[a][2], comp(x4, 3) * acc[a][3]));
                if (ok) store4(out + g + j0, acc[a]);
            } else if (ok) {
#pragma unroll
                for (int e = 0; e < 4; ++e) A.dv[g + jb + 16 * e] = from_f<T>(acc[a][e]);
            }
        }
    }
    __syncthreads();
    // dl_t = sum_{s>=t} (x_r - x_b - x_k)_s + sum_{s>t} z_s + cL; dw = dl * d(log decay)/dw
    if (tid < N) {
        const int j = tid;
        const float *xr = S0, *xb = S0 + LN, *xk = S0 + 2 * LN, *z = S0 + 3 * LN;
        float acc1 = cL[j];
        for (int s = L - 1; s >= 0; --s) {
            acc1 += (xr[s * SP + j] - xb[s * SP + j]) - xk[s * SP + j];
            if (s < nt) {
                const int64_t g = base + s * HN + j;
                const float sg = sigmoid_f(to_f(A.w[g]));
                A.dw[g] = from_f<T>(acc1 * (-kDecayScale * sg * (1.f - sg)));
            }
            acc1 += z[s * SP + j];
        }
    }
}

}  // namespace chunked
}  // namespace goose_wkv7
