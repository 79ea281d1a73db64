// CUDA kernels of the fused RWKV-7 glue. Each block owns a chunk of kRows rows; each thread owns
// up to CPT channels of every row (chan<WH, CPT>(j)), so per-channel parameter gradients stay in
// registers across the chunk's rows and are written once per chunk. Per-head sums: a warp
// reduction when a warp owns a head (head size 32/64/128), else through shared memory.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "core/cuda/cuda_check.h"
#include "ops/cuda/cuda_util.cuh"
#include "rwkv7_fused_args.cuh"
#include "rwkv7_fused_kernels.h"

namespace goose::models::fused::cuda_kernels {

namespace {

constexpr float kL2Eps = 1e-12f;

using cuda_util::load_f;
using cuda_util::store_f;
__device__ __forceinline__ float sigm(float x) { return 1.f / (1.f + __expf(-x)); }

// Channels per thread: 1 up to C = 1024 (many warps per multiprocessor hide the latency of
// the per-row loops), 2 up to 2048, 4 up to 4096.
int cpt_for(int64_t C) { return C <= 1024 ? 1 : C <= 2048 ? 2 : 4; }
int threads_for(int64_t C) {
    const int cpt = cpt_for(C);
    const int64_t t = (C + cpt - 1) / cpt;
    return static_cast<int>(std::min<int64_t>(1024, std::max<int64_t>(32, (t + 31) / 32 * 32)));
}

// The channel of a thread's j-th slot. Block layout (WH = false): c = tid + j * blockDim, the
// channels of a head spread over several warps, per-head sums through shared memory. Warp-per-head
// layout (WH = true, head size N = 32 CPT, blockDim = 32 H): warp h owns head h, lane l its
// channels h N + 32 j + l (coalesced), and a head sum is a warp reduction: no block barrier.
template <bool WH, int CPT>
__device__ __forceinline__ int chan(int j) {
    if constexpr (WH)
        return (threadIdx.x >> 5) * (CPT * 32) + j * 32 + (threadIdx.x & 31);
    else
        return threadIdx.x + j * blockDim.x;
}

// K per-head sums of vals (K x CPT per thread) over heads of N channels: out[k][j] is the sum of
// vals[k] over the head of this thread's slot j. Every thread of the block calls it. Block
// layout: smem holds K*C floats and hs K*H floats.
template <int K, int CPT, bool WH>
__device__ void head_sums(const float (&vals)[K][CPT], float* smem, float* hs, int C, int N,
                          float (&out)[K][CPT]) {
    if constexpr (WH) {
#pragma unroll
        for (int k = 0; k < K; ++k) {
            float s = 0.f;
#pragma unroll
            for (int j = 0; j < CPT; ++j) s += vals[k][j];
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
#pragma unroll
            for (int j = 0; j < CPT; ++j) out[k][j] = s;
        }
    } else {
        const int H = C / N;
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int c = chan<WH, CPT>(j);
            if (c < C)
#pragma unroll
                for (int k = 0; k < K; ++k) smem[k * C + c] = vals[k][j];
        }
        __syncthreads();
        const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
        for (int h = warp; h < H; h += warps) {
#pragma unroll
            for (int k = 0; k < K; ++k) {
                float s = 0.f;
                for (int n = lane; n < N; n += 32) s += smem[k * C + h * N + n];
#pragma unroll
                for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
                if (lane == 0) hs[k * H + h] = s;
            }
        }
        __syncthreads();
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int c = chan<WH, CPT>(j);
#pragma unroll
            for (int k = 0; k < K; ++k) out[k][j] = c < C ? hs[k * H + c / N] : 0.f;
        }
    }
}

// ---- token_mix -------------------------------------------------------------------------------

template <class T>
struct MixArgs : MixView<T> {
    int64_t B, Tn, C;
};

