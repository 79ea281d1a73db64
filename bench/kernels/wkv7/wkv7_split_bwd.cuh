// WKV-7 backward for head size 64 with a head's value rows split over a thread-block cluster:
// raw pointers, no goose dependencies, the contract of wkv7_kernels.cuh (BwdArgs, Dims). Checked
// and timed in the kernel lab (this folder); measured slower than the one-block kernel at
// the training shapes (README "Split backward", run 7), so wkv7_launch.cu does not use it.
//
// In the backstepping backward (spec rwkv7.md §8.3) everything carried from step to step is
// independent per value row i: the state row S[i, :] (rebuilt backwards by inverting the update,
// S_{t-1}[i, j] = (S_t[i, j] - v_i k_j - sa_i b_j) / d_j, exact again at every 16-step snapshot)
// and the gradient row dS[i, :] (dS += dy_i r^T; dv_i = dS[i, :] . k; dsa_i = dS[i, :] . b;
// dS[i, :] <- dS[i, :] o d + dsa_i a). Only the key-indexed outputs sum over all rows:
// dr_j = sum_i S_t[i, j] dy_i, dd_j = sum_i dS[i, j] S_{t-1}[i, j] (dw = dd dw/dw_raw),
// dk_j = sum_i dS[i, j] v_i, db_j = sum_i dS[i, j] sa_i, da_j = sum_i S_{t-1}[i, j] dsa_i, and
// these never feed the recurrence. So a cluster of G = 64 / R blocks works on one (h, b); block g
// holds value rows [g R, g R + R) in two register views as the one-block kernel does: a column
// view (thread = key j x C rows: S and dS, the key sums over its rows) and a row view (thread =
// row i x C keys: dS, dv and dsa summed over the 64 / C lanes of the row; dsa reaches the column
// view through shared memory, one block barrier per step). dv and the state-in gradient are
// local. Each step's partial key sums (5 x 64 floats) go to shared memory; every E steps the
// block arrives at a cluster barrier and, one exchange later (so the barrier's latency hides
// behind E steps; three partial buffers), waits and adds up the G partials of its keys
// [g 64 / G, (g + 1) 64 / G) through distributed shared memory, in rank order (deterministic),
// writing dr, dw, dk, db, da. The inputs of a 16-step chunk are staged by cp.async one chunk
// ahead; every block stages and converts the key rows in full and only its slice of v, dy and sa.
// Key rows are stored swizzled (keys 32..63 swap their 4-float groups pairwise), so the row
// lanes' float4 loads of different key blocks hit different banks without padding; 1 / decay
// is formed per step (__frcp_rn, the same value as 1.f / d). f32 state and arithmetic throughout.
#pragma once

#include <cooperative_groups.h>

#include "wkv7_kernels.cuh"

