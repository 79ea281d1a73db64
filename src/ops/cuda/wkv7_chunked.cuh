// Chunked WKV-7 forward and backward for head size 64 (spec rwkv7.md §4.4; the derivation is in
// bench/kernels/wkv7/README.md "Chunked form"): the same contract as the sequential kernels of
// wkv7_kernels.cuh (FwdArgs / BwdArgs), f32 arithmetic throughout.
//
// Per (b, h) and 16-step chunk with entering state S0 (lam_t = sum_{s<=t} log decay_s):
//   U = (I - Ab)^-1 (At S0^T + Ak V),  y = Rt S0^T + Rb U + Rk V,
//   S_L = S0 diag(e^lam_L) + U^T Bh + V^T Kh,
// with At = a o e^lam_{t-1}, Rt = r o e^lam_t, Bs = b o e^-lam_t, Ks = k o e^-lam_t,
// Bh = b o e^(lam_L - lam_t), Kh = k o e^(lam_L - lam_t); Ab = At Bs^T and Ak = At Ks^T strictly
// lower, Rb = Rt Bs^T and Rk = Rt Ks^T lower (diagonal included). Padded steps of a short last
// chunk have log decay 0 and zero r, k, v, a, b: they change nothing.
//
// Forward (one block per (h, b, R value rows); value rows of the state are independent): the
// state-independent work of a chunk (exponentials, the four 16x16 products, the triangular solve
// folded into A' = (I - Ab)^-1 At, TAk = (I - Ab)^-1 Ak, R' = Rt + Rb A', Rk' = Rk + Rb TAk) runs
// two chunks ahead of the state work, so each chunk costs two barriers:
//   [U; y] = [A' TAk; R' Rk'] [S0^T; V^T],  S_L = S0 o e^lam_L + U^T Bh + V^T Kh.
// Backward phase A (same structure, reverse time): Gh = dL/dS at the chunk exit;
//   dU = (I - Ab^T)^-1 (Bh Gh^T + Rb^T dY),  Gh_0 = Gh o e^lam_L + dU^T At + dY^T Rt,
// storing dU (B, T, H, N) and Gh per chunk (B, H, chunks, N, N) in scratch. Phase B (one block
// per chunk, all in parallel): dr, da, dk, db, dv from S0, Gh, U (= sa), dU, and dw by the
// identity dl_t = sum_{s>=t} (r dr - b db - k dk)_s + sum_{s>t} (a da)_s + sum_i Gh S_L.
#pragma once

#include "wkv7_kernels.cuh"

