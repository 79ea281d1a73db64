// Chunked WKV-7 backward, phase A in two passes on tensor cores (N = 64): a fully parallel
// pre-pass over (chunk, head), then a state-gradient pass with the gradient as mma accumulator.
//
// Phase A (bench/kernels/wkv7/wkv7_chunked.cuh): reverse time over chunks, Gh = dL/dS at a chunk's exit (value rows
// i x key columns j), M = (I - Ab^T)^-1:
//   dU = M (Bh Gh^T + Rb^T dY),   Gh_0 = Gh o e^lam_L + dU^T At + dY^T Rt.
// Per 16 value rows this has the forward state pass's shape (wkv7_chunked_tc.cuh):
//   dU^T (16 x L) = [Gh | dY^T] (16 x 80) X^T,  X = [M Bh | M Rb^T] (L x 80),
//   Gh_0 (16 x 64) = Gh o e^lam_L + [dU^T | dY^T] (16 x 32) [At; Rt] (32 x 64).
// Pre-pass, one block per (chunk, h, b): decays, Ab = At Bs^T and Rb = Rt Bs^T on tensor cores
// (chunked_tc::detail::gram_mma, 3xTF32; the [At; Rt] record written meanwhile by the other six
// warps), the upper-triangular solve for X (right-looking: a 16-FMA dependent chain), and a
// record of X, [At; Rt] and e^lam_L in mma fragment order (13.6 KB; with kDyIn false also dY,
// 17.7 KB).
// State pass, one warp per 16 value rows, four warps per head (KH 2: eight), records and the
// chunk's dY rows streamed in by cp.async (three stages), the same permuted-k fragment trick as
// the forward (an accumulator fragment is directly the next product's A fragment); gh and du
// leave as streaming stores. 156 mma.sync per warp and chunk (3xTF32).
// Output contract as the lab's FMA chunked::wkv7_chunked_bwd_state_kernel: BwdScratch{du, gh}
// (gh = Gh at the exit of every chunk) and A.dstate_in, consumed unchanged by phase B
// (wkv7_chunked_tc_bwd_b.cuh, or the lab's FMA chunked::wkv7_chunked_bwd_grads_kernel).
// Helpers defined here (the forward's headers lack them): bwd_decays (the decays without k).
// Measured and slower, kept as BwdAConfig switches: the overlapped launch (OV), the two-
// instruction TF32 split (kFast), the state pass as a PDL launch (kPdl).
// Measured variants and why: bench/kernels/wkv7/README.md, "Two-pass chunked backward, phase A".
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

// kDyIn: the record leaves out dY (the state pass reads dY from the input itself): X, [At; Rt],
// then e^lam_L.
__host__ __device__ constexpr int bwd_record_floats(bool dy_in) {
    return dy_in ? kBDYo + N : kBwdRecord;
}
__host__ __device__ constexpr int bwd_el_offset(bool dy_in) { return dy_in ? kBDYo : kBELo; }

// The default: dY read from the input (bf16: 0.714 against 0.734 ms at B8 T4096, fewer bytes).
constexpr bool kBwdDyIn = true;

// Floats before the records: du (B, T, H, N) then gh (B, H, chunks, N, N), laid out exactly as
// the lab's chunked::backward_scratch_floats (bench/kernels/wkv7/wkv7_chunked.cuh) so that
// phase B reads them unchanged.
__host__ __device__ inline size_t backward_records_offset(const Dims& D) {
    return static_cast<size_t>(D.B) * D.T * D.H * N +
           static_cast<size_t>(D.B) * D.H * D.chunks() * N * N;
}
// du + gh + the pre-pass records (sized for the larger record).
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
    constexpr int E = 4;
    const T *rr = st, *ww = st + L * RS, *aa = st + 2 * L * RS, *bb = st + 3 * L * RS;
    float x[E], off, lamL;
    log_decay_prefix<T, RS>(ww, n, j, q, x, off, lamL);
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

// ---- pre-pass: one block of 256 threads per (chunk, h, b) (or a persistent grid) -------------

