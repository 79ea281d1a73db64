// Chunked WKV-7 backward, phase B on tensor cores (N = 64): every chunk's input gradients in
// parallel from the entering state S0, the exit state gradient Gh (phase A), U = sa and dU.
//
// Same contract as the lab's FMA chunked::wkv7_chunked_bwd_grads_kernel
// (bench/kernels/wkv7/wkv7_chunked_bwd_b.cuh; math in wkv7_chunked.cuh there and in
// bench/kernels/wkv7/README.md "Chunked form"). One block of 8 warps per
// (chunk, h, b); all products are mma.sync m16n8k8 TF32 with 3xTF32 (x = big + small, the cheap
// split of wkv7_chunked_tc.cuh), f32 accumulation:
//   warps 0, 1 (key columns 32 h ..): dr = e^Lam o (dY S0 + tril(dY U^T) Bs + tril(dY V^T) Ks),
//                                     da = e^Lam_-1 o (dU S0 + stril(dU U^T) Bs + stril(dU V^T) Ks)
//   warps 2, 3: dk = e^-Lam o (e^lam_L o (V Gh) + triu(V dY^T) Rt + striu(V dU^T) At), db with U
//   warps 4, 5: Rk = Rt Ks^T, Ak = At Ks^T (one each), then dv = Kh Gh^T + Rk^T dY + Ak^T dU
//               (value columns 32 h ..)
//   warps 6, 7: dY U^T, dY V^T / dU U^T, dU V^T, and sum_i Gh[i][j] S0[i][j]
// The decay gradient by the identity dl_t = sum_{s>=t} (r dr - b db - k dk)_s + sum_{s>t} (a da)_s
// + c_L with c_L[j] = sum_i Gh[i][j] S_L[i][j]; S_L = S0 diag(e^lam_L) + U^T Bh + V^T Kh gives
//   c_L = e^lam_L o sum_i (Gh o S0)[i, :] + sum_t (Bs o e^lam_L o (U Gh) + Ks o e^lam_L o (V Gh))
// from products the block has anyway (kReadSL: read S_L from the forward's snapshot instead).
// Fragment conventions: inside each 8-wide k step the k index is permuted (logical t4 = physical
// 2 t4, t4 + 4 = 2 t4 + 1) so that k-contiguous operands are float2 loads; the n index of the
// products against a row-major N-column operand is permuted so that a lane's B fragments of four
// n-tiles are one float4 (column 32 h + 4 n + nt for logical column n of n-tile nt) and its
// accumulators are 8 consecutive columns of a row. Shared-memory strides are chosen so that
// the big products' operand reads are free of bank conflicts. 105 KB of shared memory: two
// blocks per SM. Measured (phase B alone, H100, B8 T4096 H12 bf16): 0.78 ms against 1.93 for the
// FMA kernel (bench/kernels/wkv7/README.md, "Phase B on tensor cores").
// kPrep (launch_backward_grads_prep): the RWKV-7 prep backward as an epilogue (PrepBwdArgs): dk,
// da, db (and dv with the gate) go to the free Gh area instead of memory, and the block writes the
// prep inputs' gradients and per-chunk column sums instead; 111 registers (bf16), no spills, the
// same shared memory. Measured (H100, bf16, L2 ncu): phase B 236.7 -> 275.7 us at B16 T512 H12,
// 903 -> 1071 us at B8 T4096, against prep_bwd_v's 58.7 / 215 us (mean of the two variants).
// Helpers defined here that the shared headers lack: the fragment loaders, mma3, store8 / store4v.
#pragma once

#include "wkv7_chunked_common.cuh"
#include "wkv7_chunked_tc.cuh"