namespace goose_wkv7 {
namespace chunked {

constexpr int N = 64, L = kChunk;
constexpr int SP = N + 4;    // padded row of the state / of L x N operands in shared memory
constexpr int XP = N + 16;   // [A' | TAk] rows
constexpr int LN = L * SP;   // floats of one padded L x N array

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

__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void st4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
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
                                             const T* bb, int n, int j, int q,
                                             const DecayOut& o) {
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

// ---- forward --------------------------------------------------------------------------------

template <class T, int R>
struct FwdSmem {
    static constexpr int kStage = 2 * 6 * L * N;  // raw T elements
    // f32 arrays, three buffers (chunk % 3) each
    static constexpr int kDec = 6 * LN;           // At Rt Bs Ks Bh Kh
    static constexpr int kG = 4 * 256;            // Ab Ak Rb Rk
    static constexpr int kX = 32 * XP;            // [A' TAk; R' Rk']
    static constexpr int kV = L * R;              // V[t][i] of my rows
    static constexpr int kPer = kDec + kG + kX + kV + N;  // + eL
    static constexpr int kFloats = 3 * kPer + R * SP + L * R;  // + state + U
    static constexpr size_t bytes() { return kStage * sizeof(T) + kFloats * sizeof(float); }
};

template <class T, int R, int NT>
__global__ void __launch_bounds__(NT, 1) wkv7_chunked_forward_kernel(Dims D, FwdArgs<T> A) {
    using namespace detail;
    using Sm = FwdSmem<T, R>;
    static_assert((NT == 256 && (R == 64 || R == 32)) || (NT == 512 && R == 64), "bad R, NT");
    constexpr int CG = NT / 256;       // column groups of warps in the [U; y] product
    constexpr int TI = R / (32 * CG);  // value columns per lane there
    constexpr int RI = R / (NT / 16);  // state rows per thread in the S_L update
    extern __shared__ __align__(16) unsigned char smem[];
    T* stage = reinterpret_cast<T*>(smem);
    float* fbase = reinterpret_cast<float*>(smem + Sm::kStage * sizeof(T));
    float* Ss = fbase + 3 * Sm::kPer;  // [R][SP]
    float* Us = Ss + R * SP;           // [L][R]
    auto buf = [&](int c) { return fbase + (c % 3) * Sm::kPer; };
    auto At = [&](int c) { return buf(c); };
    auto Rt = [&](int c) { return buf(c) + LN; };
    auto Bs = [&](int c) { return buf(c) + 2 * LN; };
    auto Ks = [&](int c) { return buf(c) + 3 * LN; };
    auto Bh = [&](int c) { return buf(c) + 4 * LN; };
    auto Kh = [&](int c) { return buf(c) + 5 * LN; };
    auto G = [&](int c) { return buf(c) + Sm::kDec; };
    auto Xs = [&](int c) { return buf(c) + Sm::kDec + Sm::kG; };
    auto Vs = [&](int c) { return buf(c) + Sm::kDec + Sm::kG + Sm::kX; };
    auto eL = [&](int c) { return buf(c) + Sm::kDec + Sm::kG + Sm::kX + Sm::kV; };

    const int h = blockIdx.x, bb = blockIdx.y, i0 = blockIdx.z * R;
    const int tid = threadIdx.x, lane = tid & 31, rg = (tid >> 5) & 7, cg = tid >> 8;
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;
    const T* src[6] = {A.r + base, A.w + base, A.k + base, A.v + base, A.a + base, A.b + base};
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;

    for (int e = tid; e < R * N; e += NT) {
        const int i = e / N, j = e % N;
        Ss[i * SP + j] = A.state_in ? A.state_in[bh_state + (i0 + i) * N + j] : 0.f;
    }
    auto issue = [&](int c) {
        if (c < NC) {
            const int t0 = c * L, nt = min(L, Tn - t0);
#pragma unroll
            for (int m = 0; m < 6; ++m)
                stage_rows<T, N>(stage + ((c & 1) * 6 + m) * L * N, src[m], HN, t0, nt, tid, NT);
        }
        cp_async_commit();
    };
    issue(0);
    for (int c = -2; c < NC; ++c) {
        issue(c + 3);
        cp_async_wait<1>();
        __syncthreads();
        // ---- stage 1: [U; y] of chunk c; decays of chunk c+2; triangular solve of chunk c+1
        if (c >= 0) {
            const int t0 = c * L, nt = min(L, Tn - t0);
            const float* X = Xs(c);
            const float* V = Vs(c);
            float acc[4][TI];
#pragma unroll
            for (int a = 0; a < 4; ++a)
#pragma unroll
                for (int m = 0; m < TI; ++m) acc[a][m] = 0.f;
#pragma unroll 4
            for (int k = 0; k < N; k += 4) {
                float4 x[4];
#pragma unroll
                for (int a = 0; a < 4; ++a) x[a] = ld4(X + (4 * rg + a) * XP + k);
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const float4 z = ld4(Ss + (lane + 32 * (cg * TI + m)) * SP + k);
#pragma unroll
                    for (int a = 0; a < 4; ++a) acc[a][m] = dot4(x[a], z, acc[a][m]);
                }
            }
#pragma unroll
            for (int k = 0; k < L; k += 4) {
                float4 x[4];
#pragma unroll
                for (int a = 0; a < 4; ++a) x[a] = ld4(X + (4 * rg + a) * XP + N + k);
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const int i = lane + 32 * (cg * TI + m);
                    const float4 z = make_float4(V[k * R + i], V[(k + 1) * R + i],
                                                 V[(k + 2) * R + i], V[(k + 3) * R + i]);
#pragma unroll
                    for (int a = 0; a < 4; ++a) acc[a][m] = dot4(x[a], z, acc[a][m]);
                }
            }
#pragma unroll
            for (int a = 0; a < 4; ++a) {
                const int row = 4 * rg + a, t = row & 15;
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const int i = lane + 32 * (cg * TI + m);
                    const int64_t off = base + static_cast<int64_t>(t0 + t) * HN + i0 + i;
                    if (row < 16) {
                        Us[t * R + i] = acc[a][m];
                        if (t < nt) A.sa[off] = acc[a][m];
                    } else if (t < nt) {
                        A.y[off] = from_f<T>(acc[a][m]);
                    }
                }
            }
        }
        if (c + 2 < NC) {
            const int cn = c + 2, t0 = cn * L, nt = min(L, Tn - t0);
            const T* st = stage + (cn & 1) * 6 * L * N;
            const DecayOut o{At(cn), Rt(cn), Bs(cn), Ks(cn), Bh(cn), Kh(cn), eL(cn)};
            constexpr int QN = NT / N;
            decay_column<T, QN>(st, st + L * N, st + 2 * L * N, st + 4 * L * N, st + 5 * L * N,
                                nt, tid / QN, tid % QN, o);
            float* V = Vs(cn);
            const T* sv = st + 3 * L * N;
            for (int e = tid; e < L * R; e += NT) {
                const int t = e / R, i = e % R;
                V[e] = t < nt ? to_f(sv[t * N + i0 + i]) : 0.f;
            }
        }
        if (c + 1 >= 0 && c + 1 < NC && tid < N + L) {
            // columns of [At | Ak]: A' = (I - Ab)^-1 x (R' follows in stage 2)
            const int cn = c + 1, col = tid;
            const float* g = G(cn);
            const float *Ab = g, *Ak = g + 256;
            float* X = Xs(cn);
            float ap[L];
#pragma unroll
            for (int t = 0; t < L; ++t) {
                float s = col < N ? At(cn)[t * SP + col] : Ak[t * 16 + col - N];
#pragma unroll
                for (int u = 0; u < t; ++u) s = fmaf(Ab[t * 16 + u], ap[u], s);
                ap[t] = s;
                X[t * XP + col] = s;
            }
        }
        __syncthreads();
        // ---- stage 2: S_L of chunk c; the 16x16 products of chunk c+2
        if (c >= 0) {
            const int jb = tid & 15, ib = tid >> 4;
            const float* bh = Bh(c);
            const float* kh = Kh(c);
            const float* V = Vs(c);
            const float4 el = ld4(eL(c) + 4 * jb);
            float acc[RI][4];
#pragma unroll
            for (int m = 0; m < RI; ++m) {
                const float4 s = ld4(Ss + (ib * RI + m) * SP + 4 * jb);
                acc[m][0] = s.x * el.x;
                acc[m][1] = s.y * el.y;
                acc[m][2] = s.z * el.z;
                acc[m][3] = s.w * el.w;
            }
#pragma unroll 4
            for (int t = 0; t < L; ++t) {
                const float4 x = ld4(bh + t * SP + 4 * jb), z = ld4(kh + t * SP + 4 * jb);
#pragma unroll
                float uu[RI], vv[RI];
                load_rows<RI>(uu, Us + t * R + ib * RI);
                load_rows<RI>(vv, V + t * R + ib * RI);
#pragma unroll
                for (int m = 0; m < RI; ++m) {
                    const float u = uu[m], v = vv[m];
                    acc[m][0] = fmaf(u, x.x, fmaf(v, z.x, acc[m][0]));
                    acc[m][1] = fmaf(u, x.y, fmaf(v, z.y, acc[m][1]));
                    acc[m][2] = fmaf(u, x.z, fmaf(v, z.z, acc[m][2]));
                    acc[m][3] = fmaf(u, x.w, fmaf(v, z.w, acc[m][3]));
                }
            }
            float* snap = A.snaps + bh_state * NC + static_cast<int64_t>(c) * N * N;
#pragma unroll
            for (int m = 0; m < RI; ++m) {
                const int i = ib * RI + m;
                const float4 s = make_float4(acc[m][0], acc[m][1], acc[m][2], acc[m][3]);
                st4(Ss + i * SP + 4 * jb, s);
                st4(snap + (i0 + i) * N + 4 * jb, s);
                if (c == NC - 1) st4(A.state_out + bh_state + (i0 + i) * N + 4 * jb, s);
            }
        }
        if (c + 1 >= 0 && c + 1 < NC) {
            // R' = [Rt | Rk] + Rb A' of chunk c+1
            const int cn = c + 1;
            const float* Rb = G(cn) + 512;
            const float* Rk = G(cn) + 768;
            float* X = Xs(cn);
            for (int e = tid; e < L * (N + L); e += NT) {
                const int t = e / (N + L), col = e % (N + L);
                float s = col < N ? Rt(cn)[t * SP + col] : Rk[t * 16 + col - N];
                for (int u = 0; u <= t; ++u) s = fmaf(Rb[t * 16 + u], X[u * XP + col], s);
                X[(16 + t) * XP + col] = s;
            }
        }
        if (c + 2 < NC) {
            constexpr int O = 1024 / NT, PM = NT / 4;  // outputs per thread, threads per matrix
            const int cn = c + 2, m = tid / PM, t = (tid % PM) / (16 / O), sb = tid % (16 / O);
            gram<O>(G(cn) + m * 256, m < 2 ? At(cn) : Rt(cn), (m & 1) ? Ks(cn) : Bs(cn), t, sb,
                    m < 2);
        }
    }
}