template <class T, int CPT>
__global__ void __launch_bounds__(1024) token_mix_fwd_kernel(MixArgs<T> a) {
    const int64_t rows = a.B * a.Tn;
    const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kRows;
    for (int64_t r = r0; r < min(rows, r0 + kRows); ++r) {
        const int64_t b = r / a.Tn, t = r % a.Tn;
        for (int64_t c = threadIdx.x; c < a.C; c += blockDim.x) {
            const float xv = load_f(a.x + r * a.C + c);
            const float xp = t > 0 ? load_f(a.x + (r - 1) * a.C + c)
                                   : (a.prev ? load_f(a.prev + b * a.C + c) : 0.f);
            for (int m = 0; m < a.M; ++m)
                store_f(a.out[m] + r * a.C + c, xv + (xp - xv) * load_f(a.mu[m] + c));
        }
    }
}

// Mix m's gradient at row r and channel c: the sum of its gradients in a.g (0 when none).
template <class T>
__device__ __forceinline__ float mix_grad(const MixArgs<T>& a, int m, int64_t i) {
    float s = 0.f;
    for (int k = a.g_first[m]; k < a.g_first[m + 1]; ++k) s += load_f(a.g[k] + i);
    return s;
}

// dx[t] = Σ_m g[m][t] - dxx[t] + dxx[t+1], dxx[t] = Σ_m g[m][t] mu[m]; dprev = dxx[0];
// dmu[m] = Σ g[m] (xp - x); g[m] the sum of mix m's gradients.
template <class T, int CPT>
__global__ void __launch_bounds__(1024) token_mix_bwd_kernel(MixArgs<T> a) {
    const int64_t rows = a.B * a.Tn;
    const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kRows;
    float acc[kMaxMix][CPT];
#pragma unroll
    for (int m = 0; m < kMaxMix; ++m)
#pragma unroll
        for (int j = 0; j < CPT; ++j) acc[m][j] = 0.f;
    for (int64_t r = r0; r < min(rows, r0 + kRows); ++r) {
        const int64_t b = r / a.Tn, t = r % a.Tn;
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int64_t c = threadIdx.x + j * blockDim.x;
            if (c >= a.C) continue;
            const float xv = load_f(a.x + r * a.C + c);
            const float xp = t > 0 ? load_f(a.x + (r - 1) * a.C + c)
                                   : (a.prev ? load_f(a.prev + b * a.C + c) : 0.f);
            float gs = 0.f, dxx = 0.f, dxx_next = 0.f;
#pragma unroll
            for (int m = 0; m < kMaxMix; ++m) {
                if (m >= a.M) break;
                if (a.g_first[m] == a.g_first[m + 1]) continue;
                const float gm = mix_grad(a, m, r * a.C + c);
                const float mu = load_f(a.mu[m] + c);
                gs += gm;
                dxx += gm * mu;
                if (t + 1 < a.Tn) dxx_next += mix_grad(a, m, (r + 1) * a.C + c) * mu;
                acc[m][j] += gm * (xp - xv);
            }
            if (a.dx) store_f(a.dx + r * a.C + c, gs - dxx + dxx_next);
            if (t == 0 && a.dprev) store_f(a.dprev + b * a.C + c, dxx);
        }
    }
    if (!a.part) return;
#pragma unroll
    for (int m = 0; m < kMaxMix; ++m) {
        if (m >= a.M) break;
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int64_t c = threadIdx.x + j * blockDim.x;
            if (c < a.C) a.part[(static_cast<int64_t>(blockIdx.x) * a.M + m) * a.C + c] = acc[m][j];
        }
    }
}

// ---- rwkv7_prep -------------------------------------------------------------------------------

template <class T>
struct PrepArgs : PrepView<T> {
    int64_t rows;
    int C, N;
};

