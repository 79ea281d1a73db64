// Chunked WKV-7 backward, phase A in two passes on tensor cores (N = 64): a fully parallel
// pre-pass over (chunk, head), then a state-gradient pass with the gradient as mma accumulator.
//
// Phase A (wkv7_chunked.cuh): reverse time over chunks, Gh = dL/dS at a chunk's exit (value rows
// i x key columns j), M = (I - Ab^T)^-1:
//   dU = M (Bh Gh^T + Rb^T dY),   Gh_0 = Gh o e^lam_L + dU^T At + dY^T Rt.
// Per 16 value rows this has the forward state pass's shape (wkv7_chunked_tc.cuh):
//   dU^T (16 x L) = [Gh | dY^T] (16 x 80) X^T,  X = [M Bh | M Rb^T] (L x 80),
//   Gh_0 (16 x 64) = Gh o e^lam_L + [dU^T | dY^T] (16 x 32) [At; Rt] (32 x 64).
// Pre-pass, one block per (chunk, h, b): decays, Ab = At Bs^T and Rb = Rt Bs^T on tensor cores
// (chunked_tc::detail::gram_mma, 3xTF32), the upper-triangular solve for X, and a record of X,
// [At; Rt], dY and e^lam_L in mma fragment order. State pass, one warp per 16 value rows, four
// warps per head, records streamed in by cp.async (three stages), the same permuted-k fragment
// trick as the forward (an accumulator fragment is directly the next product's A fragment).
// Output contract as chunked::wkv7_chunked_bwd_state_kernel: BwdScratch{du, gh} (gh = Gh at the
// exit of every chunk) and A.dstate_in, consumed unchanged by chunked::wkv7_chunked_bwd_grads_kernel.
// Helpers defined here (the forward's headers lack them): bwd_decays (the decays without k).
#pragma once

#include "wkv7_chunked_common.cuh"
#include "wkv7_chunked_tc.cuh"