namespace goose_wkv7::split {

namespace detail {
using namespace goose_wkv7::detail;

// Position of key j in a swizzled row of 64 floats: keys 32..63 flip bit 2.
__device__ __forceinline__ int kpos(int j) { return j ^ ((j >> 3) & 4); }

// Copies C consecutive keys k0 .. k0 + C - 1 (k0 a multiple of C, C <= 32) of a swizzled row.
template <int C>
__device__ __forceinline__ void load_keys(float* dst, const float* row, int k0) {
    const int sw = (k0 >> 3) & 4;
#pragma unroll
    for (int m = 0; m < C; m += 4) {
        const float4 v = *reinterpret_cast<const float4*>(row + ((k0 + m) ^ sw));
        dst[m] = v.x;
        dst[m + 1] = v.y;
        dst[m + 2] = v.z;
        dst[m + 3] = v.w;
    }
}

__device__ __forceinline__ void store4(float* dst, float4 v) {
    *reinterpret_cast<float4*>(dst) = v;
}
__device__ __forceinline__ void store4(__nv_bfloat16* dst, float4 v) {
    const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    uint2 u;
    u.x = *reinterpret_cast<const unsigned*>(&lo);
    u.y = *reinterpret_cast<const unsigned*>(&hi);
    *reinterpret_cast<uint2*>(dst) = u;
}

__device__ __forceinline__ void cluster_arrive() {
    asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void cluster_wait() {
    asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
}  // namespace detail

// Starts copying rows t0 .. t0 + nt - 1 of W elements (row_stride apart in src) into dst[nt][W];
// a whole chunk (nt = 16) takes a loop the compiler unrolls.
template <class T, int W, int NT>
__device__ __forceinline__ void stage_chunk(T* dst, const T* src, int64_t row_stride, int t0,
                                            int nt, int tid) {
    constexpr int kPer = 16 / static_cast<int>(sizeof(T)), kPieces = W / kPer;
    constexpr int kTotal = kChunk * kPieces;
    src += static_cast<int64_t>(t0) * row_stride;
    if (nt == kChunk) {
#pragma unroll
        for (int e0 = 0; e0 < kTotal; e0 += NT) {
            const int e = e0 + tid;
            if (kTotal % NT == 0 || e < kTotal)
                detail::cp_async16(dst + e * kPer,
                                   src + (e / kPieces) * row_stride + (e % kPieces) * kPer);
        }
    } else {
        for (int e = tid; e < nt * kPieces; e += NT)
            detail::cp_async16(dst + e * kPer,
                               src + (e / kPieces) * row_stride + (e % kPieces) * kPer);
    }
}

constexpr int kPartBufs = 3;  // partial key sums: written, being reduced, being read by others

template <class T, int N, int R, int E>
constexpr size_t bwd_smem_bytes() {
    constexpr int G = N / R;
    return sizeof(float) * (5 * kChunk * N                // r, decay, k, a, b (f32)
                            + 3 * kChunk * R              // dy, v, sa of my rows (f32)
                            + 2 * R                       // dsa of two steps
                            + 3 * kChunk * (N / G)        // dw / dw_raw of my keys, 3 chunks
                            + kPartBufs * 5 * E * N) +    // partial key sums
           sizeof(T) * (5 * kChunk * N + 2 * kChunk * R) +  // staged r, w, k, a, b; v, dy
           sizeof(float) * kChunk * R;                       // staged sa
}

// A cluster of N / R blocks of N R / C threads per (h, b); E steps between exchanges. Registers
// are capped so that four blocks (G = 4) or two (G = 2) fit on an SM.
template <class T, int N, int R, int C, int E>
__global__ void __launch_bounds__(N * R / C, N / R == 4 ? 4 : 2)
    wkv7_backward_split_kernel(Dims D, BwdArgs<T> A) {
    using namespace detail;
    namespace cg = cooperative_groups;
    constexpr int G = N / R, NT = N * R / C, PC = R / C, PR = N / C, KO = N / G, L = kChunk * N;
    static_assert(N == 64, "the split backward is written for head size 64");
    static_assert(R % C == 0 && C % 4 == 0 && C <= 32 && (G == 2 || G == 4), "bad split tile");
    static_assert(NT % 32 == 0 && kChunk % E == 0 && KO % 4 == 0, "bad split tile");
    static_assert(R * sizeof(T) % 16 == 0, "row slices must be whole 16-byte pieces");
    extern __shared__ __align__(16) unsigned char smem[];
    float* f = reinterpret_cast<float*>(smem);
    float *fr = f, *fd = f + L, *fk = f + 2 * L, *fa = f + 3 * L, *fb = f + 4 * L;
    float *fdy = f + 5 * L, *fv = fdy + kChunk * R, *fsa = fv + kChunk * R;
    float* dsa_s = fsa + kChunk * R;      // [2][R]
    float* fdw = dsa_s + 2 * R;           // [3][16][KO], by chunk % 3
    float* part = fdw + 3 * kChunk * KO;  // [kPartBufs][5][E][N]
    T* stage = reinterpret_cast<T*>(part + kPartBufs * 5 * E * N);  // [5][16][N], [2][16][R]
    T* stage_vdy = stage + 5 * L;
    float* stage_sa = reinterpret_cast<float*>(stage_vdy + 2 * kChunk * R);  // [16][R]

    const cg::cluster_group cluster = cg::this_cluster();
    const int g = static_cast<int>(cluster.block_rank());
    const int h = blockIdx.x / G, bb = blockIdx.y, i0 = g * R;
    const int tid = threadIdx.x;
    const int j = tid / PC, qc = tid % PC, jp = kpos(j);  // column view: key j, rows qc C ..
    const int li = tid / PR, qr = tid % PR;               // row view: row i0 + li, keys qr C ..
    const int Tn = D.T, H = D.H, NC = D.chunks();
    const int64_t HN = static_cast<int64_t>(H) * N;
    const int64_t base = (static_cast<int64_t>(bb) * Tn * H + h) * N;  // element (bb, 0, h, 0)
    const int64_t bh_state = (static_cast<int64_t>(bb) * H + h) * N * N;
    const float* snaps = A.snaps + bh_state * NC;

    // Column view: S[c] = S[i0 + qc C + c][j], dSc[c] = dS[i0 + qc C + c][j];
    // row view: dSr[c] = dS[i0 + li][qr C + c].
    float S[C], dSc[C], dSr[C], Snext[C];
    auto load_col = [&](float* dst, const float* mat) {
#pragma unroll
        for (int c = 0; c < C; ++c) dst[c] = mat[(i0 + qc * C + c) * N + j];
    };
    load_col(S, snaps + static_cast<int64_t>(NC - 1) * N * N);
    if (A.dstate_out) {
        load_col(dSc, A.dstate_out + bh_state);
        load_vec<C>(dSr, A.dstate_out + bh_state + (i0 + li) * N + qr * C);
    } else {
#pragma unroll
        for (int c = 0; c < C; ++c) dSc[c] = dSr[c] = 0.f;
    }

    auto issue = [&](int c) {
        const int t0 = c * kChunk, nt = min(kChunk, Tn - t0);
#pragma unroll 1
        for (int m = 0; m < 5; ++m) {
            const T* src = m == 0 ? A.r : m == 1 ? A.w : m == 2 ? A.k : m == 3 ? A.a : A.b;
            stage_chunk<T, N, NT>(stage + m * L, src + base, HN, t0, nt, tid);
        }
        stage_chunk<T, R, NT>(stage_vdy, A.v + base + i0, HN, t0, nt, tid);
        stage_chunk<T, R, NT>(stage_vdy + kChunk * R, A.dy + base + i0, HN, t0, nt, tid);
        stage_chunk<float, R, NT>(stage_sa, A.sa + base + i0, HN, t0, nt, tid);
        cp_async_commit();
    };
    auto convert = [&](int e, float* dw_mine) {  // element e = t N + jj of the staged key rows
        const int t = e / N, jj = e % N, p = t * N + kpos(jj);
        fr[p] = to_f(stage[e]);
        const float sg = sigmoid_f(to_f(stage[L + e]));
        const float d = expf(-kDecayScale * sg);
        fd[p] = d;
        fk[p] = to_f(stage[2 * L + e]);
        fa[p] = to_f(stage[3 * L + e]);
        fb[p] = to_f(stage[4 * L + e]);
        if (jj / KO == g) dw_mine[t * KO + jj % KO] = -kDecayScale * d * sg * (1.f - sg);
    };
    // Waits for chunk c's staged inputs, converts them to f32 (the previous chunk's steps must
    // be done: the barrier), then starts staging chunk c - 1.
    auto prepare = [&](int c) {
        const int nt = min(kChunk, Tn - c * kChunk);
        cp_async_wait<0>();
        __syncthreads();
        float* dw_mine = fdw + (c % 3) * kChunk * KO;
        if (nt == kChunk) {
#pragma unroll 2
            for (int e0 = 0; e0 < kChunk * N; e0 += NT) convert(e0 + tid, dw_mine);
        } else {
            for (int e = tid; e < nt * N; e += NT) convert(e, dw_mine);
        }
        for (int e = tid; e < nt * R; e += NT) {
            fv[e] = to_f(stage_vdy[e]);
            fdy[e] = to_f(stage_vdy[kChunk * R + e]);
            fsa[e] = stage_sa[e];
        }
        __syncthreads();
        if (c > 0) issue(c - 1);
    };
    // Block g's share of the key sums of ne steps from t_first: the G partials in rank order.
    auto reduce_item = [&](int it, int pb, int t_first, int ne, const float* dw_mine) {
        constexpr int KO4 = KO / 4;
        const int qn = it / (ne * KO4), rem = it % (ne * KO4), e = rem / KO4;
        const int key = g * KO + (rem % KO4) * 4;
        const int off = ((pb * 5 + qn) * E + e) * N + key;
        float4 x[G];
#pragma unroll
        for (int r = 0; r < G; ++r)
            x[r] = *reinterpret_cast<const float4*>(cluster.map_shared_rank(part + off, r));
        float4 s = x[0];
#pragma unroll
        for (int r = 1; r < G; ++r) {
            s.x += x[r].x;
            s.y += x[r].y;
            s.z += x[r].z;
            s.w += x[r].w;
        }
        if (qn == 1) {  // dw = dd * d decay / d w_raw
            const float* dw = dw_mine + e * KO + key - g * KO;
            s.x *= dw[0];
            s.y *= dw[1];
            s.z *= dw[2];
            s.w *= dw[3];
        }
        T* out = qn == 0 ? A.dr : qn == 1 ? A.dw : qn == 2 ? A.dk : qn == 3 ? A.db : A.da;
        store4(out + base + static_cast<int64_t>(t_first + e) * HN + key, s);
    };
    auto reduce = [&](int pb, int t_first, int ne, const float* dw_mine) {
        constexpr int kItems = 5 * E * (KO / 4);
        if (ne == E) {
#pragma unroll
            for (int i0r = 0; i0r < kItems; i0r += NT)
                if (kItems % NT == 0 || i0r + tid < kItems)
                    reduce_item(i0r + tid, pb, t_first, E, dw_mine);
        } else {
            for (int it = tid; it < 5 * ne * (KO / 4); it += NT)
                reduce_item(it, pb, t_first, ne, dw_mine);
        }
    };

    issue(NC - 1);
    prepare(NC - 1);
    if (NC > 1) load_col(Snext, snaps + static_cast<int64_t>(NC - 2) * N * N);
    // Exchange k: the steps write partial buffer k % 3, then (after the previous exchange's
    // wait and reduction) the block arrives at the cluster barrier; its wait comes one
    // exchange later, so the barrier's latency hides behind the next E steps.
    int k = 0, pend_pb = 0, pend_t = 0, pend_ne = 0;
    const float* pend_dw = fdw;
    for (int c = NC - 1; c >= 0; --c) {
        const int t0 = c * kChunk, nt = min(kChunk, Tn - t0);
        if (c < NC - 1) {  // the exact state at the end of this chunk; prefetch the next one
#pragma unroll
            for (int cc = 0; cc < C; ++cc) S[cc] = Snext[cc];
            if (c > 0) load_col(Snext, snaps + static_cast<int64_t>(c - 1) * N * N);
        }
        for (int sb = (nt - 1) / E; sb >= 0; --sb) {
            const int tb = sb * E, te = min(tb + E, nt), pb = k % kPartBufs;
            float* pmine = part + pb * 5 * E * N;
            for (int tt = te - 1; tt >= tb; --tt) {
                const int o = tt * N, orow = tt * R;
                const int64_t gout = base + static_cast<int64_t>(t0 + tt) * HN;
                float u[C], z[C], w2[C];
                // Column view (key j, my rows): dr from S_t; dS += dy r^T; S_{t-1}; dd, dk, db.
                const float rj = fr[o + jp], kj = fk[o + jp], bj = fb[o + jp], dj = fd[o + jp];
                const float ij = __frcp_rn(dj);  // = 1.f / dj (correctly rounded)
                load_vec<C>(u, fdy + orow + qc * C);
                load_vec<C>(z, fv + orow + qc * C);
                load_vec<C>(w2, fsa + orow + qc * C);
                float dr = dot<C>(S, u);
#pragma unroll
                for (int cc = 0; cc < C; ++cc) {
                    dSc[cc] = fmaf(u[cc], rj, dSc[cc]);
                    S[cc] = (S[cc] - z[cc] * kj - w2[cc] * bj) * ij;
                }
                float dd = dot<C>(dSc, S), dk = dot<C>(dSc, z), db = dot<C>(dSc, w2);
                // Row view (row li, keys qr C ..): dS += dy r^T; dv, dsa; dS <- dS o d + dsa a^T.
                const float dyi = fdy[orow + li];
                load_keys<C>(u, fr + o, qr * C);
                load_keys<C>(z, fk + o, qr * C);
                load_keys<C>(w2, fb + o, qr * C);
#pragma unroll
                for (int cc = 0; cc < C; ++cc) dSr[cc] = fmaf(dyi, u[cc], dSr[cc]);
                float dv = dot<C>(dSr, z), dsa = dot<C>(dSr, w2);
                dv = lane_sum<PR>(dv);
                dsa = lane_sum<PR>(dsa);
                load_keys<C>(u, fd + o, qr * C);
                load_keys<C>(z, fa + o, qr * C);
#pragma unroll
                for (int cc = 0; cc < C; ++cc) dSr[cc] = fmaf(dSr[cc], u[cc], dsa * z[cc]);
                if (qr == 0) {
                    dsa_s[(tt & 1) * R + li] = dsa;
                    A.dv[gout + i0 + li] = from_f<T>(dv);
                }
                __syncthreads();
                // Column view: da; dS <- dS o d + dsa a^T; partial key sums to shared memory.
                load_vec<C>(u, dsa_s + (tt & 1) * R + qc * C);
                const float aj = fa[o + jp];
                float da = dot<C>(S, u);
#pragma unroll
                for (int cc = 0; cc < C; ++cc) dSc[cc] = fmaf(dSc[cc], dj, u[cc] * aj);
                dr = lane_sum<PC>(dr);
                dd = lane_sum<PC>(dd);
                dk = lane_sum<PC>(dk);
                db = lane_sum<PC>(db);
                da = lane_sum<PC>(da);
                if (qc == 0) {
                    float* p = pmine + (tt - tb) * N + j;
                    p[0] = dr;
                    p[E * N] = dd;
                    p[2 * E * N] = dk;
                    p[3 * E * N] = db;
                    p[4 * E * N] = da;
                }
            }
            if (sb == 0 && c > 0) prepare(c - 1);
            if (k > 0) {
                cluster_wait();  // everyone's partials of exchange k - 1 are written
                reduce(pend_pb, pend_t, pend_ne, pend_dw);
            }
            cluster_arrive();  // mine of exchange k are (and I am done reading k - 1's)
            pend_pb = pb;
            pend_t = t0 + tb;
            pend_ne = te - tb;
            pend_dw = fdw + (c % 3) * kChunk * KO + tb * KO;
            ++k;
        }
    }
    cluster_wait();
    reduce(pend_pb, pend_t, pend_ne, pend_dw);
#pragma unroll
    for (int cc = 0; cc < C; cc += 4)
        *reinterpret_cast<float4*>(A.dstate_in + bh_state + (i0 + li) * N + qr * C + cc) =
            make_float4(dSr[cc], dSr[cc + 1], dSr[cc + 2], dSr[cc + 3]);
    cluster_arrive();  // no block leaves while another may still read its partials
    cluster_wait();
}

template <class T, int N, int R, int C, int E>
cudaLaunchConfig_t launch_config(const Dims& D, cudaStream_t stream,
                                 cudaLaunchAttribute* attr) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(D.H * (N / R), D.B);
    cfg.blockDim = dim3(N * R / C);
    cfg.dynamicSmemBytes = bwd_smem_bytes<T, N, R, E>();
    cfg.stream = stream;
    attr->id = cudaLaunchAttributeClusterDimension;
    attr->val.clusterDim.x = N / R;
    attr->val.clusterDim.y = 1;
    attr->val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    return cfg;
}

// How many clusters of this variant fit on the device at once (for the lab).
template <class T, int N, int R, int C, int E>
cudaError_t max_active_clusters(const Dims& D, int* clusters) {
    auto kernel = wkv7_backward_split_kernel<T, N, R, C, E>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(bwd_smem_bytes<T, N, R, E>()));
    if (e != cudaSuccess) return e;
    cudaLaunchAttribute attr;
    const cudaLaunchConfig_t cfg = launch_config<T, N, R, C, E>(D, 0, &attr);
    return cudaOccupancyMaxActiveClusters(clusters, kernel, &cfg);
}

}  // namespace goose_wkv7::split

namespace goose_wkv7 {

// The split backward: N / R blocks (a cluster) of N R / C threads per (h, b), R value rows per
// block, C rows (column view) / keys (row view) per thread, key sums exchanged every E steps.
template <class T, int N, int R, int C, int E>
cudaError_t launch_backward_split(const Dims& D, const BwdArgs<T>& A, cudaStream_t stream) {
    auto kernel = split::wkv7_backward_split_kernel<T, N, R, C, E>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(split::bwd_smem_bytes<T, N, R, E>()));
    if (e != cudaSuccess) return e;
    cudaLaunchAttribute attr;
    const cudaLaunchConfig_t cfg = split::launch_config<T, N, R, C, E>(D, stream, &attr);
    return cudaLaunchKernelEx(&cfg, kernel, D, A);
}

}  // namespace goose_wkv7