template <class T, int CPT, bool WH>
__global__ void __launch_bounds__(1024) prep_fwd_kernel(PrepArgs<T> a) {
    extern __shared__ float sm[];
    const int C = a.C;
    float* smem = sm;
    float* hs = sm + C;
    const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kRows;
    for (int64_t r = r0; r < min(a.rows, r0 + kRows); ++r) {
        const int64_t o = r * C;
        float z[1][CPT], zz[1][CPT], s[CPT];
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int c = chan<WH, CPT>(j);
            z[0][j] = zz[0][j] = s[j] = 0.f;
            if (!WH && c >= C) continue;
            store_f(a.w + o + c, load_f(a.w0 + c) + load_f(a.wl + o + c));
            s[j] = sigm(load_f(a.a0 + c) + load_f(a.al + o + c));
            const float kr = load_f(a.kr + o + c);
            z[0][j] = kr * load_f(a.kk + c);
            zz[0][j] = z[0][j] * z[0][j];
            store_f(a.k + o + c, kr * (1.f + (s[j] - 1.f) * load_f(a.ka + c)));
            if (a.vl) {
                const float vr = load_f(a.vr + o + c);
                store_f(a.v + o + c,
                   vr + (load_f(a.vf + o + c) - vr) * sigm(load_f(a.v0 + c) + load_f(a.vl + o + c)));
            }
        }
        float hz[1][CPT];
        head_sums<1, CPT, WH>(zz, smem, hs, C, a.N, hz);
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int c = chan<WH, CPT>(j);
            if (!WH && c >= C) continue;
            const float inv = 1.f / fmaxf(sqrtf(hz[0][j]), kL2Eps);
            const float kk = z[0][j] * inv;
            store_f(a.aa + o + c, -kk);
            store_f(a.bb + o + c, kk * s[j]);
        }
    }
}

template <class T, int CPT, bool WH>
__global__ void __launch_bounds__(1024) prep_bwd_kernel(PrepArgs<T> a) {
    extern __shared__ float sm[];
    const int C = a.C;
    float* smem = sm;          // 2*C
    float* hs = sm + 2 * C;    // 2*H
    float pw0[CPT], pa0[CPT], pv0[CPT], pkk[CPT], pka[CPT];
#pragma unroll
    for (int j = 0; j < CPT; ++j) pw0[j] = pa0[j] = pv0[j] = pkk[j] = pka[j] = 0.f;
    const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kRows;
    for (int64_t r = r0; r < min(a.rows, r0 + kRows); ++r) {
        const int64_t o = r * C;
        float sums[2][CPT], z[CPT], d[CPT], dsa[CPT], q[CPT], gbb[CPT], kr[CPT], dkr[CPT];
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int c = chan<WH, CPT>(j);
            sums[0][j] = sums[1][j] = 0.f;
            if (!WH && c >= C) continue;
            const float gw = load_f(a.gw + o + c), gk = load_f(a.gk + o + c), gaa = load_f(a.gaa + o + c);
            gbb[j] = load_f(a.gbb + o + c);
            pw0[j] += gw;
            const float p = load_f(a.a0 + c) + load_f(a.al + o + c);
            const float s = sigm(p);
            q[j] = s * (1.f - s);
            kr[j] = load_f(a.kr + o + c);
            const float ka = load_f(a.ka + c);
            z[j] = kr[j] * load_f(a.kk + c);
            sums[0][j] = z[j] * z[j];
            d[j] = gbb[j] * s - gaa;  // gradient of kk
            sums[1][j] = d[j] * z[j];
            dkr[j] = gk * (1.f + (s - 1.f) * ka);
            dsa[j] = gk * kr[j] * ka;
            pka[j] += gk * kr[j] * (s - 1.f);
            if (a.vl) {
                const float gv = load_f(a.gv + o + c), vr = load_f(a.vr + o + c), vf = load_f(a.vf + o + c);
                const float p2 = load_f(a.v0 + c) + load_f(a.vl + o + c);
                const float s2 = sigm(p2);
                const float dvl = gv * (vf - vr) * s2 * (1.f - s2);
                store_f(a.dvr + o + c, gv * (1.f - s2));
                store_f(a.dvf + o + c, gv * s2);
                store_f(a.dvl + o + c, dvl);
                pv0[j] += dvl;
            }
        }
        float hsum[2][CPT];
        head_sums<2, CPT, WH>(sums, smem, hs, C, a.N, hsum);
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int c = chan<WH, CPT>(j);
            if (!WH && c >= C) continue;
            const float norm = sqrtf(hsum[0][j]);
            const float iv = 1.f / fmaxf(norm, kL2Eps);
            const float coef = norm >= kL2Eps ? hsum[1][j] * iv * iv : 0.f;
            const float dz = (d[j] - z[j] * coef) * iv;
            const float ds = dsa[j] + gbb[j] * z[j] * iv;
            const float kkp = load_f(a.kk + c);
            store_f(a.dkr + o + c, dkr[j] + dz * kkp);
            pkk[j] += dz * kr[j];
            const float da = ds * q[j];
            store_f(a.dal + o + c, da);
            pa0[j] += da;
        }
    }
    float* part = a.part + static_cast<int64_t>(blockIdx.x) * 5 * C;
