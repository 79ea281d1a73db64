// WKV-7 backward for head size 64 with a head's value rows split over a thread-block cluster:
// raw pointers, no goose dependencies, the contract of wkv7_kernels.cuh (BwdArgs, Dims).
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
// cluster meets at a barrier (split arrive / wait, double-buffered partials) and block g adds up
// the G partials of keys [g 64 / G, (g + 1) 64 / G) through distributed shared memory, in rank
// order (deterministic), and writes dr, dw, dk, db, da. The inputs of a 16-step chunk are staged
// by cp.async one chunk ahead (the next chunk's conversion to f32 runs between the arrive and the
// wait of the chunk's last exchange); every block stages the key rows in full and only its slice
// of v, dy and sa. Key rows are stored swizzled (keys 32..63 swap their 4-float groups pairwise),
// so the row lanes' float4 loads of different key blocks hit different banks without padding.
// f32 state and f32 arithmetic throughout.
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

template <class T, int N, int R, int E>
constexpr size_t bwd_smem_bytes() {
    constexpr int G = N / R;
    return sizeof(float) * (6 * kChunk * N          // r, decay, 1 / decay, k, a, b (f32)
                            + 3 * kChunk * R        // dy, v, sa of my rows (f32)
                            + 2 * R                 // dsa of two steps
                            + 2 * kChunk * (N / G)  // dw / dw_raw of my keys, two chunks
                            + 2 * 5 * E * N) +      // partial key sums, two exchanges
           sizeof(T) * (5 * kChunk * N + 2 * kChunk * R) +  // staged r, w, k, a, b; v, dy
           sizeof(float) * kChunk * R;                       // staged sa
}

// A cluster of N / R blocks of N R / C threads per (h, b); E steps between exchanges.
template <class T, int N, int R, int C, int E>
__global__ void __launch_bounds__(N * R / C, 1) wkv7_backward_split_kernel(Dims D, BwdArgs<T> A) {
    using namespace detail;
    namespace cg = cooperative_groups;
    constexpr int G = N / R, NT = N * R / C, PC = R / C, PR = N / C, KO = N / G, L = kChunk * N;
    static_assert(N == 64, "the split backward is written for head size 64");
    static_assert(R % C == 0 && C % 4 == 0 && C <= 32 && (G == 2 || G == 4), "bad split tile");
    static_assert(NT % 32 == 0 && kChunk % E == 0 && KO % 4 == 0, "bad split tile");
    static_assert(R * sizeof(T) % 16 == 0, "row slices must be whole 16-byte pieces");
    extern __shared__ __align__(16) unsigned char smem[];
    float* f = reinterpret_cast<float*>(smem);
    float *fr = f, *fd = f + L, *finv = f + 2 * L, *fk = f + 3 * L, *fa = f + 4 * L,
          *fb = f + 5 * L;
    float *fdy = f + 6 * L, *fv = fdy + kChunk * R, *fsa = fv + kChunk * R;
    float* dsa_s = fsa + kChunk * R;     // [2][R]
    float* fdw = dsa_s + 2 * R;          // [2][16][KO]
    float* part = fdw + 2 * kChunk * KO;  // [2][5][E][N]
    T* stage = reinterpret_cast<T*>(part + 2 * 5 * E * N);  // [5][16][N] then [2][16][R]
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
    const T* src_keys[5] = {A.r + base, A.w + base, A.k + base, A.a + base, A.b + base};
    const T* src_v = A.v + base + i0;
    const T* src_dy = A.dy + base + i0;
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
#pragma unroll
        for (int m = 0; m < 5; ++m)
            stage_rows<T, N>(stage + m * L, src_keys[m], HN, t0, nt, tid, NT);
        stage_rows<T, R>(stage_vdy, src_v, HN, t0, nt, tid, NT);
        stage_rows<T, R>(stage_vdy + kChunk * R, src_dy, HN, t0, nt, tid, NT);
        stage_rows<float, R>(stage_sa, A.sa + base + i0, HN, t0, nt, tid, NT);
        cp_async_commit();
    };
    // Waits for chunk c's staged inputs, converts them to f32 (the previous chunk's steps must
    // be done: the barrier), then starts staging chunk c - 1.
    auto prepare = [&](int c) {
        const int nt = min(kChunk, Tn - c * kChunk);
        cp_async_wait<0>();
        __syncthreads();
        float* dw_mine = fdw + (c & 1) * kChunk * KO;
        for (int e = tid; e < nt * N; e += NT) {
            const int t = e / N, jj = e % N, p = t * N + kpos(jj);
            fr[p] = to_f(stage[e]);
            const float sg = sigmoid_f(to_f(stage[L + e]));
            const float d = expf(-kDecayScale * sg);
            fd[p] = d;
            finv[p] = 1.f / d;
            fk[p] = to_f(stage[2 * L + e]);
            fa[p] = to_f(stage[3 * L + e]);
            fb[p] = to_f(stage[4 * L + e]);
            if (jj / KO == g) dw_mine[t * KO + jj % KO] = -kDecayScale * d * sg * (1.f - sg);
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
    const float* part_of[G];
#pragma unroll
    for (int r = 0; r < G; ++r) part_of[r] = cluster.map_shared_rank(part, r);
    auto reduce = [&](int pb, int t_first, int ne, const float* dw_mine) {
        constexpr int KO4 = KO / 4;
        for (int it = tid; it < 5 * ne * KO4; it += NT) {
            const int qn = it / (ne * KO4), rem = it % (ne * KO4), e = rem / KO4;
            const int key = g * KO + (rem % KO4) * 4;
            const int off = ((pb * 5 + qn) * E + e) * N + key;
            float4 s = *reinterpret_cast<const float4*>(part_of[0] + off);
#pragma unroll
            for (int r = 1; r < G; ++r) {
                const float4 x = *reinterpret_cast<const float4*>(part_of[r] + off);
                s.x += x.x;
                s.y += x.y;
                s.z += x.z;
                s.w += x.w;
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
        }
    };

    issue(NC - 1);
    prepare(NC - 1);
    if (NC > 1) load_col(Snext, snaps + static_cast<int64_t>(NC - 2) * N * N);
    int exchange = 0;
    for (int c = NC - 1; c >= 0; --c) {
        const int t0 = c * kChunk, nt = min(kChunk, Tn - t0);
        if (c < NC - 1) {  // the exact state at the end of this chunk; prefetch the next one
#pragma unroll
            for (int cc = 0; cc < C; ++cc) S[cc] = Snext[cc];
            if (c > 0) load_col(Snext, snaps + static_cast<int64_t>(c - 1) * N * N);
        }
        for (int sb = (nt - 1) / E; sb >= 0; --sb) {
            const int tb = sb * E, te = min(tb + E, nt), pb = exchange++ & 1;
            float* pmine = part + pb * 5 * E * N;
            for (int tt = te - 1; tt >= tb; --tt) {
                const int o = tt * N, orow = tt * R;
                const int64_t gout = base + static_cast<int64_t>(t0 + tt) * HN;
                float u[C], z[C], w2[C];
                // Column view (key j, my rows): dr from S_t; dS += dy r^T; S_{t-1}; dd, dk, db.
                const float rj = fr[o + jp], kj = fk[o + jp], bj = fb[o + jp], ij = finv[o + jp];
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
                const float dj = fd[o + jp], aj = fa[o + jp];
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
            cluster_arrive();  // my partials of these steps are written
            if (sb == 0 && c > 0) prepare(c - 1);
            cluster_wait();  // everyone's are
            reduce(pb, t0 + tb, te - tb, fdw + (c & 1) * kChunk * KO + tb * KO);
        }
    }
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