// ---- backward phase A: the state gradient at every chunk exit, and dU ------------------------

template <class T, int R>
struct BwdASmem {
    static constexpr int kStage = 2 * 5 * L * N;  // r w a b dy
    static constexpr int kDec = 4 * LN;           // At Rt Bs Bh
    static constexpr int kG = 2 * 256;            // Ab Rb
    static constexpr int kX = 16 * XP;            // [A'' TR]
    static constexpr int kV = L * R;              // dY[t][i] of my rows
    static constexpr int kPer = kDec + kG + kX + kV + N;
    static constexpr int kFloats = 3 * kPer + R * SP + L * R;
    static constexpr size_t bytes() { return kStage * sizeof(T) + kFloats * sizeof(float); }
};

template <class T, int R, int NT>
__global__ void __launch_bounds__(NT, 1) wkv7_chunked_bwd_state_kernel(Dims D, BwdArgs<T> A,
                                                                      BwdScratch W) {
    using namespace detail;
    using Sm = BwdASmem<T, R>;
    static_assert((NT == 256 && (R == 64 || R == 32)) || (NT == 512 && R == 64), "bad R, NT");
    constexpr int CG = NT / 256, TI = R / (32 * CG), RI = R / (NT / 16);
    extern __shared__ __align__(16) unsigned char smem[];
    T* stage = reinterpret_cast<T*>(smem);
    float* fbase = reinterpret_cast<float*>(smem + Sm::kStage * sizeof(T));
    float* Gs = fbase + 3 * Sm::kPer;  // [R][SP] state gradient
    float* DUs = Gs + R * SP;          // [L][R]
    auto buf = [&](int c) { return fbase + (c % 3) * Sm::kPer; };
    auto At = [&](int c) { return buf(c); };
    auto Rt = [&](int c) { return buf(c) + LN; };
    auto Bs = [&](int c) { return buf(c) + 2 * LN; };
    auto Bh = [&](int c) { return buf(c) + 3 * LN; };
    auto G = [&](int c) { return buf(c) + Sm::kDec; };
    auto Xs = [&](int c) { return buf(c) + Sm::kDec + Sm::kG; };
    auto DYs = [&](int c) { return buf(c) + Sm::kDec + Sm::kG + Sm::kX; };
    auto eL = [&](int c) { return buf(c) + Sm::kDec + Sm::kG + Sm::kX + Sm::kV; };

    const int h = blockIdx.x, bb = blockIdx.y, i0 = blockIdx.z * R;
    const int tid = threadIdx.x, lane = tid & 31, rg = (tid >> 5) & 7, cg = tid >> 8;
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;
    const T* src[5] = {A.r + base, A.w + base, A.a + base, A.b + base, A.dy + base};
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;

    for (int e = tid; e < R * N; e += NT) {
        const int i = e / N, j = e % N;
        Gs[i * SP + j] = A.dstate_out ? A.dstate_out[bh_state + (i0 + i) * N + j] : 0.f;
    }
    auto issue = [&](int c) {  // chunk c (counting down), buffer c & 1
        if (c >= 0) {
            const int t0 = c * L, nt = min(L, Tn - t0);
#pragma unroll
            for (int m = 0; m < 5; ++m)
                stage_rows<T, N>(stage + ((c & 1) * 5 + m) * L * N, src[m], HN, t0, nt, tid, NT);
        }
        cp_async_commit();
    };
    issue(NC - 1);
    for (int c = NC + 1; c >= 0; --c) {
        issue(c - 3);
        cp_async_wait<1>();
        __syncthreads();
        // ---- stage 1: dU of chunk c; decays of chunk c-2; triangular solve of chunk c-1
        if (c < NC) {
            const int t0 = c * L, nt = min(L, Tn - t0);
            // the gradient at this chunk's exit, for phase B
            float* gh = W.gh + bh_state * NC + static_cast<int64_t>(c) * N * N;
            for (int e = tid; e < R * N / 4; e += NT) {
                const int i = e / (N / 4), j = 4 * (e % (N / 4));
                st4(gh + (i0 + i) * N + j, ld4(Gs + i * SP + j));
            }
            const float* X = Xs(c);
            const float* DY = DYs(c);
            float acc[2][TI];
#pragma unroll
            for (int a = 0; a < 2; ++a)
#pragma unroll
                for (int m = 0; m < TI; ++m) acc[a][m] = 0.f;
#pragma unroll 4
            for (int k = 0; k < N; k += 4) {
                float4 x[2];
#pragma unroll
                for (int a = 0; a < 2; ++a) x[a] = ld4(X + (2 * rg + a) * XP + k);
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const float4 z = ld4(Gs + (lane + 32 * (cg * TI + m)) * SP + k);
#pragma unroll
                    for (int a = 0; a < 2; ++a) acc[a][m] = dot4(x[a], z, acc[a][m]);
                }
            }
#pragma unroll
            for (int k = 0; k < L; k += 4) {
                float4 x[2];
#pragma unroll
                for (int a = 0; a < 2; ++a) x[a] = ld4(X + (2 * rg + a) * XP + N + k);
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const int i = lane + 32 * (cg * TI + m);
                    const float4 z = make_float4(DY[k * R + i], DY[(k + 1) * R + i],
                                                 DY[(k + 2) * R + i], DY[(k + 3) * R + i]);
#pragma unroll
                    for (int a = 0; a < 2; ++a) acc[a][m] = dot4(x[a], z, acc[a][m]);
                }
            }
#pragma unroll
            for (int a = 0; a < 2; ++a) {
                const int t = 2 * rg + a;
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const int i = lane + 32 * (cg * TI + m);
                    DUs[t * R + i] = acc[a][m];
                    if (t < nt) W.du[base + static_cast<int64_t>(t0 + t) * HN + i0 + i] = acc[a][m];
                }
            }
        }
        if (c - 2 >= 0 && c - 2 < NC) {
            const int cn = c - 2, t0 = cn * L, nt = min(L, Tn - t0);
            const T* st = stage + (cn & 1) * 5 * L * N;
            const DecayOut o{At(cn), Rt(cn), Bs(cn), nullptr, Bh(cn), nullptr, eL(cn)};
            constexpr int QN = NT / N;
            decay_column<T, QN>(st, st + L * N, st, st + 2 * L * N, st + 3 * L * N, nt, tid / QN,
                                tid % QN, o);
            float* DY = DYs(cn);
            const T* sd = st + 4 * L * N;
            for (int e = tid; e < L * R; e += NT) {
                const int t = e / R, i = e % R;
                DY[e] = t < nt ? to_f(sd[t * N + i0 + i]) : 0.f;
            }
        }
        if (c - 1 >= 0 && c - 1 < NC && tid < N + L) {
            // columns of [Bh | Rb^T]: X = (I - Ab^T)^-1 x, solved from t = 15 down
            const int cn = c - 1, col = tid;
            const float* g = G(cn);
            const float *Ab = g, *Rb = g + 256;
            float xs[L];
            float* X = Xs(cn);
#pragma unroll
            for (int t = L - 1; t >= 0; --t) {
                float s = col < N ? Bh(cn)[t * SP + col] : Rb[(col - N) * 16 + t];
#pragma unroll
                for (int u = t + 1; u < L; ++u) s = fmaf(Ab[u * 16 + t], xs[u], s);
                xs[t] = s;
                X[t * XP + col] = s;
            }
        }
        __syncthreads();
        // ---- stage 2: the gradient at the chunk entry; the 16x16 products of chunk c-2
        if (c < NC) {
            const int jb = tid & 15, ib = tid >> 4;
            const float* at = At(c);
            const float* rt = Rt(c);
            const float* DY = DYs(c);
            const float4 el = ld4(eL(c) + 4 * jb);
            float acc[RI][4];
#pragma unroll
            for (int m = 0; m < RI; ++m) {
                const float4 s = ld4(Gs + (ib * RI + m) * SP + 4 * jb);
                acc[m][0] = s.x * el.x;
                acc[m][1] = s.y * el.y;
                acc[m][2] = s.z * el.z;
                acc[m][3] = s.w * el.w;
            }
#pragma unroll 4
            for (int t = 0; t < L; ++t) {
                const float4 x = ld4(at + t * SP + 4 * jb), z = ld4(rt + t * SP + 4 * jb);
#pragma unroll
                float uu[RI], vv[RI];
                load_rows<RI>(uu, DUs + t * R + ib * RI);
                load_rows<RI>(vv, DY + t * R + ib * RI);
#pragma unroll
                for (int m = 0; m < RI; ++m) {
                    const float u = uu[m], v = vv[m];
                    acc[m][0] = fmaf(u, x.x, fmaf(v, z.x, acc[m][0]));
                    acc[m][1] = fmaf(u, x.y, fmaf(v, z.y, acc[m][1]));
                    acc[m][2] = fmaf(u, x.z, fmaf(v, z.z, acc[m][2]));
                    acc[m][3] = fmaf(u, x.w, fmaf(v, z.w, acc[m][3]));
                }
            }
#pragma unroll
            for (int m = 0; m < RI; ++m) {
                const int i = ib * RI + m;
                const float4 s = make_float4(acc[m][0], acc[m][1], acc[m][2], acc[m][3]);
                st4(Gs + i * SP + 4 * jb, s);
                if (c == 0) st4(A.dstate_in + bh_state + (i0 + i) * N + 4 * jb, s);
            }
        }
        if (c - 2 >= 0 && c - 2 < NC && tid < 128) {
            const int cn = c - 2, m = tid >> 6, t = (tid & 63) >> 2, sb = tid & 3;
            gram<4>(G(cn) + m * 256, m == 0 ? At(cn) : Rt(cn), Bs(cn), t, sb, m == 0);
        }
    }
}

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
        __nv_bfloat162 lo = __floats2bfloat162_rn(x[0], x[1]), hi = __floats2bfloat162_rn(x[2], x[3]);
        uint2 u;
        u.x = *reinterpret_cast<unsigned*>(&lo);
        u.y = *reinterpret_cast<unsigned*>(&hi);
        *reinterpret_cast<uint2*>(p) = u;
    }
}