namespace goose_wkv7 {
namespace chunked_tc {

// Backward record layout (floats), fragment order, lane-contiguous float4s:
//   X   [nt 2][kp 5][lane 32][4]: B fragment of X^T, n-tile nt (steps 8 nt + g), k steps 2 kp
//       and 2 kp + 1 (k < 64: keys of Gh, k >= 64: steps of dY^T)
//   AR  [nt 8][kp 2][lane 32][4]: B fragment of [At; Rt], n-tile nt (keys 8 nt ..), kp 0 = At,
//       1 = Rt, each float4 = steps {2 t4, 2 t4 + 1, 2 t4 + 8, 2 t4 + 9}
//   DY  [w 4][kv 2][lane 32][4]: A fragment of dY^T for value rows 16 w .., k step kv
//   eL  [t4 4][nt 8][2]: e^lam_L of key 8 nt + 2 t4 + b
constexpr int kBXo = 0, kBARo = 2 * 5 * 128, kBDYo = kBARo + 8 * 2 * 128,
              kBELo = kBDYo + 4 * 2 * 128, kBwdRecord = kBELo + N;

// Floats before the records: du (B, T, H, N) then gh (B, H, chunks, N, N), laid out exactly as
// chunked::backward_scratch_floats (wkv7_chunked.cuh) so that phase B reads them unchanged.
__host__ __device__ inline size_t backward_records_offset(const Dims& D) {
    return static_cast<size_t>(D.B) * D.T * D.H * N +
           static_cast<size_t>(D.B) * D.H * D.chunks() * N * N;
}
// du + gh + the pre-pass records.
inline size_t backward_state_scratch_floats(const Dims& D) {
    return backward_records_offset(D) +
           static_cast<size_t>(D.B) * D.H * D.chunks() * kBwdRecord;
}

namespace detail {

struct BwdPreSmem {
    static constexpr int kDec = 4 * LN;   // At Rt Bs Bh (padded rows)
    static constexpr int kG = 3 * 256;    // gram_mma's slots 0 (Ab) .. 2 (Rb)
    static constexpr int kX = L * XS;     // X = [M Bh | M Rb^T]
    static constexpr int kFloats = kDec + kG + kX + N;  // + eL
    template <class T>
    static constexpr size_t bytes() {
        return 5 * L * raw_stride<T>() * sizeof(T) + kFloats * sizeof(float);
    }
};

// The decay quantities the backward's phase A needs for key column j (as detail::decays; raw
// rows r w a b RS apart): steps 4 q .. 4 q + 3, the four lanes of a column adjacent.
template <class T, int RS>
__device__ __forceinline__ void bwd_decays(const T* st, int n, int j, int q, float* At, float* Rt,
                                           float* Bs, float* Bh, float* eL) {
    constexpr int E = 4, QN = 4;
    const T *rr = st, *ww = st + L * RS, *aa = st + 2 * L * RS, *bb = st + 3 * L * RS;
    float x[E];
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
    const float off = incl - run;
    const float lamL = __shfl_sync(0xffffffffu, incl, QN - 1, QN);
    if (q == 0) eL[j] = expf(lamL);
#pragma unroll
    for (int e = 0; e < E; ++e) {
        const int t = E * q + e, p = t * SP + j, o = t * RS + j;
        const bool ok = t < n;
        const float lam = off + x[e], lamp = off + (e > 0 ? x[e - 1] : 0.f);
        const float r = ok ? to_f(rr[o]) : 0.f;
        const float a = ok ? to_f(aa[o]) : 0.f, b = ok ? to_f(bb[o]) : 0.f;
        At[p] = a * expf(lamp);
        Rt[p] = r * expf(lam);
        Bs[p] = b * expf(-lam);
        Bh[p] = b * expf(lamL - lam);
    }
}

}  // namespace detail

// ---- pre-pass: one block of 256 threads per (chunk, h, b) ------------------------------------

template <class T>
__global__ void __launch_bounds__(kPreThreads, 4)
    wkv7_tc_bwd_prepass_kernel(Dims D, BwdArgs<T> A, float* records) {
    using namespace detail;
    constexpr int NT = kPreThreads, RS = raw_stride<T>();
    static_assert(NT == 4 * N, "four lanes per key column");
    extern __shared__ __align__(16) unsigned char smem[];
    const int c = blockIdx.x, h = blockIdx.y, bb = blockIdx.z, tid = threadIdx.x;
    T* st = reinterpret_cast<T*>(smem);  // raw r w a b dy [5][L][RS]
    float* f = reinterpret_cast<float*>(smem + 5 * L * RS * sizeof(T));
    float *At = f, *Rt = f + LN, *Bs = f + 2 * LN, *Bh = f + 3 * LN;
    float* G = f + BwdPreSmem::kDec;
    float* X = G + BwdPreSmem::kG;
    float* eL = X + BwdPreSmem::kX;

    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;
    const int t0 = c * L, nt = min(L, Tn - t0);
    const T* src[5] = {A.r + base, A.w + base, A.a + base, A.b + base, A.dy + base};
    {
        constexpr int kPer = 16 / static_cast<int>(sizeof(T)), kPieces = N / kPer;
#pragma unroll
        for (int m = 0; m < 5; ++m)
            for (int e = tid; e < nt * kPieces; e += NT) {
                const int t = e / kPieces, p = e % kPieces;
                goose_wkv7::detail::cp_async16(st + (m * L + t) * RS + p * kPer,
                                               src[m] + (t0 + t) * HN + p * kPer);
            }
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    bwd_decays<T, RS>(st, nt, tid / 4, tid % 4, At, Rt, Bs, Bh, eL);
    __syncthreads();
    // Ab = At Bs^T (strictly lower) into G, Rb = Rt Bs^T (lower) into G + 512
    if (tid < 64) gram_mma(G, At, Rt, Bs, Bs, 2 * (tid >> 5), tid & 31);
    __syncthreads();
    if (tid < N + L) {  // columns of [Bh | Rb^T]: X = (I - Ab^T)^-1 x, solved from t = 15 down
        const int col = tid;
        const float *Ab = G, *Rb = G + 512;
        float xs[L];
#pragma unroll
        for (int t = L - 1; t >= 0; --t) {
            float s = col < N ? Bh[t * SP + col] : Rb[(col - N) * 16 + t];
#pragma unroll
            for (int u = t + 1; u < L; ++u) s = fmaf(Ab[u * 16 + t], xs[u], s);
            xs[t] = s;
            X[t * XS + col] = s;
        }
    }
    __syncthreads();
    float* rec = records + ((static_cast<int64_t>(bb) * H + h) * NC + c) * kBwdRecord;
    // X^T B fragments: n-tile nt = rows (steps) 8 nt + g of X, k step ks: columns 8 ks + 2 t4 + b
    for (int e = tid; e < 2 * 5 * 32; e += NT) {
        const int lane = e & 31, kp = (e >> 5) % 5, ntl = (e >> 5) / 5;
        const int g = lane >> 2, t4 = lane & 3, row = 8 * ntl + g, col = 16 * kp + 2 * t4;
        const float* x = X + row * XS + col;
        st4(rec + kBXo + 4 * e, make_float4(x[0], x[1], x[8], x[9]));
    }
    // [At; Rt] B fragments: n-tile nt = keys 8 nt + g, k step: steps 2 t4 + {0, 1, 8, 9}
    for (int e = tid; e < 8 * 2 * 32; e += NT) {
        const int lane = e & 31, kp = (e >> 5) & 1, ntl = e >> 6;
        const int g = lane >> 2, t4 = lane & 3, j = 8 * ntl + g, t = 2 * t4;
        const float* m = kp ? Rt : At;
        st4(rec + kBARo + 4 * e, make_float4(m[t * SP + j], m[(t + 1) * SP + j],
                                             m[(t + 8) * SP + j], m[(t + 9) * SP + j]));
    }
    // dY^T A fragments: rows (values) 16 w + g (+ 8), k step kv: steps 8 kv + 2 t4 + {0, 1}
    for (int e = tid; e < 4 * 2 * 32; e += NT) {
        const int lane = e & 31, kv = (e >> 5) & 1, w = e >> 6;
        const int g = lane >> 2, t4 = lane & 3, i = 16 * w + g, t = 8 * kv + 2 * t4;
        const T* dy = st + 4 * L * RS;
        auto at = [&](int tt, int ii) { return tt < nt ? to_f(dy[tt * RS + ii]) : 0.f; };
        st4(rec + kBDYo + 4 * e,
            make_float4(at(t, i), at(t, i + 8), at(t + 1, i), at(t + 1, i + 8)));
    }
    if (tid < N) {  // eL[t4][nt][b] = e^lam_L of key 8 nt + 2 t4 + b
        const int t4 = tid >> 4, ntl = (tid >> 1) & 7, b = tid & 1;
        rec[kBELo + tid] = eL[8 * ntl + 2 * t4 + b];
    }
}

// ---- state-gradient pass: one warp per 16 value rows, four warps per head ---------------------

constexpr int kBwdStateThreads = 128;

template <class T>
__global__ void __launch_bounds__(kBwdStateThreads, 1)
    wkv7_tc_bwd_state_kernel(Dims D, BwdArgs<T> A, float* scratch) {
    using namespace detail;
    constexpr int NT = kBwdStateThreads, REC = kBwdRecord;
    extern __shared__ __align__(16) float sm[];  // [kStages][REC]
    const int h = blockIdx.x, bb = blockIdx.y, tid = threadIdx.x, lane = tid & 31;
    const int w = tid >> 5, i0 = 16 * w;
    const int g = lane >> 2, t4 = lane & 3;
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;
    float* du = scratch;
    float* gh_all = scratch + static_cast<size_t>(D.B) * Tn * H * N + bh_state * NC;
    const float* recs =
        scratch + backward_records_offset(D) + (static_cast<int64_t>(bb) * H + h) * NC * REC;

    // S[nt] = accumulator fragment of Gh, keys 8 nt ..: {S[g][k], S[g][k+1], S[g+8][k],
    // S[g+8][k+1]} with k = 8 nt + 2 t4 (rows relative to i0)
    float S[8][4];
#pragma unroll
    for (int ntl = 0; ntl < 8; ++ntl)
#pragma unroll
        for (int h2 = 0; h2 < 2; ++h2) {
            float2 v = make_float2(0.f, 0.f);
            if (A.dstate_out)
                v = *reinterpret_cast<const float2*>(A.dstate_out + bh_state +
                                                     (i0 + g + 8 * h2) * N + 8 * ntl + 2 * t4);
            S[ntl][2 * h2] = v.x;
            S[ntl][2 * h2 + 1] = v.y;
        }

    // step s handles chunk NC - 1 - s (reverse time), in buffer s % kStages
    auto issue = [&](int s) {
        if (s < NC) {
            const float* src = recs + static_cast<int64_t>(NC - 1 - s) * REC;
            float* dst = sm + (s % kStages) * REC;
            for (int p = tid; p < REC / 4; p += NT)
                goose_wkv7::detail::cp_async16(dst + 4 * p, src + 4 * p);
        }
        cp_async_commit();
    };
    for (int s = 0; s < kStages - 1; ++s) issue(s);

    auto frag = [&](const float* rc, int off, uint32_t* big, uint32_t* small) {
        const float4 v = ld4(rc + off);
        const float x[4] = {v.x, v.y, v.z, v.w};
        split4(x, big, small);
    };
    auto acc_to_a = [&](const float* cfr, uint32_t* big, uint32_t* small) {
        const float x[4] = {cfr[0], cfr[2], cfr[1], cfr[3]};
        split4(x, big, small);
    };

    for (int s = 0; s < NC; ++s) {
        cp_async_wait<kStages - 2>();
        __syncthreads();  // step s's record landed (all threads); step s-1's buffer free
        issue(s + kStages - 1);
        const int c = NC - 1 - s;
        const float* rc = sm + (s % kStages) * REC;
        const int t0 = c * L, ntv = min(L, Tn - t0);

        // the gradient at this chunk's exit, for phase B
        float* gh = gh_all + static_cast<int64_t>(c) * N * N;
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int h2 = 0; h2 < 2; ++h2) {
                const int off = (i0 + g + 8 * h2) * N + 8 * n + 2 * t4;
                *reinterpret_cast<float2*>(gh + off) =
                    make_float2(S[n][2 * h2], S[n][2 * h2 + 1]);
            }

        uint32_t yb[2][4], ys[2][4];  // dY^T A fragments, k steps 0 and 1
#pragma unroll
        for (int kv = 0; kv < 2; ++kv)
            frag(rc, kBDYo + ((w * 2 + kv) * 32 + lane) * 4, yb[kv], ys[kv]);

        // ---- dU^T = [Gh | dY^T] X^T: n-tiles 0, 1 (steps 0-7, 8-15)
        float o[2][4], ox[2][4], oy[2][4];
#pragma unroll
        for (int n = 0; n < 2; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) o[n][q] = ox[n][q] = oy[n][q] = 0.f;
        {
            uint32_t sb[8][4], ss[8][4];
#pragma unroll
            for (int k = 0; k < 8; ++k) acc_to_a(S[k], sb[k], ss[k]);
#pragma unroll
            for (int kp = 0; kp < 5; ++kp)
#pragma unroll
                for (int n = 0; n < 2; ++n) {
                    uint32_t xb[4], xs[4];
                    frag(rc, kBXo + ((n * 5 + kp) * 32 + lane) * 4, xb, xs);
#pragma unroll
                    for (int hk = 0; hk < 2; ++hk) {
                        const int ks = 2 * kp + hk;
                        const uint32_t* ab = ks < 8 ? sb[ks] : yb[ks - 8];
                        const uint32_t* as = ks < 8 ? ss[ks] : ys[ks - 8];
                        mma_tf32(ox[n], ab, xs + 2 * hk);
                        mma_tf32(oy[n], as, xb + 2 * hk);
                        mma_tf32(o[n], ab, xb + 2 * hk);
                    }
                }
        }
#pragma unroll
        for (int n = 0; n < 2; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) o[n][q] += ox[n][q] + oy[n][q];
        // o[n][q]: row (value) i0 + g + 8 (q >> 1), column (step) 8 n + 2 t4 + (q & 1)
#pragma unroll
        for (int n = 0; n < 2; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int t = 8 * n + 2 * t4 + (q & 1), i = i0 + g + 8 * (q >> 1);
                if (t < ntv) du[base + static_cast<int64_t>(t0 + t) * HN + i] = o[n][q];
            }

        // ---- Gh_0 = Gh o e^lam_L + [dU^T | dY^T] [At; Rt]
        float el[16];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const float4 e4 = ld4(rc + kBELo + 16 * t4 + 4 * q);
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
                uint32_t mb[4], ms[4];
                frag(rc, kBARo + ((n * 2 + kp) * 32 + lane) * 4, mb, ms);
#pragma unroll
                for (int hk = 0; hk < 2; ++hk) {
                    const uint32_t* ab = kp == 0 ? ub[hk] : yb[hk];
                    const uint32_t* as = kp == 0 ? us[hk] : ys[hk];
                    mma_tf32(sx[n], ab, ms + 2 * hk);
                    mma_tf32(sx[n], as, mb + 2 * hk);
                    mma_tf32(S[n], ab, mb + 2 * hk);
                }
            }
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) S[n][q] += sx[n][q];
    }
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int h2 = 0; h2 < 2; ++h2) {
            const int off = (i0 + g + 8 * h2) * N + 8 * n + 2 * t4;
            *reinterpret_cast<float2*>(A.dstate_in + bh_state + off) =
                make_float2(S[n][2 * h2], S[n][2 * h2 + 1]);
        }
}