namespace goose_wkv7 {
namespace chunked_tc {

namespace bwdb {
using namespace goose_wkv7::chunked_tc::detail;

constexpr int kThreads = 256;
constexpr int SS = N + 4;  // rows of N-column operands read as row strips (S0, Gh, At, ...)
constexpr int SK = N + 8;  // rows of k-contiguous operands (dY, dU, V, U, Kh)
constexpr int SC = 24;     // rows of the 16 x 16 coefficient matrices

// Shared-memory layout (floats). XR, Z, XBK (r dr, a da, b db + k dk) reuse S0 at the end.
enum Coef { cDr1, cDr2, cDa3, cDa4, cDk2, cDk4, cDb1, cDb3, cRk, cAk, kCoefs };
struct Smem {
    static constexpr int kS0 = 0, kGh = kS0 + N * SS;
    static constexpr int kDY = kGh + N * SS, kDU = kDY + L * SK, kV = kDU + L * SK,
                         kU = kV + L * SK, kKh = kU + L * SK;
    static constexpr int kAt = kKh + L * SK, kRt = kAt + L * SS, kBs = kRt + L * SS,
                         kKs = kBs + L * SS, kE1 = kKs + L * SS, kE0 = kE1 + L * SS,
                         kEm = kE0 + L * SS;  // e^lam_t, e^lam_{t-1}, e^-lam_t
    static constexpr int kCoef = kEm + L * SS;
    static constexpr int kEL = kCoef + kCoefs * L * SC, kCL1 = kEL + N, kCL2 = kCL1 + N,
                         kPart = kCL2 + N;
    static constexpr int kFloats = kPart + 4 * N;
    static constexpr size_t bytes() { return kFloats * sizeof(float); }
};
static_assert(3 * L * SS <= N * SS, "XR, Z, XBK fit in S0");

// A fragment (rows 0..15, k step ks) of a k-contiguous operand, split into big / small.
__device__ __forceinline__ void a_frag(const float* X, int stride, int ks, int g, int t4,
                                       uint32_t* big, uint32_t* small) {
    const float2 lo = *reinterpret_cast<const float2*>(X + g * stride + 8 * ks + 2 * t4);
    const float2 hi = *reinterpret_cast<const float2*>(X + (g + 8) * stride + 8 * ks + 2 * t4);
    const float v[4] = {lo.x, hi.x, lo.y, hi.y};
    split4(v, big, small);
}
// B fragments of four n-tiles (k step ks) of a row-major N-column operand (row stride SS), the
// n index permuted: n-tile nt, logical column n is column c0 + 4 n + nt.
__device__ __forceinline__ void b_strip(const float* Y, int ks, int c0, int g, int t4,
                                        uint32_t (*big)[2], uint32_t (*small)[2]) {
    const float4 r0 = ld4(Y + (8 * ks + 2 * t4) * SS + c0 + 4 * g);
    const float4 r1 = ld4(Y + (8 * ks + 2 * t4 + 1) * SS + c0 + 4 * g);
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
        split1(comp(r0, nt), big[nt][0], small[nt][0]);
        split1(comp(r1, nt), big[nt][1], small[nt][1]);
    }
}
// B fragment (k step ks, columns n0 + g) of a k-contiguous operand stored [n][k].
__device__ __forceinline__ void b_kc(const float* Y, int stride, int ks, int n, int t4,
                                     uint32_t* big, uint32_t* small) {
    const float2 v = *reinterpret_cast<const float2*>(Y + n * stride + 8 * ks + 2 * t4);
    split1(v.x, big[0], small[0]);
    split1(v.y, big[1], small[1]);
}
// acc += A B in 3xTF32; kExactA / kExactB: that operand is exact in TF32 (small part zero).
template <bool kExactA = false, bool kExactB = false>
__device__ __forceinline__ void mma3(float* acc, const uint32_t* ab, const uint32_t* as,
                                     const uint32_t* bb, const uint32_t* bs) {
    if constexpr (!kExactB) mma_tf32(acc, ab, bs);
    if constexpr (!kExactA) mma_tf32(acc, as, bb);
    mma_tf32(acc, ab, bb);
}

template <class T>
__device__ __forceinline__ void store8(T* p, const float* x) {
    if constexpr (sizeof(T) == 4) {
        st4(reinterpret_cast<float*>(p), make_float4(x[0], x[1], x[2], x[3]));
        st4(reinterpret_cast<float*>(p) + 4, make_float4(x[4], x[5], x[6], x[7]));
    } else {
        uint4 u;
        __nv_bfloat162 q0 = __floats2bfloat162_rn(x[0], x[1]);
        __nv_bfloat162 q1 = __floats2bfloat162_rn(x[2], x[3]);
        __nv_bfloat162 q2 = __floats2bfloat162_rn(x[4], x[5]);
        __nv_bfloat162 q3 = __floats2bfloat162_rn(x[6], x[7]);
        u.x = *reinterpret_cast<unsigned*>(&q0);
        u.y = *reinterpret_cast<unsigned*>(&q1);
        u.z = *reinterpret_cast<unsigned*>(&q2);
        u.w = *reinterpret_cast<unsigned*>(&q3);
        *reinterpret_cast<uint4*>(p) = u;
    }
}
// x[e] += p[e] for 8 (add_in8) or 4 (add_in4) consecutive elements of p (16 / 8 byte aligned
// in bf16), when p is set: gradients gathered elsewhere (BwdArgs::dr_add, dk_add, dv_add).
template <class T, int M>
__device__ __forceinline__ void add_in(const T* p, float* x) {
    if (!p) return;
    if constexpr (sizeof(T) == 4) {
#pragma unroll
        for (int e = 0; e < M; e += 4) {
            const float4 v = *reinterpret_cast<const float4*>(p + e);
            x[e] += v.x, x[e + 1] += v.y, x[e + 2] += v.z, x[e + 3] += v.w;
        }
    } else {
        uint32_t w[M / 2];
        if constexpr (M == 8)
            *reinterpret_cast<uint4*>(w) = *reinterpret_cast<const uint4*>(p);
        else
            *reinterpret_cast<uint2*>(w) = *reinterpret_cast<const uint2*>(p);
#pragma unroll
        for (int e = 0; e < M / 2; ++e) {
            x[2 * e] += __uint_as_float(w[e] << 16);
            x[2 * e + 1] += __uint_as_float(w[e] & 0xffff0000u);
        }
    }
}

template <class T>
__device__ __forceinline__ void store4v(T* p, const float* x) {
    if constexpr (sizeof(T) == 4) {
        st4(reinterpret_cast<float*>(p), make_float4(x[0], x[1], x[2], x[3]));
    } else {
        uint2 u;
        __nv_bfloat162 q0 = __floats2bfloat162_rn(x[0], x[1]);
        __nv_bfloat162 q1 = __floats2bfloat162_rn(x[2], x[3]);
        u.x = *reinterpret_cast<unsigned*>(&q0);
        u.y = *reinterpret_cast<unsigned*>(&q1);
        *reinterpret_cast<uint2*>(p) = u;
    }
}

// Two 16 x 32 products against the same row-strip operand Y (N x N, row stride SS), columns
// c0 .. c0 + 31 (permuted as in b_strip): acc1 += X1 Y, acc2 += X2 Y (X: 16 x N k-contiguous,
// row stride SK). kExact1: X1 is exact in TF32 (bf16 inputs).
template <bool kExact1>
__device__ __forceinline__ void pair_big(float (*acc1)[4], float (*acc2)[4], const float* X1,
                                         const float* X2, const float* Y, int c0, int g, int t4) {
#pragma unroll 2
    for (int ks = 0; ks < N / 8; ++ks) {
        uint32_t a1b[4], a1s[4], a2b[4], a2s[4], bb[4][2], bs[4][2];
        a_frag(X1, SK, ks, g, t4, a1b, a1s);
        a_frag(X2, SK, ks, g, t4, a2b, a2s);
        b_strip(Y, ks, c0, g, t4, bb, bs);
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
            mma3<kExact1>(acc1[nt], a1b, a1s, bb[nt], bs[nt]);
            mma3(acc2[nt], a2b, a2s, bb[nt], bs[nt]);
        }
    }
}
// The in-chunk terms of a pair: acc1 += C1a Y1 + C1b Y2, acc2 += C2a Y1 + C2b Y2 (C: 16 x 16
// coefficients [t][s], row stride SC; Y: L x N row strips, columns c0 .. c0 + 31).
__device__ __forceinline__ void pair_chunk(float (*acc1)[4], float (*acc2)[4], const float* C1a,
                                           const float* C1b, const float* C2a, const float* C2b,
                                           const float* Y1, const float* Y2, int c0, int g,
                                           int t4) {
#pragma unroll
    for (int ks = 0; ks < L / 8; ++ks) {
        uint32_t ab[4][4], as[4][4], b1b[4][2], b1s[4][2], b2b[4][2], b2s[4][2];
        a_frag(C1a, SC, ks, g, t4, ab[0], as[0]);
        a_frag(C1b, SC, ks, g, t4, ab[1], as[1]);
        a_frag(C2a, SC, ks, g, t4, ab[2], as[2]);
        a_frag(C2b, SC, ks, g, t4, ab[3], as[3]);
        b_strip(Y1, ks, c0, g, t4, b1b, b1s);
        b_strip(Y2, ks, c0, g, t4, b2b, b2s);
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
            mma3(acc1[nt], ab[0], as[0], b1b[nt], b1s[nt]);
            mma3(acc1[nt], ab[1], as[1], b2b[nt], b2s[nt]);
            mma3(acc2[nt], ab[2], as[2], b1b[nt], b1s[nt]);
            mma3(acc2[nt], ab[3], as[3], b2b[nt], b2s[nt]);
        }
    }
}
// 16 x 16 products P = X Y^T (sums over N: X, Y k-contiguous [16][N]) for Y1 and Y2 at once;
// accumulator (nt, q): row g + 8 (q >> 1), column 8 nt + 2 t4 + (q & 1).
template <bool kExactX, bool kExactY2>
__device__ __forceinline__ void gram2(float (*p1)[4], float (*p2)[4], const float* X, int xs,
                                      const float* Y1, const float* Y2, int ys, int g, int t4) {
#pragma unroll 2
    for (int ks = 0; ks < N / 8; ++ks) {
        uint32_t ab[4], as[4];
        a_frag(X, xs, ks, g, t4, ab, as);
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
            uint32_t bb[2], bs[2];
            b_kc(Y1, ys, ks, 8 * nt + g, t4, bb, bs);
            mma3<kExactX>(p1[nt], ab, as, bb, bs);
            if (Y2 != nullptr) {
                b_kc(Y2, ys, ks, 8 * nt + g, t4, bb, bs);
                mma3<kExactX, kExactY2>(p2[nt], ab, as, bb, bs);
            }
        }
    }
}
// Writes a masked 16 x 16 gram (row m, column n; kept where n < m, or n <= m unless strict)
// as coefficients: Cm[m][n] (if non-null) and Ct[n][m] (if non-null).
__device__ __forceinline__ void put_coef(const float (*p)[4], float* Cm, float* Ct, bool strict,
                                         int g, int t4) {
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const int m = g + 8 * (q >> 1), n = 8 * nt + 2 * t4 + (q & 1);
            const float v = (strict ? n < m : n <= m) ? p[nt][q] : 0.f;
            if (Cm) Cm[m * SC + n] = v;
            if (Ct) Ct[n * SC + m] = v;
        }
}

