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

constexpr int N = 64, L = kChunk, NT = 256;
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

// The decay quantities of one chunk for key column j, steps t = 4q .. 4q+3 (q = lane & 3, the
// four lanes of a column are adjacent): the log decay is 0 and the inputs zero past step n.
// Outputs (any may be null): At, Rt, Bs, Ks, Bh, Kh (padded L x N), E = e^lam, Ep = e^lam_{t-1},
// Em = e^-lam, eL = e^lam_L.
struct DecayOut {
    float *At, *Rt, *Bs, *Ks, *Bh, *Kh, *E, *Ep, *Em, *eL;
};

template <class T>
__device__ __forceinline__ void decay_column(const T* rr, const T* ww, const T* kk, const T* aa,
                                             const T* bb, int n, int j, int q,
                                             const DecayOut& o) {
    float l[4], x[4];
    float run = 0.f;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        const int t = 4 * q + e;
        l[e] = t < n ? -kDecayScale * sigmoid_f(to_f(ww[t * N + j])) : 0.f;
        run += l[e];
        x[e] = run;  // inclusive prefix within my four steps
    }
    // exclusive scan of the four lanes' totals
    float tot = run, off = 0.f;
    const unsigned mask = 0xffffffffu;
    float up = __shfl_up_sync(mask, tot, 1, 4);
    if (q >= 1) off += up;
    up = __shfl_up_sync(mask, tot, 2, 4);
    if (q >= 2) off += up;
    up = __shfl_up_sync(mask, tot, 3, 4);
    if (q >= 3) off += up;
    const float lamL = __shfl_sync(mask, off + tot, 3, 4);
    if (o.eL && q == 0) o.eL[j] = expf(lamL);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        const int t = 4 * q + e, p = t * SP + j;
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
        if (o.E) o.E[p] = ev;
        if (o.Ep) o.Ep[p] = ep;
        if (o.Em) o.Em[p] = em;
    }
}

// out[t][s] (16 x 16, row stride 16) = sum_j X[t][j] Y[s][j] over padded L x N arrays, masked
// to s < t (strict) or s <= t; the calling thread computes row t, columns 4 sb .. 4 sb + 3.
__device__ __forceinline__ void gram4(float* out, const float* X, const float* Y, int t, int sb,
                                      bool strict) {
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll 4
    for (int j = 0; j < N; j += 4) {
        const float4 x = ld4(X + t * SP + j);
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[e] = dot4(x, ld4(Y + (4 * sb + e) * SP + j), acc[e]);
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        const int s = 4 * sb + e;
        out[t * 16 + s] = (strict ? s < t : s <= t) ? acc[e] : 0.f;
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

template <class T, int R>
__global__ void __launch_bounds__(NT, 1) wkv7_chunked_forward_kernel(Dims D, FwdArgs<T> A) {
    using namespace detail;
    using Sm = FwdSmem<T, R>;
    static_assert(R == 64 || R == 32, "R must be 32 or 64");
    constexpr int TI = R / 32;  // value columns per lane in the [U; y] product
    constexpr int RI = R / 16;  // state rows per thread in the S_L update
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
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
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
                for (int a = 0; a < 4; ++a) x[a] = ld4(X + (4 * warp + a) * XP + k);
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const float4 z = ld4(Ss + (lane + 32 * m) * SP + k);
#pragma unroll
                    for (int a = 0; a < 4; ++a) acc[a][m] = dot4(x[a], z, acc[a][m]);
                }
            }
#pragma unroll
            for (int k = 0; k < L; k += 4) {
                float4 x[4];
#pragma unroll
                for (int a = 0; a < 4; ++a) x[a] = ld4(X + (4 * warp + a) * XP + N + k);
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const int i = lane + 32 * m;
                    const float4 z = make_float4(V[k * R + i], V[(k + 1) * R + i],
                                                 V[(k + 2) * R + i], V[(k + 3) * R + i]);
#pragma unroll
                    for (int a = 0; a < 4; ++a) acc[a][m] = dot4(x[a], z, acc[a][m]);
                }
            }