#pragma unroll
    for (int j = 0; j < CPT; ++j) {
        const int c = chan<WH, CPT>(j);
        if (!WH && c >= C) continue;
        part[0 * C + c] = pw0[j];
        part[1 * C + c] = pa0[j];
        part[2 * C + c] = pv0[j];
        part[3 * C + c] = pkk[j];
        part[4 * C + c] = pka[j];
    }
}

// ---- rwkv7_out --------------------------------------------------------------------------------

template <class T>
struct OutArgs : OutView<T> {
    int64_t rows;
    int C, N;
    float eps;
};

// Per-head mean, rstd of y and s = Σ r k r_k, spread to this thread's channels.
template <class T, int CPT, bool WH>
__device__ void out_stats(const OutArgs<T>& a, int64_t o, float* smem, float* hs, float (&y)[CPT],
                          float (&mean)[CPT], float (&rstd)[CPT], float (&s)[CPT]) {
    const int C = a.C;
    float v2[2][CPT];
#pragma unroll
    for (int j = 0; j < CPT; ++j) {
        const int c = chan<WH, CPT>(j);
        y[j] = 0.f;
        v2[0][j] = v2[1][j] = 0.f;
        if (!WH && c >= C) continue;
        y[j] = load_f(a.y + o + c);
        v2[0][j] = y[j];
        v2[1][j] = load_f(a.r + o + c) * load_f(a.k + o + c) * load_f(a.rk + c);
    }
    float h2[2][CPT];
    head_sums<2, CPT, WH>(v2, smem, hs, C, a.N, h2);
    const float inv_n = 1.f / static_cast<float>(a.N);
    float dev[1][CPT];
#pragma unroll
    for (int j = 0; j < CPT; ++j) {
        const int c = chan<WH, CPT>(j);
        dev[0][j] = 0.f;
        if (!WH && c >= C) continue;
        mean[j] = h2[0][j] * inv_n;
        s[j] = h2[1][j];
        dev[0][j] = (y[j] - mean[j]) * (y[j] - mean[j]);
    }
    float hd[1][CPT];
    head_sums<1, CPT, WH>(dev, smem, hs, C, a.N, hd);
#pragma unroll
    for (int j = 0; j < CPT; ++j) {
        const int c = chan<WH, CPT>(j);
        if (WH || c < C) rstd[j] = rsqrtf(hd[0][j] * inv_n + a.eps);
    }
}

template <class T, int CPT, bool WH>
__global__ void __launch_bounds__(1024) out_fwd_kernel(OutArgs<T> a) {
    extern __shared__ float sm[];
    const int C = a.C;
    float* smem = sm;
    float* hs = sm + 2 * C;
    const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kRows;
    for (int64_t r = r0; r < min(a.rows, r0 + kRows); ++r) {
        const int64_t o = r * C;
        float y[CPT], mean[CPT], rstd[CPT], s[CPT];
        out_stats<T, CPT, WH>(a, o, smem, hs, y, mean, rstd, s);
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int c = chan<WH, CPT>(j);
            if (!WH && c >= C) continue;
            const float zn = (y[j] - mean[j]) * rstd[j] * load_f(a.lw + c) + load_f(a.lb + c) +
                             s[j] * load_f(a.v + o + c);
            store_f(a.z + o + c, zn * load_f(a.g + o + c));
        }
    }
}