template <class T>
__global__ void __launch_bounds__(NTB, 2) wkv7_chunked_bwd_grads_kernel(Dims D, BwdArgs<T> A,
                                                                       BwdScratch W) {
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
    const float* s0 = c > 0 ? A.snaps + bh_state * NC + static_cast<int64_t>(c - 1) * N * N
                            : A.state_in ? A.state_in + bh_state : nullptr;
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
                for (int e = 0; e < 4; ++e) acc[a][e] = fmaf(comp(xv, a), comp(yv, e), acc[a][e]);
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
            const float4 k1 = ld4(C + c1 * 256 + s * 16 + tb), k2 = ld4(C + c2 * 256 + s * 16 + tb);
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
            st4(xs + t * SP + j0, make_float4(comp(x4, 0) * acc[a][0], comp(x4, 1) * acc[a][1],
                                              comp(x4, 2) * acc[a][2], comp(x4, 3) * acc[a][3]));
            if (ok) store4(out + g + j0, acc[a]);
        } else if (ok) {
#pragma unroll
            for (int e = 0; e < 4; ++e) A.dv[g + jb + 16 * e] = from_f<T>(acc[a][e]);
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

// ---- launchers ------------------------------------------------------------------------------

template <class T, int R, int NT = 256>
cudaError_t launch_forward(const Dims& D, const FwdArgs<T>& A, cudaStream_t stream) {
    constexpr size_t smem = FwdSmem<T, R>::bytes();
    auto kernel = wkv7_chunked_forward_kernel<T, R, NT>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kernel<<<dim3(D.H, D.B, N / R), NT, smem, stream>>>(D, A);
    return cudaGetLastError();
}

// Floats of scratch the chunked backward needs (du, then gh).
inline size_t backward_scratch_floats(const Dims& D) {
    return static_cast<size_t>(D.B) * D.T * D.H * N +
           static_cast<size_t>(D.B) * D.H * D.chunks() * N * N;
}

template <class T, int R, int NT = 256>
cudaError_t launch_backward(const Dims& D, const BwdArgs<T>& A, float* scratch,
                            cudaStream_t stream) {
    const BwdScratch W{scratch, scratch + static_cast<size_t>(D.B) * D.T * D.H * N};
    constexpr size_t smem_a = BwdASmem<T, R>::bytes();
    auto ka = wkv7_chunked_bwd_state_kernel<T, R, NT>;
    cudaError_t e = cudaFuncSetAttribute(ka, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem_a));
    if (e != cudaSuccess) return e;
    ka<<<dim3(D.H, D.B, N / R), NT, smem_a, stream>>>(D, A, W);
    e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    constexpr size_t smem_b = BwdBSmem::bytes();
    auto kb = wkv7_chunked_bwd_grads_kernel<T>;
    e = cudaFuncSetAttribute(kb, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem_b));
    if (e != cudaSuccess) return e;
    kb<<<dim3(D.chunks(), D.H, D.B), NTB, smem_b, stream>>>(D, A, W);
    return cudaGetLastError();
}

}  // namespace chunked
}  // namespace goose_wkv7
