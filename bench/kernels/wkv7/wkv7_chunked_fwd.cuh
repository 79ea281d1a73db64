// Chunked WKV-7 forward kernel (N = 64; the math in wkv7_chunked.cuh).
#pragma once

#include "wkv7_chunked_common.cuh"

namespace goose_wkv7 {
namespace chunked {

// ---- forward --------------------------------------------------------------------------------

template <class T, int R>
struct FwdSmem {
    static constexpr int kStage = 2 * 6 * L * N;  // raw T elements
    // f32 arrays, three buffers (chunk % 3) each
    static constexpr int kDec = 6 * LN;                        // At Rt Bs Ks Bh Kh
    static constexpr int kG = 4 * 256;                         // Ab Ak Rb Rk
    static constexpr int kX = 32 * XP;                         // [A' TAk; R' Rk']
    static constexpr int kV = L * R;                           // V[t][i] of my rows
    static constexpr int kPer = kDec + kG + kX + kV + N;       // + eL
    static constexpr int kFloats = 3 * kPer + R * SP + L * R;  // + state + U
    static constexpr size_t bytes() { return kStage * sizeof(T) + kFloats * sizeof(float); }
};

template <class T, int R, int NT, bool kMma>
__global__ void __launch_bounds__(NT, 1) wkv7_chunked_forward_kernel(Dims D, FwdArgs<T> A) {
    using namespace detail;
    using Sm = FwdSmem<T, R>;
    static_assert((NT == 256 && (R == 64 || R == 32)) || (NT == 512 && R == 64), "bad R, NT");
    static_assert(!kMma || (NT == 256 && R == 64), "the tensor-core path is for R 64, NT 256");
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
            if constexpr (kMma) {
                const int warp = tid >> 5, mt = warp & 1, n0 = 16 * (warp >> 1);
                const int g = lane >> 2, t4 = lane & 3;
                float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
                warp_mma<(N + L) / 8, 2>(
                    acc, n0, lane, [&](int m, int k) { return X[(16 * mt + m) * XP + k]; },
                    [&](int k, int n) { return k < N ? Ss[n * SP + k] : V[(k - N) * R + n]; });
#pragma unroll
                for (int ntl = 0; ntl < 2; ++ntl)
#pragma unroll
                    for (int h2 = 0; h2 < 2; ++h2) {
                        const int t = g + 8 * h2, i = n0 + 8 * ntl + 2 * t4;
                        const float v0 = acc[ntl][2 * h2], v1 = acc[ntl][2 * h2 + 1];
                        const int64_t off = base + static_cast<int64_t>(t0 + t) * HN + i0 + i;
                        if (mt == 0) {
                            *reinterpret_cast<float2*>(Us + t * R + i) = make_float2(v0, v1);
                            if (t < nt)
                                *reinterpret_cast<float2*>(A.sa + off) = make_float2(v0, v1);
                        } else if (t < nt) {
                            store2(A.y + off, v0, v1);
                        }
                    }
            } else {
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
        }
        if (c + 2 < NC) {
            const int cn = c + 2, t0 = cn * L, nt = min(L, Tn - t0);
            const T* st = stage + (cn & 1) * 6 * L * N;
            const DecayOut o{At(cn), Rt(cn), Bs(cn), Ks(cn), Bh(cn), Kh(cn), eL(cn)};
            constexpr int QN = NT / N;
            decay_column<T, QN>(st, st + L * N, st + 2 * L * N, st + 4 * L * N, st + 5 * L * N, nt,
                                tid / QN, tid % QN, o);
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
            if constexpr (kMma) {
                const int warp = tid >> 5, m0 = 16 * (warp & 3), n0 = 32 * (warp >> 2);
                const int g = lane >> 2, t4 = lane & 3;
                const float* bh = Bh(c);
                const float* kh = Kh(c);
                const float* V = Vs(c);
                const float* el = eL(c);
                float acc[4][4];
#pragma unroll
                for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        const int i = m0 + g + 8 * (q >> 1), j = n0 + 8 * nt + 2 * t4 + (q & 1);
                        acc[nt][q] = Ss[i * SP + j] * el[j];
                    }
                warp_mma<L / 8, 4>(
                    acc, n0, lane, [&](int m, int k) { return Us[k * R + m0 + m]; },
                    [&](int k, int n) { return bh[k * SP + n]; });
                warp_mma<L / 8, 4>(
                    acc, n0, lane, [&](int m, int k) { return V[k * R + m0 + m]; },
                    [&](int k, int n) { return kh[k * SP + n]; });
                float* snap = A.snaps + bh_state * NC + static_cast<int64_t>(c) * N * N;
#pragma unroll
                for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                    for (int h2 = 0; h2 < 2; ++h2) {
                        const int i = m0 + g + 8 * h2, j = n0 + 8 * nt + 2 * t4;
                        const float2 v = make_float2(acc[nt][2 * h2], acc[nt][2 * h2 + 1]);
                        *reinterpret_cast<float2*>(Ss + i * SP + j) = v;
                        *reinterpret_cast<float2*>(snap + (i0 + i) * N + j) = v;
                        if (c == NC - 1)
                            *reinterpret_cast<float2*>(A.state_out + bh_state + (i0 + i) * N + j) =
                                v;
                    }
            } else {
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

}  // namespace chunked
}  // namespace goose_wkv7