template <class T, int CPT, bool WH>
__global__ void __launch_bounds__(1024) out_bwd_kernel(OutArgs<T> a) {
    extern __shared__ float sm[];
    const int C = a.C;
    float* smem = sm;        // 3*C
    float* hs = sm + 3 * C;  // 3*H
    float prk[CPT], plw[CPT], plb[CPT];
#pragma unroll
    for (int j = 0; j < CPT; ++j) prk[j] = plw[j] = plb[j] = 0.f;
    const float inv_n = 1.f / static_cast<float>(a.N);
    const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kRows;
    for (int64_t r = r0; r < min(a.rows, r0 + kRows); ++r) {
        const int64_t o = r * C;
        float y[CPT], mean[CPT], rstd[CPT], s[CPT], hh[CPT], sums[3][CPT];
        out_stats<T, CPT, WH>(a, o, smem, hs, y, mean, rstd, s);
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int c = chan<WH, CPT>(j);
            sums[0][j] = sums[1][j] = sums[2][j] = 0.f;
            if (!WH && c >= C) continue;
            const float gz = load_f(a.gz + o + c), gg = load_f(a.g + o + c), v = load_f(a.v + o + c);
            const float lw = load_f(a.lw + c), lb = load_f(a.lb + c);
            const float h = (y[j] - mean[j]) * rstd[j];
            hh[j] = h;
            const float dp = gz * gg;  // gradient of ln_x(y) + s v
            store_f(a.dg + o + c, gz * (h * lw + lb + s[j] * v));
            store_f(a.dv + o + c, dp * s[j]);
            plw[j] += dp * h;
            plb[j] += dp;
            const float d = dp * lw;
            sums[0][j] = dp * v;  // -> ds
            sums[1][j] = d;       // -> m1
            sums[2][j] = d * h;   // -> m2
        }
        float h3[3][CPT];
        head_sums<3, CPT, WH>(sums, smem, hs, C, a.N, h3);
#pragma unroll
        for (int j = 0; j < CPT; ++j) {
            const int c = chan<WH, CPT>(j);
            if (!WH && c >= C) continue;
            const float ds = h3[0][j], m1 = h3[1][j], m2 = h3[2][j];
            store_f(a.dy + o + c, rstd[j] * (sums[1][j] - m1 * inv_n - hh[j] * m2 * inv_n));
            const float rr = load_f(a.r + o + c), kk = load_f(a.k + o + c), rk = load_f(a.rk + c);
            store_f(a.dr + o + c, ds * kk * rk);
            store_f(a.dk + o + c, ds * rr * rk);
            prk[j] += ds * rr * kk;
        }
    }
    float* part = a.part + static_cast<int64_t>(blockIdx.x) * 3 * C;
#pragma unroll
    for (int j = 0; j < CPT; ++j) {
        const int c = chan<WH, CPT>(j);
        if (!WH && c >= C) continue;
        part[0 * C + c] = prk[j];
        part[1 * C + c] = plw[j];
        part[2 * C + c] = plb[j];
    }
}

// ---- launchers ------------------------------------------------------------------------------

int chunks_of(int64_t rows) { return static_cast<int>((rows + kRows - 1) / kRows); }

template <class F>
void by_dtype(bool bf16, F&& f) {
    if (bf16)
        f(__nv_bfloat16{});
    else
        f(float{});
}

template <int N>
using CptTag = std::integral_constant<int, N>;
template <class F>
void by_cpt(int64_t C, F&& f) {
    switch (cpt_for(C)) {
        case 1: f(CptTag<1>{}); break;
        case 2: f(CptTag<2>{}); break;
        default: f(CptTag<4>{}); break;
    }
}


// Heads of 32, 64 or 128 channels, at most 32 of them: the warp-per-head layout (one warp per
// head, N / 32 channels per lane); otherwise the block layout. f receives (WH, CPT) as types.
template <class F>
void by_layout(int C, int N, F&& f) {
    const int H = C / N;
    if (H <= 32 && N == 64)
        f(std::true_type{}, CptTag<2>{});
    else if (H <= 32 && N == 32)
        f(std::true_type{}, CptTag<1>{});
    else if (H <= 32 && N == 128)
        f(std::true_type{}, CptTag<4>{});
    else
        by_cpt(C, [&](auto cpt) { f(std::false_type{}, cpt); });
}

// Threads per block of a layout: 32 per head, or threads_for(C).
int layout_threads(bool wh, int C, int N) { return wh ? 32 * (C / N) : threads_for(C); }

// Launches the row kernel that pick(wh, cpt) returns for the layout of (C, N) over the chunks of
// rows; `sums`: how many per-head sums the kernel keeps at once (its shared memory in the block
// layout).
template <class Args, class Pick>
void launch_rows(const Args& a, int64_t rows, int C, int N, int sums, void* stream, Pick&& pick) {
    by_layout(C, N, [&](auto wh, auto cpt) {
        constexpr bool kWh = decltype(wh)::value;
        const size_t smem = kWh ? 0 : static_cast<size_t>(sums * (C + C / N)) * sizeof(float);
        const auto kernel = pick(wh, cpt);
        kernel<<<chunks_of(rows), layout_threads(kWh, C, N), smem,
                 static_cast<cudaStream_t>(stream)>>>(a);
    });
}

}  // namespace