template <class T>
__device__ __forceinline__ float ld_in(const T* p, int64_t i, bool ok) {
    return ok ? to_f(p[i]) : 0.f;
}

// 4 consecutive elements of p as f32 (8 / 16 byte aligned), zeros unless ok.
template <class T>
__device__ __forceinline__ void ld4v(const T* p, bool ok, float* x) {
    if (!ok) {
        x[0] = x[1] = x[2] = x[3] = 0.f;
    } else if constexpr (sizeof(T) == 4) {
        const float4 v = *reinterpret_cast<const float4*>(p);
        x[0] = v.x, x[1] = v.y, x[2] = v.z, x[3] = v.w;
    } else {
        const uint2 u = *reinterpret_cast<const uint2*>(p);
        x[0] = __uint_as_float(u.x << 16), x[1] = __uint_as_float(u.x & 0xffff0000u);
        x[2] = __uint_as_float(u.y << 16), x[3] = __uint_as_float(u.y & 0xffff0000u);
    }
}

__device__ __forceinline__ float prep_sigmoid(float x) { return 1.f / (1.f + __expf(-x)); }
constexpr float kPrepL2Eps = 1e-12f;  // kk = z / max(|z|_head, eps), as the prep kernels

}  // namespace bwdb

// The RWKV-7 prep backward (fused::rwkv7_prep, rwkv7_fused_vec.cu prep_bwd_v) as phase B's
// epilogue: the block's dk, da, db, dv, dw (f32, never written out) with the prep's raw inputs
// give the raw inputs' gradients and per-block column sums of the (C) parameters' gradients.
// The prep's outputs k, a = -kk, b = kk sigmoid(a0 + al), v are phase B's inputs; dw is the
// gradient of w_lora as well (w = w0 + w_lora) and is written out as usual. Without the gate
// (layer 0: vl, vr, vf null) v is v_raw itself and dv is stored to BwdArgs::dv (= dvr) as usual.
template <class T>
struct PrepBwdArgs {
    const T *al = nullptr, *kr = nullptr, *vr = nullptr, *vf = nullptr, *vl = nullptr;  // rows
    const T *a0 = nullptr, *ka = nullptr, *kk = nullptr, *v0 = nullptr;                 // (C)
    const T* dvf_add = nullptr;  // rows added into dvf (v_first's gradient so far), or null
    T *dkr = nullptr, *dal = nullptr, *dvr = nullptr, *dvf = nullptr, *dvl = nullptr;  // rows
    float* part = nullptr;  // (B * chunks, 5, C), row b * chunks + c: w0, a0, v0, k_k, k_a
};

