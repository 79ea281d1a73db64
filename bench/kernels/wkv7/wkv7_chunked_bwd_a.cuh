// Chunked WKV-7 backward, phase A: the state gradient at every chunk exit and dL/du (N = 64).
#pragma once

#include "wkv7_chunked_common.cuh"

namespace goose_wkv7 {
namespace chunked {

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

template <class T, int R, int NT, bool kMma>
__global__ void __launch_bounds__(NT, 1)
    wkv7_chunked_bwd_state_kernel(Dims D, BwdArgs<T> A, BwdScratch W) {
    using namespace detail;
    using Sm = BwdASmem<T, R>;
    static_assert((NT == 256 && (R == 64 || R == 32)) || (NT == 512 && R == 64), "bad R, NT");
    static_assert(!kMma || (NT == 256 && R == 64), "the tensor-core path is for R 64, NT 256");
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
            if constexpr (kMma) {
                const int warp = tid >> 5, n0 = 8 * warp, g = lane >> 2, t4 = lane & 3;
                float acc[1][4] = {{0.f, 0.f, 0.f, 0.f}};
                warp_mma<(N + L) / 8, 1>(
                    acc, n0, lane, [&](int m, int k) { return X[m * XP + k]; },
                    [&](int k, int n) { return k < N ? Gs[n * SP + k] : DY[(k - N) * R + n]; });
#pragma unroll
                for (int h2 = 0; h2 < 2; ++h2) {
                    const int t = g + 8 * h2, i = n0 + 2 * t4;
                    const float2 v = make_float2(acc[0][2 * h2], acc[0][2 * h2 + 1]);
                    *reinterpret_cast<float2*>(DUs + t * R + i) = v;
                    if (t < nt)
                        *reinterpret_cast<float2*>(W.du + base + static_cast<int64_t>(t0 + t) * HN +
                                                   i0 + i) = v;
                }
            } else {
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
                        if (t < nt)
                            W.du[base + static_cast<int64_t>(t0 + t) * HN + i0 + i] = acc[a][m];
                    }
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
            if constexpr (kMma) {
                const int warp = tid >> 5, m0 = 16 * (warp & 3), n0 = 32 * (warp >> 2);
                const int g = lane >> 2, t4 = lane & 3;
                const float* at = At(c);
                const float* rt = Rt(c);
                const float* DY = DYs(c);
                const float* el = eL(c);
                float acc[4][4];
#pragma unroll
                for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        const int i = m0 + g + 8 * (q >> 1), j = n0 + 8 * nt + 2 * t4 + (q & 1);
                        acc[nt][q] = Gs[i * SP + j] * el[j];
                    }
                warp_mma<L / 8, 4>(
                    acc, n0, lane, [&](int m, int k) { return DUs[k * R + m0 + m]; },
                    [&](int k, int n) { return at[k * SP + n]; });
                warp_mma<L / 8, 4>(
                    acc, n0, lane, [&](int m, int k) { return DY[k * R + m0 + m]; },
                    [&](int k, int n) { return rt[k * SP + n]; });
#pragma unroll
                for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                    for (int h2 = 0; h2 < 2; ++h2) {
                        const int i = m0 + g + 8 * h2, j = n0 + 8 * nt + 2 * t4;
                        const float2 v = make_float2(acc[nt][2 * h2], acc[nt][2 * h2 + 1]);
                        *reinterpret_cast<float2*>(Gs + i * SP + j) = v;
                        if (c == 0)
                            *reinterpret_cast<float2*>(A.dstate_in + bh_state + (i0 + i) * N + j) =
                                v;
                    }
            } else {
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
        }
        if (c - 2 >= 0 && c - 2 < NC) {
            constexpr int O = 512 / NT, PM = NT / 2;  // outputs per thread, threads per matrix
            const int cn = c - 2, m = tid / PM, t = (tid % PM) / (16 / O), sb = tid % (16 / O);
            gram<O>(G(cn) + m * 256, m == 0 ? At(cn) : Rt(cn), Bs(cn), t, sb, m == 0);
        }
    }
}

}  // namespace chunked
}  // namespace goose_wkv7