int token_mix_max_chunks(int64_t rows, int64_t C, int M, int G, bool bf16) {
    const int v =
        vec_ok(static_cast<int>(C), 0, bf16) ? mix_vec_chunks(rows, int(C), M, G, bf16) : 0;
    return std::max(v, chunks_of(rows));
}
int prep_max_chunks(int64_t rows, int C, int N, bool bf16) {
    return std::max(vec_ok(C, N, bf16) ? prep_vec_chunks(rows, C, N, bf16) : 0, chunks_of(rows));
}
int out_max_chunks(int64_t rows, int C, int N, bool bf16) {
    return std::max(vec_ok(C, N, bf16) ? out_vec_chunks(rows, C, N, bf16) : 0, chunks_of(rows));
}

int token_mix_launch(const MixPtrs& p, int64_t B, int64_t Tn, int64_t C, bool backward,
                     bool bf16, void* st) {
    if (token_mix_vec_launch(p, B, Tn, C, backward, bf16, st))
        return mix_vec_chunks(B * Tn, static_cast<int>(C), p.M, p.G, bf16);
    by_dtype(bf16, [&](auto tag) {
        using T = decltype(tag);
        MixArgs<T> a{view_of<T>(p)};
        a.B = B;
        a.Tn = Tn;
        a.C = C;
        const auto s = static_cast<cudaStream_t>(st);
        by_cpt(C, [&](auto cpt) {
        if (backward)
            token_mix_bwd_kernel<T, decltype(cpt)::value><<<chunks_of(B * Tn), threads_for(C), 0, s>>>(a);
        else
            token_mix_fwd_kernel<T, decltype(cpt)::value><<<chunks_of(B * Tn), threads_for(C), 0, s>>>(a);
        });
    });
    GOOSE_CUDA_LAUNCH_CHECK();
    return chunks_of(B * Tn);
}

int prep_launch(const PrepPtrs& p, int64_t rows, int C, int N, bool backward, bool bf16,
                void* st) {
    if (prep_vec_launch(p, rows, C, N, backward, bf16, st))
        return prep_vec_chunks(rows, C, N, bf16);
    by_dtype(bf16, [&](auto tag) {
        using T = decltype(tag);
        PrepArgs<T> a{view_of<T>(p)};
        a.rows = rows;
        a.C = C;
        a.N = N;
        launch_rows(a, rows, C, N, backward ? 2 : 1, st, [&](auto wh, auto cpt) {
            constexpr bool kWh = decltype(wh)::value;
            constexpr int kCptV = decltype(cpt)::value;
            return backward ? &prep_bwd_kernel<T, kCptV, kWh> : &prep_fwd_kernel<T, kCptV, kWh>;
        });
    });
    GOOSE_CUDA_LAUNCH_CHECK();
    return chunks_of(rows);
}

int out_launch(const OutPtrs& p, int64_t rows, int C, int N, float eps, bool backward, bool bf16,
               void* st) {
    if (out_vec_launch(p, rows, C, N, eps, backward, bf16, st))
        return out_vec_chunks(rows, C, N, bf16);
    by_dtype(bf16, [&](auto tag) {
        using T = decltype(tag);
        OutArgs<T> a{view_of<T>(p)};
        a.rows = rows;
        a.C = C;
        a.N = N;
        a.eps = eps;
        launch_rows(a, rows, C, N, backward ? 3 : 2, st, [&](auto wh, auto cpt) {
            constexpr bool kWh = decltype(wh)::value;
            constexpr int kCptV = decltype(cpt)::value;
            return backward ? &out_bwd_kernel<T, kCptV, kWh> : &out_fwd_kernel<T, kCptV, kWh>;
        });
    });
    GOOSE_CUDA_LAUNCH_CHECK();
    return chunks_of(rows);
}

}  // namespace goose::models::fused::cuda_kernels