// One block of 256 threads per (chunk, h, b); grid (chunks, H, B). kSkeleton (lab timing only,
// wrong results): loads, decays, stores and dw without the products. kPrep: the prep backward
// as epilogue (PrepBwdArgs; dk, da, db and, with the gate, dv stay in shared memory).
template <class T, bool kReadSL, bool kSkeleton = false, bool kPrep = false>
__global__ void __launch_bounds__(bwdb::kThreads, 2)
    wkv7_tc_bwd_grads_kernel(Dims D, BwdArgs<T> A, chunked::BwdScratch W, PrepBwdArgs<T> P) {
    using namespace bwdb;
    using Sm = bwdb::Smem;
    constexpr bool kExact = sizeof(T) == 2;  // bf16 inputs are exact in TF32
    extern __shared__ __align__(16) float sm[];
    float *S0 = sm + Sm::kS0, *Gh = sm + Sm::kGh, *DY = sm + Sm::kDY, *DU = sm + Sm::kDU,
          *V = sm + Sm::kV, *U = sm + Sm::kU, *Kh = sm + Sm::kKh, *At = sm + Sm::kAt,
          *Rt = sm + Sm::kRt, *Bs = sm + Sm::kBs, *Ks = sm + Sm::kKs, *E1 = sm + Sm::kE1,
          *E0 = sm + Sm::kE0, *Em = sm + Sm::kEm, *Cf = sm + Sm::kCoef, *eL = sm + Sm::kEL,
          *cL1 = sm + Sm::kCL1, *cL2 = sm + Sm::kCL2, *part = sm + Sm::kPart;
    auto coef = [&](int i) { return Cf + i * L * SC; };

    const int c = blockIdx.x, h = blockIdx.y, bb = blockIdx.z, tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int t0 = c * L, nt = min(L, Tn - t0);
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N + t0 * HN;
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;

    // ---- loads: the decay pass's inputs (key column jd, steps 4 qd .. 4 qd + 3) into registers,
    // issued first (their latency then overlaps the cp.async of S0, Gh, U = sa, dU behind them);
    // zero past step nt
    const int jd = tid & (N - 1), qd = tid >> 6;  // decay and dw passes: column, steps 4 qd ..
    float dwf[4];                                  // d(log decay) / dw of my 4 steps
    float wv[4], rv[4], kv[4], av[4], bv[4], dyv[4], vv[4];
    auto load_inputs = [&] {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int t = 4 * qd + e;
            const bool ok = t < nt;
            const int64_t gi = base + t * HN + jd;
            wv[e] = ld_in(A.w, gi, ok);
            rv[e] = ld_in(A.r, gi, ok);
            kv[e] = ld_in(A.k, gi, ok);
            av[e] = ld_in(A.a, gi, ok);
            bv[e] = ld_in(A.b, gi, ok);
            dyv[e] = ld_in(A.dy, gi, ok);
            vv[e] = ld_in(A.v, gi, ok);
        }
    };
    auto issue_state_loads = [&] {
        const float* s0 = c > 0 ? A.snaps + bh_state * NC + static_cast<int64_t>(c - 1) * N * N
                          : A.state_in ? A.state_in + bh_state
                                       : nullptr;
        const float* gh = W.gh + bh_state * NC + static_cast<int64_t>(c) * N * N;
#pragma unroll
        for (int m = 0; m < N * N / 4 / kThreads; ++m) {
            const int e = tid + m * kThreads, i = e >> 4, j = 4 * (e & 15);
            if (s0) goose_wkv7::detail::cp_async16(S0 + i * SS + j, s0 + i * N + j);
            else st4(S0 + i * SS + j, make_float4(0.f, 0.f, 0.f, 0.f));
            goose_wkv7::detail::cp_async16(Gh + i * SS + j, gh + i * N + j);
        }
        const int t = tid >> 4, j = 4 * (tid & 15);
        if (t < nt) {
            goose_wkv7::detail::cp_async16(U + t * SK + j, A.sa + base + t * HN + j);
            goose_wkv7::detail::cp_async16(DU + t * SK + j, W.du + base + t * HN + j);
        } else {
            st4(U + t * SK + j, make_float4(0.f, 0.f, 0.f, 0.f));
            st4(DU + t * SK + j, make_float4(0.f, 0.f, 0.f, 0.f));
        }
        cp_async_commit();
    };
    load_inputs();
    issue_state_loads();
    // ---- decays: key column j, steps 4 q .. 4 q + 3
    {
        const int j = jd, q = qd;
        float x[4], run = 0.f;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int t = 4 * q + e;
            const bool ok = t < nt;
            const float sg = sigmoid_f(wv[e]);
            run += ok ? -kDecayScale * sg : 0.f;
            x[e] = run;
            dwf[e] = -kDecayScale * sg * (1.f - sg);
            DY[t * SK + j] = dyv[e];
            V[t * SK + j] = vv[e];
        }
        part[q * N + j] = run;
        __syncthreads();
        float off = 0.f, lamL = 0.f;
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            const float v = part[p * N + j];
            off += p < q ? v : 0.f;
            lamL += v;
        }
        const float el = expf(lamL);
        if (q == 0) eL[j] = el;
        float ep = expf(off);  // e^lam_{t-1}
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int t = 4 * q + e, p = t * SS + j;
            const float lam = off + x[e];
            const float ev = expf(lam), em = expf(-lam);
            At[p] = av[e] * ep;
            Rt[p] = rv[e] * ev;
            Bs[p] = bv[e] * em;
            Ks[p] = kv[e] * em;
            Kh[t * SK + j] = kv[e] * (el * em);  // k e^(lam_L - lam_t)
            E1[p] = ev;
            E0[p] = ep;
            Em[p] = em;
            ep = ev;
        }
    }
    cp_async_wait<0>();
    __syncthreads();

    // ---- the big products and the grams
    const int hh = warp & 1, c0 = 32 * hh;
    float acc1[4][4], acc2[4][4];
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc1[a][q] = acc2[a][q] = 0.f;
    if (kSkeleton) {
    } else if (warp < 2) {
        pair_big<kExact>(acc1, acc2, DY, DU, S0, c0, g, t4);  // dY S0, dU S0
    } else if (warp < 4) {
        pair_big<kExact>(acc1, acc2, V, U, Gh, c0, g, t4);  // V Gh, U Gh
        // times e^lam_L; then c_L's part sum_t (Ks o X_k + Bs o X_b) over this warp's columns
        const float4 e0 = ld4(eL + c0 + 8 * t4), e1 = ld4(eL + c0 + 8 * t4 + 4);
        float cs[8];
#pragma unroll
        for (int c8 = 0; c8 < 8; ++c8) cs[c8] = 0.f;
#pragma unroll
        for (int n4 = 0; n4 < 4; ++n4)
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const float e = (q & 1) ? comp(e1, n4) : comp(e0, n4);
                acc1[n4][q] *= e;
                acc2[n4][q] *= e;
            }
        if constexpr (!kReadSL) {
#pragma unroll
            for (int rh = 0; rh < 2; ++rh) {
                const int t = g + 8 * rh, j0 = c0 + 8 * t4;
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const float4 k4 = ld4(Ks + t * SS + j0 + 4 * half);
                    const float4 b4 = ld4(Bs + t * SS + j0 + 4 * half);
#pragma unroll
                    for (int n4 = 0; n4 < 4; ++n4) {
                        const int q = 2 * rh + half;
                        cs[4 * half + n4] = fmaf(comp(k4, n4), acc1[n4][q],
                                                 fmaf(comp(b4, n4), acc2[n4][q],
                                                      cs[4 * half + n4]));
                    }
                }
            }