// ---- launchers --------------------------------------------------------------------------------

// The pre-pass alone (records at scratch + backward_records_offset(D)).
template <class T>
cudaError_t launch_backward_prepass(const Dims& D, const BwdArgs<T>& A, float* scratch,
                                    cudaStream_t stream) {
    constexpr size_t smem = detail::BwdPreSmem::bytes<T>();
    auto kp = wkv7_tc_bwd_prepass_kernel<T>;
    cudaError_t e = cudaFuncSetAttribute(kp, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kp<<<dim3(D.chunks(), D.H, D.B), kPreThreads, smem, stream>>>(
        D, A, scratch + backward_records_offset(D));
    return cudaGetLastError();
}

// The state-gradient pass alone (reads the pre-pass's records).
template <class T>
cudaError_t launch_backward_state_pass(const Dims& D, const BwdArgs<T>& A, float* scratch,
                                       cudaStream_t stream) {
    constexpr size_t smem = kStages * kBwdRecord * sizeof(float);
    auto ks = wkv7_tc_bwd_state_kernel<T>;
    cudaError_t e = cudaFuncSetAttribute(ks, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    ks<<<dim3(D.H, D.B), kBwdStateThreads, smem, stream>>>(D, A, scratch);
    return cudaGetLastError();
}

// Phase A: scratch holds backward_state_scratch_floats(D) floats; on return (stream order) its
// first chunked::backward_scratch_floats(D) floats are BwdScratch{du, gh} as phase B reads them,
// and A.dstate_in is written (A.dstate_out may be null: zeros). Every record is written before
// it is read.
template <class T>
cudaError_t launch_backward_state(const Dims& D, const BwdArgs<T>& A, float* scratch,
                                  cudaStream_t stream) {
    cudaError_t e = launch_backward_prepass<T>(D, A, scratch, stream);
    if (e != cudaSuccess) return e;
    return launch_backward_state_pass<T>(D, A, scratch, stream);
}

}  // namespace chunked_tc
}  // namespace goose_wkv7