#pragma unroll
            for (int a = 0; a < 4; ++a) {
                const int row = 4 * warp + a, t = row & 15;
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const int i = lane + 32 * m;
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
            const DecayOut o{At(cn), Rt(cn), Bs(cn), Ks(cn), Bh(cn), Kh(cn),
                             nullptr, nullptr, nullptr, eL(cn)};
            decay_column<T>(st, st + L * N, st + 2 * L * N, st + 4 * L * N, st + 5 * L * N, nt,
                            tid >> 2, tid & 3, o);
            float* V = Vs(cn);
            const T* sv = st + 3 * L * N;
            for (int e = tid; e < L * R; e += NT) {
                const int t = e / R, i = e % R;
                V[e] = t < nt ? to_f(sv[t * N + i0 + i]) : 0.f;
            }
        }
        if (c + 1 >= 0 && c + 1 < NC && tid < N + L) {
            // columns of [At | Ak]: A' = (I - Ab)^-1 x, R' = rx + Rb A' with rx of [Rt | Rk]
            const int cn = c + 1, col = tid;
            const float* g = G(cn);
            const float *Ab = g, *Ak = g + 256, *Rb = g + 512, *Rk = g + 768;
            float ap[L];
#pragma unroll
            for (int t = 0; t < L; ++t) {
                float s = col < N ? At(cn)[t * SP + col] : Ak[t * 16 + col - N];
#pragma unroll
                for (int u = 0; u < t; ++u) s = fmaf(Ab[t * 16 + u], ap[u], s);
                ap[t] = s;
            }
            float* X = Xs(cn);
#pragma unroll
            for (int t = 0; t < L; ++t) {
                float s = col < N ? Rt(cn)[t * SP + col] : Rk[t * 16 + col - N];
#pragma unroll
                for (int u = 0; u <= t; ++u) s = fmaf(Rb[t * 16 + u], ap[u], s);
                X[t * XP + col] = ap[t];
                X[(16 + t) * XP + col] = s;
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
                for (int m = 0; m < RI; ++m) {
                    const float u = Us[t * R + ib * RI + m], v = V[t * R + ib * RI + m];
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
        if (c + 2 < NC) {
            const int cn = c + 2, m = tid >> 6, t = (tid & 63) >> 2, sb = tid & 3;
            gram4(G(cn) + m * 256, m < 2 ? At(cn) : Rt(cn), (m & 1) ? Ks(cn) : Bs(cn), t, sb,
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

template <class T, int R>
__global__ void __launch_bounds__(NT, 1) wkv7_chunked_bwd_state_kernel(Dims D, BwdArgs<T> A,
                                                                      BwdScratch W) {
    using namespace detail;
    using Sm = BwdASmem<T, R>;
    static_assert(R == 64 || R == 32, "R must be 32 or 64");
    constexpr int TI = R / 32, RI = R / 16;
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
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
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
                for (int a = 0; a < 2; ++a) x[a] = ld4(X + (2 * warp + a) * XP + k);
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const float4 z = ld4(Gs + (lane + 32 * m) * SP + k);
#pragma unroll
                    for (int a = 0; a < 2; ++a) acc[a][m] = dot4(x[a], z, acc[a][m]);
                }
            }
#pragma unroll
            for (int k = 0; k < L; k += 4) {
                float4 x[2];
#pragma unroll
                for (int a = 0; a < 2; ++a) x[a] = ld4(X + (2 * warp + a) * XP + N + k);
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const int i = lane + 32 * m;
                    const float4 z = make_float4(DY[k * R + i], DY[(k + 1) * R + i],
                                                 DY[(k + 2) * R + i], DY[(k + 3) * R + i]);
#pragma unroll
                    for (int a = 0; a < 2; ++a) acc[a][m] = dot4(x[a], z, acc[a][m]);
                }
            }
#pragma unroll
            for (int a = 0; a < 2; ++a) {
                const int t = 2 * warp + a;
#pragma unroll
                for (int m = 0; m < TI; ++m) {
                    const int i = lane + 32 * m;
                    DUs[t * R + i] = acc[a][m];
                    if (t < nt) W.du[base + static_cast<int64_t>(t0 + t) * HN + i0 + i] = acc[a][m];
                }
            }
        }
        if (c - 2 >= 0 && c - 2 < NC) {
            const int cn = c - 2, t0 = cn * L, nt = min(L, Tn - t0);
            const T* st = stage + (cn & 1) * 5 * L * N;
            const DecayOut o{At(cn), Rt(cn), Bs(cn), nullptr, Bh(cn), nullptr,
                             nullptr, nullptr, nullptr, eL(cn)};
            decay_column<T>(st, st + L * N, st, st + 2 * L * N, st + 3 * L * N, nt, tid >> 2,
                            tid & 3, o);
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
                for (int m = 0; m < RI; ++m) {
                    const float u = DUs[t * R + ib * RI + m], v = DY[t * R + ib * RI + m];
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
            gram4(G(cn) + m * 256, m == 0 ? At(cn) : Rt(cn), Bs(cn), t, sb, m == 0);
        }
    }
}

// ---- backward phase B: every chunk's input gradients, in parallel ---------------------------

struct BwdBSmem {
    // padded L x N arrays
    enum { kV, kDY, kU, kDU, kAt, kRt, kBs, kKs, kKh, kLam, kLamp, kXl, kZl, kArrays };
    static constexpr int kP = 6 * 256;  // P1..P4, Rk, Ak
    static constexpr int kFloats = kArrays * LN + 2 * N * SP + kP + N + 4 * N;
    static constexpr size_t bytes() { return kFloats * sizeof(float); }
};

template <class T>
__global__ void __launch_bounds__(NT, 2) wkv7_chunked_bwd_grads_kernel(Dims D, BwdArgs<T> A,
                                                                      BwdScratch W) {
    using namespace detail;
    using Sm = BwdBSmem;
    extern __shared__ __align__(16) unsigned char smem[];
    float* f = reinterpret_cast<float*>(smem);
    auto arr = [&](int m) { return f + m * LN; };
    float *v = arr(Sm::kV), *dy = arr(Sm::kDY), *u = arr(Sm::kU), *du = arr(Sm::kDU),
          *At = arr(Sm::kAt), *Rt = arr(Sm::kRt), *Bs = arr(Sm::kBs), *Ks = arr(Sm::kKs),
          *Kh = arr(Sm::kKh), *Lam = arr(Sm::kLam), *Lamp = arr(Sm::kLamp), *xl = arr(Sm::kXl),
          *zl = arr(Sm::kZl);
    float* S0 = f + Sm::kArrays * LN;  // [N][SP]
    float* Gh = S0 + N * SP;           // [N][SP]
    float* P = Gh + N * SP;            // P1 = dY U^T, P2 = dY V^T, P3 = dU U^T, P4 = dU V^T, Rk, Ak
    float* eL = P + Sm::kP;
    float* cL = eL + N;                // [4][N] partial sums, then cL[0..N)

    const int c = blockIdx.x, h = blockIdx.y, bb = blockIdx.z, tid = threadIdx.x;
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int t0 = c * L, nt = min(L, Tn - t0);
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N + t0 * HN;
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;

    // inputs of the chunk as f32 (zero past step nt; At, Rt, Bs, Ks hold the raw a, r, b, k and
    // xl the raw w until the decay pass), the entering state and the exit gradient
    for (int e = tid; e < L * N; e += NT) {
        const int t = e / N, j = e % N, p = t * SP + j;
        const bool ok = t < nt;
        const int64_t g = base + t * HN + j;
        Rt[p] = ok ? to_f(A.r[g]) : 0.f;
        Ks[p] = ok ? to_f(A.k[g]) : 0.f;
        At[p] = ok ? to_f(A.a[g]) : 0.f;
        Bs[p] = ok ? to_f(A.b[g]) : 0.f;
        v[p] = ok ? to_f(A.v[g]) : 0.f;
        dy[p] = ok ? to_f(A.dy[g]) : 0.f;
        u[p] = ok ? A.sa[g] : 0.f;
        du[p] = ok ? W.du[g] : 0.f;
        xl[p] = ok ? to_f(A.w[g]) : 0.f;
    }
    const float* s0 = c > 0 ? A.snaps + bh_state * NC + static_cast<int64_t>(c - 1) * N * N
                            : A.state_in ? A.state_in + bh_state : nullptr;
    const float* gh = W.gh + bh_state * NC + static_cast<int64_t>(c) * N * N;
    const float* sl = A.snaps + bh_state * NC + static_cast<int64_t>(c) * N * N;
    for (int e = tid; e < N * N / 4; e += NT) {
        const int i = e / (N / 4), j = 4 * (e % (N / 4));
        st4(S0 + i * SP + j, s0 ? ld4(s0 + i * N + j) : make_float4(0.f, 0.f, 0.f, 0.f));
        st4(Gh + i * SP + j, ld4(gh + i * N + j));
    }
    __syncthreads();
    {
        // decays: each thread owns column j, steps 4q .. 4q+3 (converts its own elements)
        const int j = tid >> 2, q = tid & 3;
        float l[4], x[4], run = 0.f;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int t = 4 * q + e;
            l[e] = t < nt ? -kDecayScale * sigmoid_f(xl[t * SP + j]) : 0.f;
            run += l[e];
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
    // the 16 x 16 products: P1 = dY U^T, P2 = dY V^T, P3 = dU U^T, P4 = dU V^T (unmasked),
    // Rk = Rt Ks^T (lower), Ak = At Ks^T (strictly lower)
    for (int task = tid; task < 6 * 64; task += NT) {
        const int m = task >> 6, t = (task & 63) >> 2, sb = task & 3;
        const float* X = m == 0 || m == 1 ? dy : m == 2 || m == 3 ? du : m == 4 ? Rt : At;
        const float* Y = m == 0 || m == 2 ? u : m == 1 || m == 3 ? v : Ks;
        float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll 4
        for (int j = 0; j < N; j += 4) {
            const float4 x = ld4(X + t * SP + j);
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[e] = dot4(x, ld4(Y + (4 * sb + e) * SP + j), acc[e]);
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int s = 4 * sb + e;
            const bool keep = m < 4 || (m == 4 ? s <= t : s < t);
            P[m * 256 + t * 16 + s] = keep ? acc[e] : 0.f;
        }
    }
    if (tid < N) cL[tid] = (cL[tid] + cL[N + tid]) + (cL[2 * N + tid] + cL[3 * N + tid]);
    __syncthreads();
    // dr, da, dk, db (row t, keys 4 jb ..) and dv (row t, values 4 jb ..)
    const int jb = tid & 15, t = tid >> 4, j0 = 4 * jb;
    const float *P1 = P, *P2 = P + 256, *P3 = P + 512, *P4 = P + 768, *Rk = P + 1024,
                *Ak = P + 1280;
    float dr[4] = {0.f, 0.f, 0.f, 0.f}, da[4] = {0.f, 0.f, 0.f, 0.f};
    float dk[4] = {0.f, 0.f, 0.f, 0.f}, db[4] = {0.f, 0.f, 0.f, 0.f};
    float dv[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll 4
    for (int i = 0; i < N; ++i) {
        const float4 s = ld4(S0 + i * SP + j0), g = ld4(Gh + i * SP + j0);
        const float xdy = dy[t * SP + i], xdu = du[t * SP + i], xv = v[t * SP + i],
                    xu = u[t * SP + i];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            dr[e] = fmaf(xdy, comp(s, e), dr[e]);
            da[e] = fmaf(xdu, comp(s, e), da[e]);
            dk[e] = fmaf(xv, comp(g, e), dk[e]);
            db[e] = fmaf(xu, comp(g, e), db[e]);
        }
    }
#pragma unroll 4
    for (int j = 0; j < N; j += 4) {
        const float4 kh = ld4(Kh + t * SP + j);
#pragma unroll
        for (int e = 0; e < 4; ++e) dv[e] = dot4(kh, ld4(Gh + (j0 + e) * SP + j), dv[e]);
    }
    {
        const float4 el = ld4(eL + j0);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            dk[e] *= comp(el, e);
            db[e] *= comp(el, e);
        }
    }
#pragma unroll 2
    for (int s = 0; s < L; ++s) {
        const float4 bs = ld4(Bs + s * SP + j0), ks = ld4(Ks + s * SP + j0);
        const float4 rt = ld4(Rt + s * SP + j0), at = ld4(At + s * SP + j0);
        const float4 dys = ld4(dy + s * SP + j0), dus = ld4(du + s * SP + j0);
        // s <= t: dr; s < t: da; s >= t: dk, db (Rt), dv (dY); s > t: dk, db (At), dv (dU)
        const float p1 = s <= t ? P1[t * 16 + s] : 0.f, p2 = s <= t ? P2[t * 16 + s] : 0.f;
        const float p3 = s < t ? P3[t * 16 + s] : 0.f, p4 = s < t ? P4[t * 16 + s] : 0.f;
        const float q2 = s >= t ? P2[s * 16 + t] : 0.f, q1 = s >= t ? P1[s * 16 + t] : 0.f;
        const float q4 = s > t ? P4[s * 16 + t] : 0.f, q3 = s > t ? P3[s * 16 + t] : 0.f;
        const float rk = Rk[s * 16 + t], ak = Ak[s * 16 + t];  // masked already (s>=t, s>t)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            dr[e] = fmaf(p1, comp(bs, e), fmaf(p2, comp(ks, e), dr[e]));
            da[e] = fmaf(p3, comp(bs, e), fmaf(p4, comp(ks, e), da[e]));
            dk[e] = fmaf(q2, comp(rt, e), fmaf(q4, comp(at, e), dk[e]));
            db[e] = fmaf(q1, comp(rt, e), fmaf(q3, comp(at, e), db[e]));
            dv[e] = fmaf(rk, comp(dys, e), fmaf(ak, comp(dus, e), dv[e]));
        }
    }
    {
        const float4 lam = ld4(Lam + t * SP + j0), lamp = ld4(Lamp + t * SP + j0);
        float xs[4] = {0.f, 0.f, 0.f, 0.f}, zs[4] = {0.f, 0.f, 0.f, 0.f};
        const bool ok = t < nt;
        const int64_t g = base + t * HN + j0;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float em = expf(-comp(lam, e));
            dr[e] *= expf(comp(lam, e));
            da[e] *= expf(comp(lamp, e));
            dk[e] *= em;
            db[e] *= em;
            if (ok) {
                xs[e] = to_f(A.r[g + e]) * dr[e] - to_f(A.b[g + e]) * db[e] -
                        to_f(A.k[g + e]) * dk[e];
                zs[e] = to_f(A.a[g + e]) * da[e];
            }
        }
        st4(xl + t * SP + j0, make_float4(xs[0], xs[1], xs[2], xs[3]));
        st4(zl + t * SP + j0, make_float4(zs[0], zs[1], zs[2], zs[3]));
        if (ok) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                A.dr[g + e] = from_f<T>(dr[e]);
                A.da[g + e] = from_f<T>(da[e]);
                A.dk[g + e] = from_f<T>(dk[e]);
                A.db[g + e] = from_f<T>(db[e]);
                A.dv[g + e] = from_f<T>(dv[e]);
            }
        }
    }
    __syncthreads();
    // dl_t = sum_{s>=t} x_s + sum_{s>t} z_s + cL; dw = dl * d(log decay)/dw
    if (tid < N) {
        const int j = tid;
        float acc = cL[j];
        for (int s = L - 1; s >= 0; --s) {
            acc += xl[s * SP + j];
            if (s < nt) {
                const int64_t g = base + s * HN + j;
                const float sg = sigmoid_f(to_f(A.w[g]));
                A.dw[g] = from_f<T>(acc * (-kDecayScale * sg * (1.f - sg)));
            }
            acc += zl[s * SP + j];
        }
    }
}

// ---- launchers ------------------------------------------------------------------------------

template <class T, int R>
cudaError_t launch_forward(const Dims& D, const FwdArgs<T>& A, cudaStream_t stream) {
    constexpr size_t smem = FwdSmem<T, R>::bytes();
    auto kernel = wkv7_chunked_forward_kernel<T, R>;
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

template <class T, int R>
cudaError_t launch_backward(const Dims& D, const BwdArgs<T>& A, float* scratch,
                            cudaStream_t stream) {
    const BwdScratch W{scratch, scratch + static_cast<size_t>(D.B) * D.T * D.H * N};
    constexpr size_t smem_a = BwdASmem<T, R>::bytes();
    auto ka = wkv7_chunked_bwd_state_kernel<T, R>;
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
    kb<<<dim3(D.chunks(), D.H, D.B), NT, smem_b, stream>>>(D, A, W);
    return cudaGetLastError();
}

}  // namespace chunked
}  // namespace goose_wkv7