#pragma unroll
            for (int c8 = 0; c8 < 8; ++c8) {
                float v = cs[c8];
                v += __shfl_xor_sync(0xffffffffu, v, 4);
                v += __shfl_xor_sync(0xffffffffu, v, 8);
                v += __shfl_xor_sync(0xffffffffu, v, 16);
                if (g == 0) cL2[c0 + 8 * t4 + c8] = v;
            }
        }
    } else if (warp < 6) {
        {  // Rk (warp 4) or Ak (warp 5): G[m][n] = X_m . Ks_n; coefficient [t = n][s = m]
            float p[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
            gram2<false, false>(p, p, hh ? At : Rt, SS, Ks, nullptr, SS, g, t4);
            put_coef(p, nullptr, coef(hh ? cAk : cRk), hh == 1, g, t4);
        }
        // dv = Kh Gh^T: value column of n-tile nt, logical n: c0 + 2 n + (nt & 1) + 16 (nt >> 1)
#pragma unroll 2
        for (int ks = 0; ks < N / 8; ++ks) {
            uint32_t ab[4], as[4];
            a_frag(Kh, SK, ks, g, t4, ab, as);
#pragma unroll
            for (int n4 = 0; n4 < 4; ++n4) {
                uint32_t bb[2], bs[2];
                b_kc(Gh, SS, ks, c0 + 2 * g + (n4 & 1) + 16 * (n4 >> 1), t4, bb, bs);
                mma3(acc1[n4], ab, as, bb, bs);
            }
        }
    } else {
        {  // warp 6: P1 = dY U^T, P2 = dY V^T; warp 7: P3 = dU U^T, P4 = dU V^T
            float p1[2][4], p2[2][4];
#pragma unroll
            for (int a = 0; a < 2; ++a)
#pragma unroll
                for (int q = 0; q < 4; ++q) p1[a][q] = p2[a][q] = 0.f;
            if (hh == 0) {
                gram2<kExact, kExact>(p1, p2, DY, SK, U, V, SK, g, t4);
                put_coef(p1, coef(cDr1), coef(cDb1), false, g, t4);
                put_coef(p2, coef(cDr2), coef(cDk2), false, g, t4);
            } else {
                gram2<false, kExact>(p1, p2, DU, SK, U, V, SK, g, t4);
                put_coef(p1, coef(cDa3), coef(cDb3), true, g, t4);
                put_coef(p2, coef(cDa4), coef(cDk4), true, g, t4);
            }
        }
        // c_L's part e^lam_L sum_i Gh[i][j] S0[i][j] (or sum_i Gh[i][j] S_L[i][j])
        const int j = 32 * hh + lane;
        float s = 0.f;
        if constexpr (kReadSL) {
            const float* sl = A.snaps + bh_state * NC + static_cast<int64_t>(c) * N * N;
#pragma unroll 8
            for (int i = 0; i < N; ++i) s = fmaf(Gh[i * SS + j], sl[i * N + j], s);
            cL1[j] = s;
            cL2[j] = 0.f;
        } else {
#pragma unroll 8
            for (int i = 0; i < N; ++i) s = fmaf(Gh[i * SS + j], S0[i * SS + j], s);
            cL1[j] = s * eL[j];
        }
    }
    __syncthreads();  // coefficients written; S0 free (takes XR, Z, XBK)

    // ---- the in-chunk terms, scaling, stores
    float* XR = S0;
    float* Z = S0 + L * SS;
    float* XBK = S0 + 2 * L * SS;
    if (warp < 4) {
        const bool rd = warp < 2;
        if (kSkeleton) {
        } else if (rd)
            pair_chunk(acc1, acc2, coef(cDr1), coef(cDr2), coef(cDa3), coef(cDa4), Bs, Ks, c0, g,
                       t4);
        else
            pair_chunk(acc1, acc2, coef(cDk2), coef(cDk4), coef(cDb1), coef(cDb3), Rt, At, c0, g,
                       t4);
        // accumulator (n4, q): row g + 8 (q >> 1), column c0 + 8 t4 + 4 (q & 1) + n4
#pragma unroll
        for (int rh = 0; rh < 2; ++rh) {
            const int t = g + 8 * rh, j0 = c0 + 8 * t4;
            float o1[8], o2[8], x1[8], x2[8];
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int q = 2 * rh + half, p = t * SS + j0 + 4 * half;
                const float4 l1 = ld4((rd ? E1 : Em) + p), l2 = ld4((rd ? E0 : Em) + p);
                const float4 m1 = ld4((rd ? Rt : Ks) + p), m2 = ld4((rd ? At : Bs) + p);
#pragma unroll
                for (int n4 = 0; n4 < 4; ++n4) {
                    const int c8 = 4 * half + n4;
                    const float v1 = acc1[n4][q], v2 = acc2[n4][q];
                    o1[c8] = v1 * comp(l1, n4);
                    o2[c8] = v2 * comp(l2, n4);
                    x1[c8] = comp(m1, n4) * v1;  // r dr (= Rt acc) or k dk (= Ks acc)
                    x2[c8] = comp(m2, n4) * v2;  // a da (= At acc) or b db (= Bs acc)
                }
            }
            if (rd) {
                st4(XR + t * SS + j0, make_float4(x1[0], x1[1], x1[2], x1[3]));
                st4(XR + t * SS + j0 + 4, make_float4(x1[4], x1[5], x1[6], x1[7]));
                st4(Z + t * SS + j0, make_float4(x2[0], x2[1], x2[2], x2[3]));
                st4(Z + t * SS + j0 + 4, make_float4(x2[4], x2[5], x2[6], x2[7]));
            } else {
                st4(XBK + t * SS + j0, make_float4(x1[0] + x2[0], x1[1] + x2[1], x1[2] + x2[2],
                                                   x1[3] + x2[3]));
                st4(XBK + t * SS + j0 + 4, make_float4(x1[4] + x2[4], x1[5] + x2[5],
                                                       x1[6] + x2[6], x1[7] + x2[7]));
            }
            if (t < nt) {
                const int64_t gi = base + t * HN + j0;
                const T* add = rd ? A.dr_add : A.dk_add;
                add_in<T, 8>(add ? add + gi : nullptr, o1);
                if (!kPrep || rd) store8(rd ? A.dr + gi : A.dk + gi, o1);
                if (!kPrep) store8(rd ? A.da + gi : A.db + gi, o2);
            }
            if constexpr (kPrep) {  // Gh is free: dk, da, db for the epilogue (rows past nt too)
                float* g1 = Gh + t * SS + j0;                       // dk
                float* g2 = Gh + (rd ? 1 : 2) * L * SS + t * SS + j0;  // da, db
                if (!rd) {
                    st4(g1, make_float4(o1[0], o1[1], o1[2], o1[3]));
                    st4(g1 + 4, make_float4(o1[4], o1[5], o1[6], o1[7]));
                }
                st4(g2, make_float4(o2[0], o2[1], o2[2], o2[3]));
                st4(g2 + 4, make_float4(o2[4], o2[5], o2[6], o2[7]));
            }
        }
    } else if (warp < 6) {
        // dv += Rk^T dY + Ak^T dU: B [k = s][n = value] row strips with dv's column permutation
#pragma unroll
        for (int ks = 0; ks < (kSkeleton ? 0 : L / 8); ++ks) {
            uint32_t rb[4], rs[4], ab[4], as[4];
            a_frag(coef(cRk), SC, ks, g, t4, rb, rs);
            a_frag(coef(cAk), SC, ks, g, t4, ab, as);
#pragma unroll
            for (int q2 = 0; q2 < 2; ++q2) {
                const int col = c0 + 16 * q2 + 2 * g, s = 8 * ks + 2 * t4;
                const float2 y0 = *reinterpret_cast<const float2*>(DY + s * SK + col);
                const float2 y1 = *reinterpret_cast<const float2*>(DY + (s + 1) * SK + col);
                const float2 u0 = *reinterpret_cast<const float2*>(DU + s * SK + col);
                const float2 u1 = *reinterpret_cast<const float2*>(DU + (s + 1) * SK + col);
#pragma unroll
                for (int par = 0; par < 2; ++par) {
                    uint32_t yb[2], ys[2], ub[2], us[2];
                    split1(par ? y0.y : y0.x, yb[0], ys[0]);
                    split1(par ? y1.y : y1.x, yb[1], ys[1]);
                    split1(par ? u0.y : u0.x, ub[0], us[0]);
                    split1(par ? u1.y : u1.x, ub[1], us[1]);
                    mma3<false, kExact>(acc1[2 * q2 + par], rb, rs, yb, ys);
                    mma3(acc1[2 * q2 + par], ab, as, ub, us);
                }
            }
        }
        // accumulator (n4, q): row g + 8 (q >> 1), value c0 + 16 (n4 >> 1) + 4 t4 + 2 (q & 1)
        // + (n4 & 1)
#pragma unroll
        for (int rh = 0; rh < 2; ++rh) {
            const int t = g + 8 * rh;
            if (t < nt) {
#pragma unroll
                for (int q2 = 0; q2 < 2; ++q2) {
                    float o[4] = {acc1[2 * q2][2 * rh], acc1[2 * q2 + 1][2 * rh],
                                  acc1[2 * q2][2 * rh + 1], acc1[2 * q2 + 1][2 * rh + 1]};
                    const int64_t gi = base + t * HN + c0 + 16 * q2 + 4 * t4;
                    add_in<T, 4>(A.dv_add ? A.dv_add + gi : nullptr, o);
                    if (kPrep && P.vl)  // gate: dv for the epilogue
                        st4(Gh + 3 * L * SS + t * SS + c0 + 16 * q2 + 4 * t4,
                            make_float4(o[0], o[1], o[2], o[3]));
                    else
                        store4v(A.dv + gi, o);
                }
            }
        }
    }
    __syncthreads();

    // ---- the prep epilogue's inputs (row te, channels ce .. ce + 3 of the head), loaded now so
    // that their latency overlaps the dw pass
    const int te = tid >> 4, ce = 4 * (tid & 15);
    const bool oke = te < nt;
    const int64_t ge = base + te * HN + ce;
    const int64_t pc = static_cast<int64_t>(h) * N + ce;
    float e_al[4], e_kr[4], e_a0[4], e_ka[4], e_kk[4];
    if constexpr (kPrep) {
        ld4v(P.al + ge, oke, e_al);
        ld4v(P.kr + ge, oke, e_kr);
        ld4v(P.a0 + pc, true, e_a0);
        ld4v(P.ka + pc, true, e_ka);
        ld4v(P.kk + pc, true, e_kk);
    }

    // ---- dw: dl_t = sum_{s>=t} (XR - XBK)_s + sum_{s>t} Z_s + c_L, key column j, steps 4 q ..
    {
        const int j = jd, q = qd;
        float y[4], z[4], tot = 0.f;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int p = (4 * q + e) * SS + j;
            y[e] = XR[p] - XBK[p];
            z[e] = Z[p];
            tot += y[e] + z[e];
        }
        part[q * N + j] = tot;
        __syncthreads();
        float acc = cL1[j] + cL2[j];