namespace detail {
// The upper-triangular solve X = (I - Ab^T)^-1 x for one column of [Bh | Rb^T], right-looking:
// once x_u is known it updates every s_t (t < u), so the dependent chain is 16 FMAs (the
// left-looking dot products made it 120); Ab rows read as float4 broadcasts.
__device__ __forceinline__ void solve_column(const float* Ab, const float* Bh, const float* Rb,
                                             int col, float* X) {
    float s[L];
#pragma unroll
    for (int t = 0; t < L; ++t) s[t] = col < N ? Bh[t * SP + col] : Rb[(col - N) * 16 + t];
#pragma unroll
    for (int u = L - 1; u >= 0; --u) {
        const float xu = s[u];
        X[u * XS + col] = xu;
#pragma unroll
        for (int q = 0; 4 * q < u; ++q) {
            const float4 a = ld4(Ab + u * 16 + 4 * q);
            const float av[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (4 * q + e < u) s[4 * q + e] = fmaf(av[e], xu, s[4 * q + e]);
        }
    }
}
}  // namespace detail

namespace detail {
// One pre-pass record: chunk c of head h, batch bb, by the block's 256 threads (shared memory
// free on entry; on return every thread's record writes are issued). The [At; Rt] and e^lam_L
// records are written by warps 2-7 while warps 0-1 compute the Gram products.
template <class T, bool kDyIn>
__device__ __forceinline__ void bwd_prepass_chunk(const Dims& D, const BwdArgs<T>& A,
                                                  float* records, unsigned char* smem, int c,
                                                  int h, int bb) {
    constexpr int NT = kPreThreads, RS = raw_stride<T>();
    static_assert(NT == 4 * N, "four lanes per key column");
    const int tid = threadIdx.x;
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
    {  // the input pointers stay kernel parameters (no live registers)
        constexpr int kPer = 16 / static_cast<int>(sizeof(T)), kPieces = N / kPer;
#pragma unroll
        for (int m = 0; m < (kDyIn ? 4 : 5); ++m) {
            const T* src = m == 0 ? A.r : m == 1 ? A.w : m == 2 ? A.a : m == 3 ? A.b : A.dy;
            for (int e = tid; e < nt * kPieces; e += NT) {
                const int t = e / kPieces, p = e % kPieces;
                goose_wkv7::detail::cp_async16(st + (m * L + t) * RS + p * kPer,
                                               src + base + (t0 + t) * HN + p * kPer);
            }
        }
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    bwd_decays<T, RS>(st, nt, tid / 4, tid % 4, At, Rt, Bs, Bh, eL);
    __syncthreads();
    float* rec =
        records + ((static_cast<int64_t>(bb) * H + h) * NC + c) * bwd_record_floats(kDyIn);
    if (tid < 64) {
        // Ab = At Bs^T (strictly lower) into G, Rb = Rt Bs^T (lower) into G + 512
        gram_mma(G, At, Rt, Bs, Bs, 2 * (tid >> 5), tid & 31);
    } else {
        const int te = tid - 64;
        // [At; Rt] B fragments: n-tile nt = keys 8 nt + g, k step: steps 2 t4 + {0, 1, 8, 9}
        for (int e = te; e < 8 * 2 * 32; e += NT - 64) {
            const int lane = e & 31, kp = (e >> 5) & 1, ntl = e >> 6;
            const int g = lane >> 2, t4 = lane & 3, j = 8 * ntl + g, t = 2 * t4;
            const float* m = kp ? Rt : At;
            st4(rec + kBARo + 4 * e, make_float4(m[t * SP + j], m[(t + 1) * SP + j],
                                                 m[(t + 8) * SP + j], m[(t + 9) * SP + j]));
        }
        if (te < N) {  // eL[t4][nt][b] = e^lam_L of key 8 nt + 2 t4 + b
            const int t4 = te >> 4, ntl = (te >> 1) & 7, b = te & 1;
            rec[bwd_el_offset(kDyIn) + te] = eL[8 * ntl + 2 * t4 + b];
        }
    }
    __syncthreads();
    // columns of [Bh | Rb^T]: X = (I - Ab^T)^-1 x
    if (tid < N + L) solve_column(G, Bh, G + 512, tid, X);
    __syncthreads();
    // X^T B fragments: n-tile nt = rows (steps) 8 nt + g of X, k step ks: columns 8 ks + 2 t4 + b
    for (int e = tid; e < 2 * 5 * 32; e += NT) {
        const int lane = e & 31, kp = (e >> 5) % 5, ntl = (e >> 5) / 5;
        const int g = lane >> 2, t4 = lane & 3, row = 8 * ntl + g, col = 16 * kp + 2 * t4;
        const float* x = X + row * XS + col;
        st4(rec + kBXo + 4 * e, make_float4(x[0], x[1], x[8], x[9]));
    }
    // dY^T A fragments: rows (values) 16 w + g (+ 8), k step kv: steps 8 kv + 2 t4 + {0, 1}
    for (int e = tid; e < (kDyIn ? 0 : 4 * 2 * 32); e += NT) {
        const int lane = e & 31, kv = (e >> 5) & 1, w = e >> 6;
        const int g = lane >> 2, t4 = lane & 3, i = 16 * w + g, t = 8 * kv + 2 * t4;
        const T* dy = st + 4 * L * RS;
        auto at = [&](int tt, int ii) { return tt < nt ? to_f(dy[tt * RS + ii]) : 0.f; };
        st4(rec + kBDYo + 4 * e,
            make_float4(at(t, i), at(t, i + 8), at(t + 1, i), at(t + 1, i + 8)));
    }
}

// The ready flags of the overlapped launch: one u32 per record, in the scratch the larger
// (dY) record size leaves free after the kDyIn records.
__host__ __device__ inline size_t backward_flags_offset(const Dims& D) {
    return backward_records_offset(D) +
           static_cast<size_t>(D.B) * D.H * D.chunks() * bwd_record_floats(true);
}
}  // namespace detail

// PB: blocks per SM the registers must allow (the shared memory allows six). kDyIn: no dY in
// the record. kPdl: lets the state pass launch early (programmatic dependent launch).
// kFlags false: one block per (chunk, h, b), grid (chunks, H, B). kFlags true: a persistent grid
// walking the records in the order the state pass reads them (last chunk of every head first),
// setting each record's ready flag (release) for the state pass running at the same time.
template <class T, int PB, bool kDyIn, bool kPdl = false, bool kFlags = false>
__global__ void __launch_bounds__(kPreThreads, PB)
    wkv7_tc_bwd_prepass_kernel(Dims D, BwdArgs<T> A, float* scratch) {
    using namespace detail;
    static_assert(!kFlags || kDyIn, "the flags sit where the dY of the larger record would");
    if constexpr (kPdl || kFlags) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
    extern __shared__ __align__(16) unsigned char smem[];
    float* records = scratch + backward_records_offset(D);
    if constexpr (!kFlags) {
        bwd_prepass_chunk<T, kDyIn>(D, A, records, smem, blockIdx.x, blockIdx.y, blockIdx.z);
    } else {
        const int BH = D.B * D.H, NC = D.chunks();
        const int64_t total = static_cast<int64_t>(BH) * NC;
        unsigned* flags = reinterpret_cast<unsigned*>(scratch + backward_flags_offset(D));
        for (int64_t rr = blockIdx.x; rr < total; rr += gridDim.x) {
            const int c = NC - 1 - static_cast<int>(rr / BH), bh = static_cast<int>(rr % BH);
            bwd_prepass_chunk<T, kDyIn>(D, A, records, smem, c, bh % D.H, bh / D.H);
            __threadfence();
            __syncthreads();  // every thread's part written and fenced; shared memory free again
            if (threadIdx.x == 0) st_release(flags + static_cast<int64_t>(bh) * NC + c, 1u);
        }
    }
}

// ---- state-gradient pass: four groups of 16 value rows per head, KH warps per group ----------
// KH = 1: a warp holds its 16 rows of Gh over all 64 keys. KH = 2: two warps per 16 rows, each
// holding 32 keys of Gh; the two partial products of dU^T (over their keys; the dY^T part in the
// second warp) are summed through shared memory (a named barrier per warp pair), then each warp
// updates its own 32 keys of Gh.
// kDyIn: dY comes from the input (its rows staged by cp.async beside the record) instead of
// the record. gh and du leave as streaming (evict-first) stores: phase B reads them much later.

namespace detail {

// kFast: x = big + small with big = x itself (the tensor core reads a TF32 operand's top 19 bits,
// i.e. truncates) and small = x - trunc(x) exactly: two instructions instead of three, error
// <= 2^-20 |x| instead of 2^-21.
template <bool kFast>
__device__ __forceinline__ void bsplit4(const float* x, uint32_t* big, uint32_t* small) {
    if constexpr (kFast) {
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            big[q] = __float_as_uint(x[q]);
            small[q] = __float_as_uint(x[q] - __uint_as_float(big[q] & 0xffffe000u));
        }
    } else {
        split4(x, big, small);
    }
}

__device__ __forceinline__ void pair_barrier(int id) {
    asm volatile("bar.sync %0, 64;\n" ::"r"(id) : "memory");
}
template <class T, int KH, bool kDyIn>
struct BwdStateSmem {
    static constexpr int kStagesRec = kStages;
    static constexpr int kRec = bwd_record_floats(kDyIn);
    static constexpr int kDy = kStagesRec * kRec;  // kDyIn: [stages][L][raw_stride<T>] of T
    static constexpr int kDyFloats =
        kDyIn ? kStagesRec * L * raw_stride<T>() * static_cast<int>(sizeof(T)) / 4 : 0;
    static constexpr int kXch = kDy + kDyFloats;  // KH 2: [4][2][32][8]
    static constexpr int kFloats = kXch + (KH == 2 ? 4 * 2 * 32 * 8 : 0);
    static constexpr size_t bytes() { return kFloats * sizeof(float); }
};

// One warp's whole state-gradient pass: value rows 16 w .., key n-tiles NK KHI .. (NK = 8 / KH).
template <class T, int KH, int KHI, bool kDyIn, bool kFast, bool kFlags>
__device__ __forceinline__ void bwd_state_warp(const Dims& D, const BwdArgs<T>& A, float* scratch,
                                               float* sm, int w) {
    using Sm = BwdStateSmem<T, KH, kDyIn>;
    constexpr int NT = 128 * KH, REC = Sm::kRec, NK = 8 / KH, NK0 = NK * KHI;
    constexpr int NS = Sm::kStagesRec, RS = raw_stride<T>(), EL = bwd_el_offset(kDyIn);
    // k pairs (16 keys, or the 16 steps of dY^T at kp 4) of the dU^T product this warp sums
    constexpr int KP0 = (NK / 2) * KHI, KP1 = KP0 + NK / 2 + (KHI == KH - 1 ? 1 : 0);
    const int h = blockIdx.x, bb = blockIdx.y, tid = threadIdx.x, lane = tid & 31;
    const int i0 = 16 * w, g = lane >> 2, t4 = lane & 3;
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;
    float* du = scratch;
    float* gh_all = scratch + static_cast<size_t>(D.B) * Tn * H * N + bh_state * NC;
    const float* recs =
        scratch + backward_records_offset(D) + (static_cast<int64_t>(bb) * H + h) * NC * REC;
    T* dys = reinterpret_cast<T*>(sm + Sm::kDy);  // kDyIn: [NS][L][RS]
    float* xch = sm + Sm::kXch;                   // [4 w][KH][lane 32][8]: partial dU^T

    // S[n] = accumulator fragment of Gh, keys 8 (NK0 + n) ..: {S[g][k], S[g][k+1], S[g+8][k],
    // S[g+8][k+1]} with k = 8 (NK0 + n) + 2 t4 (rows relative to i0)
    float S[NK][4];
#pragma unroll
    for (int n = 0; n < NK; ++n)
#pragma unroll
        for (int h2 = 0; h2 < 2; ++h2) {
            float2 v = make_float2(0.f, 0.f);
            if (A.dstate_out)
                v = *reinterpret_cast<const float2*>(A.dstate_out + bh_state +
                                                     (i0 + g + 8 * h2) * N + 8 * (NK0 + n) +
                                                     2 * t4);
            S[n][2 * h2] = v.x;
            S[n][2 * h2 + 1] = v.y;
        }

    // step s handles chunk NC - 1 - s (reverse time), in buffer s % NS
    auto issue = [&](int s) {
        if (s < NC) {
            const int c = NC - 1 - s;
            if constexpr (kFlags) {  // the overlapped pre-pass's record c is written
                const unsigned* flag =
                    reinterpret_cast<const unsigned*>(scratch + backward_flags_offset(D)) +
                    (static_cast<int64_t>(bb) * H + h) * NC + c;
                while (ld_acquire(flag) == 0) __nanosleep(100);
            }
            const float* src = recs + static_cast<int64_t>(c) * REC;
            float* dst = sm + (s % NS) * REC;
            for (int p = tid; p < REC / 4; p += NT)
                goose_wkv7::detail::cp_async16(dst + 4 * p, src + 4 * p);
            if constexpr (kDyIn) {
                constexpr int kPer = 16 / static_cast<int>(sizeof(T)), kPieces = N / kPer;
                const int t0 = c * L, nt = min(L, Tn - t0);
                T* dd = dys + (s % NS) * L * RS;
                for (int e = tid; e < nt * kPieces; e += NT) {
                    const int t = e / kPieces, p = e % kPieces;
                    goose_wkv7::detail::cp_async16(dd + t * RS + p * kPer,
                                                   A.dy + base + (t0 + t) * HN + p * kPer);
                }
            }
        }
        cp_async_commit();
    };
    for (int s = 0; s < NS - 1; ++s) issue(s);

    auto frag = [&](const float* rc, int off, uint32_t* big, uint32_t* small) {
        const float4 v = ld4(rc + off);
        const float x[4] = {v.x, v.y, v.z, v.w};
        bsplit4<kFast>(x, big, small);
    };
    auto acc_to_a = [&](const float* cfr, uint32_t* big, uint32_t* small) {
        const float x[4] = {cfr[0], cfr[2], cfr[1], cfr[3]};
        bsplit4<kFast>(x, big, small);
    };

    for (int s = 0; s < NC; ++s) {
        cp_async_wait<NS - 2>();
        __syncthreads();  // step s's record landed (all threads); step s-1's buffers free
        issue(s + NS - 1);
        const int c = NC - 1 - s;
        const float* rc = sm + (s % NS) * REC;
        const int t0 = c * L, ntv = min(L, Tn - t0);

        // the gradient at this chunk's exit, for phase B
        float* gh = gh_all + static_cast<int64_t>(c) * N * N;
#pragma unroll
        for (int n = 0; n < NK; ++n)
#pragma unroll
            for (int h2 = 0; h2 < 2; ++h2) {
                const int off = (i0 + g + 8 * h2) * N + 8 * (NK0 + n) + 2 * t4;
                __stcs(reinterpret_cast<float2*>(gh + off),
                       make_float2(S[n][2 * h2], S[n][2 * h2 + 1]));
            }

        uint32_t yb[2][4], ys[2][4];  // dY^T A fragments, k steps 0 and 1
#pragma unroll
        for (int kv = 0; kv < 2; ++kv) {
            if constexpr (kDyIn) {
                // rows (values) i0 + g (+ 8), steps 8 kv + 2 t4 (+ 1); zero past the last step
                const T* dd = dys + (s % NS) * L * RS;
                const int t = 8 * kv + 2 * t4, i = i0 + g;
                auto at = [&](int tt, int ii) { return tt < ntv ? to_f(dd[tt * RS + ii]) : 0.f; };
                const float x[4] = {at(t, i), at(t, i + 8), at(t + 1, i), at(t + 1, i + 8)};
                bsplit4<kFast>(x, yb[kv], ys[kv]);
            } else {
                frag(rc, kBDYo + ((w * 2 + kv) * 32 + lane) * 4, yb[kv], ys[kv]);
            }
        }

        // ---- dU^T = [Gh | dY^T] X^T (this warp's k pairs): n-tiles 0, 1 (steps 0-7, 8-15)
        float o[2][4], ox[2][4], oy[2][4];
#pragma unroll
        for (int n = 0; n < 2; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) o[n][q] = ox[n][q] = oy[n][q] = 0.f;
        {
            uint32_t sb[NK][4], ss[NK][4];
#pragma unroll
            for (int k = 0; k < NK; ++k) acc_to_a(S[k], sb[k], ss[k]);
#pragma unroll
            for (int kp = KP0; kp < KP1; ++kp)
#pragma unroll
                for (int n = 0; n < 2; ++n) {
                    uint32_t xb[4], xs[4];
                    frag(rc, kBXo + ((n * 5 + kp) * 32 + lane) * 4, xb, xs);
#pragma unroll
                    for (int hk = 0; hk < 2; ++hk) {
                        const int ks = 2 * kp + hk;
                        const int kl = ks < 8 ? ks - NK0 : 0, ky = ks < 8 ? 0 : ks - 8;
                        const uint32_t* ab = ks < 8 ? sb[kl] : yb[ky];
                        const uint32_t* as = ks < 8 ? ss[kl] : ys[ky];
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
        if constexpr (KH == 2) {  // dU^T = the two warps' partials (the same sum in both)
            float* mine = xch + ((w * 2 + KHI) * 32 + lane) * 8;
            const float* other = xch + ((w * 2 + (1 - KHI)) * 32 + lane) * 8;
            st4(mine, make_float4(o[0][0], o[0][1], o[0][2], o[0][3]));
            st4(mine + 4, make_float4(o[1][0], o[1][1], o[1][2], o[1][3]));
            pair_barrier(1 + w);
            const float4 p0 = ld4(other), p1 = ld4(other + 4);
            o[0][0] += p0.x, o[0][1] += p0.y, o[0][2] += p0.z, o[0][3] += p0.w;
            o[1][0] += p1.x, o[1][1] += p1.y, o[1][2] += p1.z, o[1][3] += p1.w;
        }
        // o[n][q]: row (value) i0 + g + 8 (q >> 1), column (step) 8 n + 2 t4 + (q & 1)
#pragma unroll
        for (int n = 0; n < 2; ++n) {
            if (KH == 2 && n != KHI) continue;  // each warp of a pair stores one n-tile
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int t = 8 * n + 2 * t4 + (q & 1), i = i0 + g + 8 * (q >> 1);
                if (t < ntv) __stcs(du + base + static_cast<int64_t>(t0 + t) * HN + i, o[n][q]);
            }
        }

        // ---- Gh_0 = Gh o e^lam_L + [dU^T | dY^T] [At; Rt] (this warp's keys)
        float el[2 * NK];
#pragma unroll
        for (int n = 0; n < NK; ++n) {
            const float2 e2 = *reinterpret_cast<const float2*>(rc + EL + 16 * t4 + 2 * (NK0 + n));
            el[2 * n] = e2.x, el[2 * n + 1] = e2.y;
        }
        uint32_t ub[2][4], us[2][4];
#pragma unroll
        for (int k = 0; k < 2; ++k) acc_to_a(o[k], ub[k], us[k]);
        float sx[NK][4];
#pragma unroll
        for (int n = 0; n < NK; ++n) {
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
            for (int n = 0; n < NK; ++n) {
                uint32_t mb[4], ms[4];
                frag(rc, kBARo + (((NK0 + n) * 2 + kp) * 32 + lane) * 4, mb, ms);
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
        for (int n = 0; n < NK; ++n)
#pragma unroll
            for (int q = 0; q < 4; ++q) S[n][q] += sx[n][q];
    }
#pragma unroll
    for (int n = 0; n < NK; ++n)
#pragma unroll
        for (int h2 = 0; h2 < 2; ++h2) {
            const int off = (i0 + g + 8 * h2) * N + 8 * (NK0 + n) + 2 * t4;
            *reinterpret_cast<float2*>(A.dstate_in + bh_state + off) =
                make_float2(S[n][2 * h2], S[n][2 * h2 + 1]);
        }
}

}  // namespace detail

// grid (H, B), 128 KH threads: warp = KHI * 4 + w (value rows 16 w .., key half KHI).
// kPdl: launched as the pre-pass's programmatic dependent (waits for it to end first).
// kFlags: runs beside the persistent pre-pass, waiting on each record's ready flag.
template <class T, int KH, bool kDyIn, bool kFast = false, bool kPdl = false, bool kFlags = false>
__global__ void __launch_bounds__(128 * KH, 1)
    wkv7_tc_bwd_state_kernel(Dims D, BwdArgs<T> A, float* scratch) {
    static_assert(KH == 1 || KH == 2, "KH: warps per 16 value rows");
    if constexpr (kPdl) asm volatile("griddepcontrol.wait;\n" ::: "memory");
    extern __shared__ __align__(16) float sm[];
    const int warp = threadIdx.x >> 5, w = warp & 3;
    if (KH == 1 || warp < 4)
        detail::bwd_state_warp<T, KH, 0, kDyIn, kFast, kFlags>(D, A, scratch, sm, w);
    else
        detail::bwd_state_warp<T, KH, KH - 1, kDyIn, kFast, kFlags>(D, A, scratch, sm, w);
}

// ---- launchers --------------------------------------------------------------------------------

// Variants of phase A (measured in bench/kernels/wkv7/README.md).
//   PB: pre-pass blocks per SM the registers allow; OV > 0: the overlapped launch, a persistent
//   pre-pass of OV blocks per SM with the state pass beside it (ready flags, PDL launch);
//   kFast: the state pass's two-instruction TF32 split; kPdl: the state pass as the pre-pass's
//   programmatic dependent launch (waiting for its end).
template <bool kDyIn_, int KH_, int PB_, int OV_, bool kFast_, bool kPdl_>
struct BwdAConfig {
    static constexpr bool kDyIn = kDyIn_, kFast = kFast_, kPdl = kPdl_;
    static constexpr int KH = KH_, PB = PB_, OV = OV_;
};
template <class T>
using BwdADefault = BwdAConfig<kBwdDyIn, 1, sizeof(T) == 2 ? 5 : 4, 0, false, false>;

// The pre-pass alone (records at scratch + backward_records_offset(D)); one block per record.
template <class T, class C = BwdADefault<T>>
cudaError_t launch_backward_prepass(const Dims& D, const BwdArgs<T>& A, float* scratch,
                                    cudaStream_t stream) {
    constexpr size_t smem = detail::BwdPreSmem::bytes<T>();
    auto kp = wkv7_tc_bwd_prepass_kernel<T, C::PB, C::kDyIn, C::kPdl>;
    cudaError_t e = cudaFuncSetAttribute(kp, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kp<<<dim3(D.chunks(), D.H, D.B), kPreThreads, smem, stream>>>(D, A, scratch);
    return cudaGetLastError();
}

// The state-gradient pass (reads the pre-pass's records). kFlags: beside the overlapped
// pre-pass. With C::kPdl or kFlags it is launched as a programmatic dependent of the kernel
// before it in the stream.
template <class T, class C = BwdADefault<T>, bool kFlags = false>
cudaError_t launch_backward_state_pass(const Dims& D, const BwdArgs<T>& A, float* scratch,
                                       cudaStream_t stream) {
    constexpr size_t smem = detail::BwdStateSmem<T, C::KH, C::kDyIn>::bytes();
    auto ks = wkv7_tc_bwd_state_kernel<T, C::KH, C::kDyIn, C::kFast, C::kPdl, kFlags>;
    cudaError_t e = cudaFuncSetAttribute(ks, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    if constexpr (!C::kPdl && !kFlags) {
        ks<<<dim3(D.H, D.B), 128 * C::KH, smem, stream>>>(D, A, scratch);
        return cudaGetLastError();
    } else {
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = dim3(D.H, D.B);
        cfg.blockDim = dim3(128 * C::KH);
        cfg.dynamicSmemBytes = smem;
        cfg.stream = stream;
        cudaLaunchAttribute attr[1];
        attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
        return cudaLaunchKernelEx(&cfg, ks, D, A, scratch);
    }
}

// Phase A: scratch holds backward_state_scratch_floats(D) floats; on return (stream order) its
// first chunked::backward_scratch_floats(D) floats are BwdScratch{du, gh} as phase B reads them,
// and A.dstate_in is written (A.dstate_out may be null: zeros). Every record is written before
// it is read.
template <class T, class C = BwdADefault<T>>
cudaError_t launch_backward_state(const Dims& D, const BwdArgs<T>& A, float* scratch,
                                  cudaStream_t stream) {
    if constexpr (C::OV == 0) {
        cudaError_t e = launch_backward_prepass<T, C>(D, A, scratch, stream);
        if (e != cudaSuccess) return e;
        return launch_backward_state_pass<T, C>(D, A, scratch, stream);
    } else {
        static_assert(C::kDyIn && !C::kPdl, "the overlapped launch: dY from the input, flags");
        const int64_t records = static_cast<int64_t>(D.B) * D.H * D.chunks();
        cudaError_t e = cudaMemsetAsync(scratch + detail::backward_flags_offset(D), 0,
                                        records * sizeof(unsigned), stream);
        if (e != cudaSuccess) return e;
        int dev = 0, sms = 0;
        e = cudaGetDevice(&dev);
        if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
        if (e != cudaSuccess) return e;
        constexpr size_t smem = detail::BwdPreSmem::bytes<T>();
        auto kp = wkv7_tc_bwd_prepass_kernel<T, C::PB, true, false, true>;
        e = cudaFuncSetAttribute(kp, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(smem));
        if (e != cudaSuccess) return e;
        const int64_t blocks = std::min<int64_t>(records, static_cast<int64_t>(C::OV) * sms);
        kp<<<static_cast<unsigned>(blocks), kPreThreads, smem, stream>>>(D, A, scratch);
        e = cudaGetLastError();
        if (e != cudaSuccess) return e;
        return launch_backward_state_pass<T, C, true>(D, A, scratch, stream);
    }
}

}  // namespace chunked_tc
}  // namespace goose_wkv7