#pragma unroll
        for (int p = 0; p < 4; ++p) acc += p > q ? part[p * N + j] : 0.f;
#pragma unroll
        for (int e = 3; e >= 0; --e) {
            const int t = 4 * q + e;
            acc += y[e];
            if (t < nt) A.dw[base + t * HN + j] = from_f<T>(acc * dwf[e]);
            if constexpr (kPrep) V[t * SS + j] = t < nt ? acc * dwf[e] : 0.f;  // V is free
            acc += z[e];
        }
    }
    if constexpr (kPrep) {
        __syncthreads();  // dw in V; dk, da, db, dv in Gh
        const float* Gk = Gh + te * SS + ce;
        float gk[4], ga[4], gb[4], gw[4];
        *reinterpret_cast<float4*>(gk) = ld4(Gk);
        *reinterpret_cast<float4*>(ga) = ld4(Gk + L * SS);
        *reinterpret_cast<float4*>(gb) = ld4(Gk + 2 * L * SS);
        *reinterpret_cast<float4*>(gw) = ld4(V + te * SS + ce);
        float acc[5][4];  // w0, a0, v0, k_k, k_a
        if (P.vl) {  // v = vr + (vf - vr) sigmoid(v0 + vl)
            float gv[4], vr[4], vf[4], vl[4], v0[4], add[4];
            *reinterpret_cast<float4*>(gv) = ld4(Gk + 3 * L * SS);
            ld4v(P.vr + ge, oke, vr);
            ld4v(P.vf + ge, oke, vf);
            ld4v(P.vl + ge, oke, vl);
            ld4v(P.v0 + pc, true, v0);
            ld4v(P.dvf_add ? P.dvf_add + ge : nullptr, oke && P.dvf_add, add);
            float dvr[4], dvf[4], dvl[4];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float s2 = prep_sigmoid(v0[e] + vl[e]);
                dvl[e] = gv[e] * (vf[e] - vr[e]) * s2 * (1.f - s2);
                dvr[e] = gv[e] * (1.f - s2);
                dvf[e] = gv[e] * s2 + add[e];
                acc[2][e] = oke ? dvl[e] : 0.f;
            }
            if (oke) {
                store4v(P.dvr + ge, dvr);
                store4v(P.dvf + ge, dvf);
                store4v(P.dvl + ge, dvl);
            }
        } else {
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[2][e] = 0.f;
        }
        // kk = z / |z|_head with z = kr k_k; k = kr (1 + (s - 1) k_a), s = sigmoid(a0 + al)
        float d[4], A2[4], B2[4], dkr[4], zz = 0.f, dz = 0.f;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float s = prep_sigmoid(e_a0[e] + e_al[e]), q = s * (1.f - s);
            const float z = e_kr[e] * e_kk[e];
            const float gke = oke ? gk[e] : 0.f, gbe = oke ? gb[e] : 0.f;
            d[e] = gbe * s - (oke ? ga[e] : 0.f);
            zz += z * z;
            dz += d[e] * z;
            B2[e] = gbe * z * q;
            dkr[e] = gke * (1.f + (s - 1.f) * e_ka[e]);
            acc[0][e] = oke ? gw[e] : 0.f;
            acc[4][e] = gke * e_kr[e] * (s - 1.f);
            A2[e] = gke * e_kr[e] * e_ka[e] * q;
        }
#pragma unroll
        for (int off = 1; off < 16; off <<= 1) {  // the head: this row's 16 lanes
            zz += __shfl_xor_sync(0xffffffffu, zz, off);
            dz += __shfl_xor_sync(0xffffffffu, dz, off);
        }
        const float norm = sqrtf(zz);
        const float iv = 1.f / fmaxf(norm, kPrepL2Eps);
        const float cf = norm >= kPrepL2Eps ? dz * iv * iv : 0.f;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float gz = (d[e] - e_kr[e] * e_kk[e] * cf) * iv;
            dkr[e] += gz * e_kk[e];
            acc[3][e] = gz * e_kr[e];
            A2[e] += B2[e] * iv;
            acc[1][e] = A2[e];
        }
        if (oke) {
            store4v(P.dkr + ge, dkr);
            store4v(P.dal + ge, A2);
        }
        // column sums over the chunk's rows: the warp's two rows, then the 8 warps in order
        float* red = At;  // At .. Em are free: 8 x 5 x N floats
#pragma unroll
        for (int k = 0; k < 5; ++k)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float v = acc[k][e] + __shfl_xor_sync(0xffffffffu, acc[k][e], 16);
                if (lane < 16) red[(warp * 5 + k) * N + ce + e] = v;
            }
        __syncthreads();
        float* out = P.part + (static_cast<int64_t>(bb) * NC + c) * 5 * HN + h * N;
        for (int i = tid; i < 5 * N; i += kThreads) {
            const int k = i / N, j = i % N;
            float v = 0.f;
#pragma unroll
            for (int w = 0; w < kThreads / 32; ++w) v += red[(w * 5 + k) * N + j];
            out[k * HN + j] = v;
        }
    }
}

// Phase B of the chunked backward (after chunked phase A has written W.du and W.gh): dr, dw,
// dk, dv, da, db. kReadSL: c_L from the forward's exit snapshot instead of the identity.
template <class T, bool kReadSL = false, bool kSkeleton = false>
cudaError_t launch_backward_grads(const Dims& D, const BwdArgs<T>& A, const chunked::BwdScratch& W,
                                  cudaStream_t stream) {
    constexpr size_t smem = bwdb::Smem::bytes();
    auto kernel = wkv7_tc_bwd_grads_kernel<T, kReadSL, kSkeleton>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kernel<<<dim3(D.chunks(), D.H, D.B), bwdb::kThreads, smem, stream>>>(D, A, W,
                                                                         PrepBwdArgs<T>{});
    return cudaGetLastError();
}

// Phase B with the prep backward as epilogue (PrepBwdArgs): writes dr, dw, P's rows and
// P.part; A.dk, A.da, A.db unused; A.dv is dvr without the gate, unused with it.
template <class T>
cudaError_t launch_backward_grads_prep(const Dims& D, const BwdArgs<T>& A,
                                       const chunked::BwdScratch& W, const PrepBwdArgs<T>& P,
                                       cudaStream_t stream) {
    constexpr size_t smem = bwdb::Smem::bytes();
    auto kernel = wkv7_tc_bwd_grads_kernel<T, false, false, true>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kernel<<<dim3(D.chunks(), D.H, D.B), bwdb::kThreads, smem, stream>>>(D, A, W, P);
    return cudaGetLastError();
}

}  // namespace chunked_tc
}  // namespace goose_wkv7
