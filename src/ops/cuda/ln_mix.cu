// CUDA add_layer_norm followed by a one-vector token_mix (the RWKV-7 channel mix's input): the
// forward writes sum = x + a and mixed = n + (shift(n) - n) mu with n = layer_norm(sum), not n;
// the backward rebuilds n from sum and the saved row statistics. One warp per row (lane l holds
// 16-byte vectors l + 32 k). Forward: a block's warps share their rows' n through shared memory,
// one extra warp computing the n of the row before the block's. Backward: each warp runs L
// consecutive rows (staged through shared memory some rows ahead, row_stages.cuh), carrying the
// previous row's n and rebuilding it for its first row. Parameter gradients (w, b, mu) are summed
// per warp, the block's warps in a fixed order, then the blocks in order (deterministic). n is
// rounded to T as the composed ops store it.
#include "ops/cuda/ops_util.cuh"  // first (see there)

#include <algorithm>

#include "ops/cuda/column_sums.h"
#include "ops/cuda/ln_row.cuh"
#include "ops/cuda/ln_mix_cuda.h"
#include "ops/cuda/row_stages.cuh"
#include "ops/cuda/vec16.cuh"

namespace goose::ops {

using namespace cuda_ops;

namespace {

using cuda_util::ldv;
using cuda_util::normed_of;
using cuda_util::row_stats;
using cuda_util::stv;
using cuda_util::zero_v;

constexpr int kWarps = 8;      // warps per block of the backward
constexpr int kBwdStages = 4;  // rows staged by the backward (S - 2 in flight)
constexpr int kFwdRows = 16;   // rows per block of the forward (plus one warp for the row before)

template <class T>
struct LnMixArgs {
    const T *x, *a, *w, *b, *mu, *prev;  // forward inputs (x, a rows; prev (B, C) or null)
    T *sum, *mixed;                      // forward outputs
    float *mean, *rstd;                  // per row
    const T *gmix, *gsum;                // backward: gradients of mixed and sum (gsum or null)
    T *dsum, *dprev;                     // backward outputs (dprev or null)
    float* part;                         // (blocks, 3, c): w, b, mu partials, or null
    int64_t rows, Tn;
    int c, L;
    double eps;
};

// A product rounded on its own (as the layer_norm backward: no FMA contraction).
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }

// np = prev[batch] (zeros when null): the shifted row at a sequence start.
template <class T, int NV, int V>
__device__ __forceinline__ void load_prev(const T* prev, int64_t batch, int c, int lane, int nvec,
                                          float (&np)[NV][V]) {
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        const int vi = lane + 32 * k;
        if (prev && vi < nvec)
            ldv(prev + batch * c + vi * V, np[k]);
        else
            zero_v(np[k]);
    }
}

template <class T, int NV>
using BwdStages = cuda_util::Stages<T, cuda_util::vec16_of<T>(), 3 * NV, kBwdStages>;

// Warp w of a block handles row rb + w - 1 (rb = blockIdx.x kFwdRows): warps 1.. their own rows
// (sum, statistics, n), warp 0 the row before the block's (n only, where it is in the same
// sequence). Each puts its n (rounded to T) in shared memory; after one barrier a row's mix reads
// its predecessor's n there (prev or zeros at a sequence start).
template <class T, int NV>
__global__ void __launch_bounds__(32 * (kFwdRows + 1)) ln_mix_fwd_kernel(LnMixArgs<T> p) {
    constexpr int V = cuda_util::vec16_of<T>();
    extern __shared__ __align__(16) char smem_raw[];
    T* sn = reinterpret_cast<T*>(smem_raw);  // (kFwdRows + 1, c): the n of each warp's row
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nvec = p.c / V, c = p.c;
    const int64_t r = int64_t(blockIdx.x) * kFwdRows + w - 1;
    const bool own = w > 0 && r < p.rows;
    const bool halo = w == 0 && r >= 0 && (r + 1) % p.Tn != 0;  // row rb - 1, same sequence
    float nc[NV][V];
    if (own || halo) {
        float v[NV][V];
#pragma unroll
        for (int k = 0; k < NV; ++k) {
            const int vi = lane + 32 * k;
            if (vi < nvec) {
                float u[V];
                ldv(p.x + r * c + vi * V, v[k]);
                ldv(p.a + r * c + vi * V, u);
#pragma unroll
                for (int j = 0; j < V; ++j) v[k][j] = to_acc(from_acc<T>(v[k][j] + u[j]));
                if (own) stv(p.sum + r * c + vi * V, v[k]);
            } else {
                zero_v(v[k]);
            }
        }
        float m, rs;
        row_stats(v, lane, nvec, c, p.eps, m, rs);
        if (own && lane == 0) {
            p.mean[r] = m;
            p.rstd[r] = rs;
        }
#pragma unroll
        for (int k = 0; k < NV; ++k) {
            const int vi = lane + 32 * k;
            if (vi >= nvec) break;
            float xh[V];
#pragma unroll
            for (int j = 0; j < V; ++j) xh[j] = (v[k][j] - m) * rs;
            normed_of<T, V>(xh, p.w, p.b, vi, nc[k]);
            stv(sn + w * c + vi * V, nc[k]);
        }
    }
    __syncthreads();
    if (!own) return;
    const bool start = r % p.Tn == 0;
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        const int vi = lane + 32 * k;
        if (vi >= nvec) break;
        float np[V], mu[V], o[V];
        if (!start)
            ldv(sn + (w - 1) * c + vi * V, np);
        else if (p.prev)
            ldv(p.prev + (r / p.Tn) * c + vi * V, np);
        else
            zero_v(np);
        ldv(p.mu + vi * V, mu);
#pragma unroll
        for (int j = 0; j < V; ++j) o[j] = nc[k][j] + (np[j] - nc[k][j]) * mu[j];
        stv(p.mixed + r * c + vi * V, o);
    }
}

// Per row r (t its position): dn = g[r] (1 - mu) + g[r + 1] mu (the second term within the
// sequence only), dmu += g[r] (n[r - 1] - n[r]), dprev = g[r] mu at t = 0; then the layer_norm
// backward of dn (dw += dn xhat, db += dn) and dsum = round(dx) + gsum. Staged per row: g, sum,
// gsum; the g of the row after a warp's last row too.
template <class T, int NV>
__global__ void __launch_bounds__(32 * kWarps, 1) ln_mix_bwd_kernel(LnMixArgs<T> p) {
    constexpr int V = cuda_util::vec16_of<T>(), S = kBwdStages;
    extern __shared__ __align__(16) char smem_raw[];
    BwdStages<T, NV> st(smem_raw);
    const int lane = threadIdx.x & 31, wi = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int nvec = p.c / V, c = p.c;
    const int64_t rb = warp_row() * p.L;
    const int n = rb >= p.rows ? 0 : int(p.rows - rb < p.L ? p.rows - rb : p.L);
    float aw[NV][V], ab[NV][V], am[NV][V];
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        zero_v(aw[k]);
        zero_v(ab[k]);
        zero_v(am[k]);
    }
    if (n > 0) {  // not a return: every warp reaches the barriers of the partial sums
        const bool g_after = rb + n < p.rows;  // the row after the last (its g) exists
        auto queue = [&](int i) {
            const bool ok = i < n, gok = ok || (i == n && g_after);
            const int64_t off = (ok ? rb + i : rb) * c, goff = (gok ? rb + i : rb) * c;
#pragma unroll
            for (int k = 0; k < NV; ++k) {
                const int vi = lane + 32 * k;
                if (vi >= nvec) break;
                cuda_util::cp_async<16>(st.at(i, k), p.gmix + goff + vi * V, gok);
                cuda_util::cp_async<16>(st.at(i, NV + k), p.sum + off + vi * V, ok);
                if (p.gsum)
                    cuda_util::cp_async<16>(st.at(i, 2 * NV + k), p.gsum + off + vi * V, ok);
            }
            cuda_util::cp_commit();
        };
        for (int i = 0; i < S - 1; ++i) queue(i);
        int64_t t = rb % p.Tn;
        float np[NV][V];  // the previous row's n
        if (t == 0) {
            load_prev<T, NV, V>(p.prev, rb / p.Tn, c, lane, nvec, np);
        } else {  // rebuild row rb - 1 from sum and its statistics
            const float m = p.mean[rb - 1], rs = p.rstd[rb - 1];
#pragma unroll
            for (int k = 0; k < NV; ++k) {
                const int vi = lane + 32 * k;
                if (vi >= nvec) break;
                float xh[V];
                ldv(p.sum + (rb - 1) * c + vi * V, xh);
#pragma unroll
                for (int j = 0; j < V; ++j) xh[j] = (xh[j] - m) * rs;
                normed_of<T, V>(xh, p.w, p.b, vi, np[k]);
            }
        }
        float m_next = p.mean[rb], rs_next = p.rstd[rb];
        for (int i = 0; i < n; ++i) {
            const int64_t r = rb + i;
            queue(i + S - 1);
            const float m = m_next, rs = rs_next;
            if (i + 1 < n) {
                m_next = p.mean[r + 1];
                rs_next = p.rstd[r + 1];
            }
            cuda_util::cp_wait<S - 2>();  // rows i and i + 1 have landed
            if (t == 0 && i > 0) load_prev<T, NV, V>(p.prev, r / p.Tn, c, lane, nvec, np);
            const bool next_in_seq = t + 1 < p.Tn;
            float gw[NV][V], xh[NV][V];
            float sg = 0.f, sgx = 0.f;
#pragma unroll
            for (int k = 0; k < NV; ++k) {
                const int vi = lane + 32 * k;
                if (vi < nvec) {
                    float g[V], gn[V], mu[V], nc[V], wv[V];
                    st.get(i, k, g);
                    st.get(i, NV + k, xh[k]);
                    if (next_in_seq)
                        st.get(i + 1, k, gn);
                    else
                        zero_v(gn);
                    ldv(p.mu + vi * V, mu);
#pragma unroll
                    for (int j = 0; j < V; ++j) xh[k][j] = (xh[k][j] - m) * rs;
                    normed_of<T, V>(xh[k], p.w, p.b, vi, nc);
                    if (t == 0 && p.dprev) {
                        float d[V];
#pragma unroll
                        for (int j = 0; j < V; ++j) d[j] = g[j] * mu[j];
                        stv(p.dprev + (r / p.Tn) * c + vi * V, d);
                    }
                    if (p.w)
                        ldv(p.w + vi * V, wv);
                    else
#pragma unroll
                        for (int j = 0; j < V; ++j) wv[j] = 1.f;
#pragma unroll
                    for (int j = 0; j < V; ++j) {
                        am[k][j] += g[j] * (np[k][j] - nc[j]);
                        np[k][j] = nc[j];
                        const float dn = g[j] - g[j] * mu[j] + gn[j] * mu[j];
                        gw[k][j] = mul_rn(dn, wv[j]);
                        sg += gw[k][j];
                        sgx += gw[k][j] * xh[k][j];
                        aw[k][j] += dn * xh[k][j];
                        ab[k][j] += dn;
                    }
                } else {
                    zero_v(gw[k]);
                    zero_v(xh[k]);
                }
            }
            cuda_util::ln_bwd_store_row<T, NV, V>(gw, xh, sg, sgx, rs, c, nvec, lane, st, i,
                                                  p.gsum != nullptr, 2 * NV, p.dsum + r * c);
            if (++t == p.Tn) t = 0;
        }
    }
    if (!p.part) return;  // uniform over the grid
    cuda_util::cp_wait<0>();  // the zeros queued past the last row land before smem is reused
    const auto acc = [&](int which, int k, int j) {
        return which == 0 ? aw[k][j] : (which == 1 ? ab[k][j] : am[k][j]);
    };
    cuda_util::ln_bwd_block_partials<NV, V, 3>(reinterpret_cast<float*>(smem_raw),
                                               p.part + int64_t(blockIdx.x) * 3 * c, acc, c, nvec,
                                               lane, wi, nw);
}

// Rows per warp: about one block of kWarps warps per SM (a warp's first row costs one row
// rebuilt, so fewer, longer runs).
int rows_per_warp(int64_t rows) {
    static const int sms = goose::cuda::multiprocessor_count();
    const int64_t warps = int64_t(sms) * kWarps;
    return int(std::max<int64_t>(1, (rows + warps - 1) / warps));
}

bool aligned(const Tensor& t) { return !t.defined() || cuda_util::aligned16(t.raw_data()); }

// t packed and 16-byte aligned (a copy where it is not).
Tensor packed16(const Tensor& t) {
    if (!t.defined()) return t;
    Tensor c = t.contiguous();
    return aligned(c) ? c : c.clone();
}

}  // namespace

bool add_layer_norm_mix_forward_cuda(const Tensor& x, const Tensor& a, const Tensor& w,
                                     const Tensor& b, const Tensor& mu, const Tensor& prev,
                                     double eps, LnMixForward& f) {
    const DType dt = x.dtype();
    if ((dt != DType::bf16 && dt != DType::f32) || x.ndim() != 3 || a.dtype() != dt ||
        a.shape() != x.shape() || x.numel() == 0)
        return false;
    const int64_t B = x.size(0), Tn = x.size(1), c = x.size(2), rows = B * Tn;
    for (const Tensor* t : {&w, &b, &mu})
        if (t->defined() && (t->dtype() != dt || t->numel() != c)) return false;
    if (!mu.defined() || (prev.defined() && (prev.dtype() != dt || prev.shape() != Shape{B, c})))
        return false;
    const Tensor xc = x.contiguous(), ac = a.contiguous(), mc = mu.contiguous();
    const Tensor wc = w.defined() ? w.contiguous() : Tensor();
    const Tensor bc = b.defined() ? b.contiguous() : Tensor();
    const Tensor pc = prev.defined() ? prev.contiguous() : Tensor();
    for (const Tensor* t : {&xc, &ac, &wc, &bc, &mc, &pc})
        if (!aligned(*t)) return false;
    const Shape ss{B, Tn};
    LnMixForward o{empty_on(x.shape(), dt, x), empty_on(x.shape(), dt, x),
                   empty_on(ss, DType::f32, x), empty_on(ss, DType::f32, x)};
    if (!aligned(o.sum) || !aligned(o.mixed)) return false;
    bool done = false;
    dispatch_float(dt, "add_layer_norm_mix", [&](auto tag) {
        using T = decltype(tag);
        if constexpr (!std::is_same_v<T, double>)
            done = cuda_util::with_lane_vectors<T>(c, [&](auto nv) {
                constexpr int NV = decltype(nv)::value;
                const auto kernel = ln_mix_fwd_kernel<T, NV>;
                const int threads = 32 * (kFwdRows + 1);
                const size_t smem = size_t(kFwdRows + 1) * size_t(c) * sizeof(T);
                check_cuda(cuda_util::allow_dynamic_smem(reinterpret_cast<const void*>(kernel),
                                                         smem),
                           "cudaFuncSetAttribute");
                LnMixArgs<T> p{};
                p.x = ptr<T>(xc);
                p.a = ptr<T>(ac);
                p.w = ptr_or_null<T>(wc);
                p.b = ptr_or_null<T>(bc);
                p.mu = ptr<T>(mc);
                p.prev = ptr_or_null<T>(pc);
                p.sum = ptr<T>(o.sum);
                p.mixed = ptr<T>(o.mixed);
                p.mean = ptr<float>(o.mean);
                p.rstd = ptr<float>(o.rstd);
                p.rows = rows;
                p.Tn = Tn;
                p.c = int(c);
                p.eps = eps;
                kernel<<<unsigned((rows + kFwdRows - 1) / kFwdRows), threads, smem, stream()>>>(p);
            });
    });
    if (!done) return false;
    check_launch("add_layer_norm_mix");
    f = std::move(o);
    return true;
}

LnMixGrads add_layer_norm_mix_backward_cuda(const Tensor& gmix, const Tensor& gsum,
                                            const Tensor& sum, const Tensor& w, const Tensor& b,
                                            const Tensor& mu, const Tensor& prev,
                                            const Tensor& mean, const Tensor& rstd, bool need_dw,
                                            bool need_db, bool need_dmu, bool need_dprev) {
    const DType dt = sum.dtype();
    const int64_t B = sum.size(0), Tn = sum.size(1), c = sum.size(2), rows = B * Tn;
    if (gmix.dtype() != dt || gmix.shape() != sum.shape() ||
        (gsum.defined() && (gsum.dtype() != dt || gsum.shape() != sum.shape())))
        raise("add_layer_norm_mix: gradients {} / {} do not match the sum {}", gmix.desc(),
              gsum.defined() ? gsum.desc() : "undefined", sum.desc());
    const Tensor gc = packed16(gmix), rc = packed16(gsum);
    LnMixGrads r;
    r.dsum = empty_on(sum.shape(), dt, sum);
    if (need_dw) r.dw = empty_on(w.shape(), dt, sum);
    if (need_db) r.db = empty_on(b.shape(), dt, sum);
    if (need_dmu) r.dmu = empty_on(mu.shape(), dt, sum);
    if (need_dprev && prev.defined()) r.dprev = empty_on(prev.shape(), dt, sum);
    const bool sums = need_dw || need_db || need_dmu;
    bool done = false;
    dispatch_float(dt, "add_layer_norm_mix", [&](auto tag) {
        using T = decltype(tag);
        if constexpr (!std::is_same_v<T, double>)
            done = cuda_util::with_lane_vectors<T>(c, [&](auto nv) {
                constexpr int NV = decltype(nv)::value;
                const auto kernel = ln_mix_bwd_kernel<T, NV>;
                const int threads = 32 * kWarps;
                const size_t smem = std::max(size_t(kWarps) * size_t(c) * sizeof(float),
                                             size_t(threads) * BwdStages<T, NV>::kPerThread);
                check_cuda(cuda_util::allow_dynamic_smem(reinterpret_cast<const void*>(kernel),
                                                         smem),
                           "cudaFuncSetAttribute");
                LnMixArgs<T> p{};
                p.w = w.defined() ? ptr<T>(w) : nullptr;
                p.b = b.defined() ? ptr<T>(b) : nullptr;
                p.mu = ptr<T>(mu);
                p.prev = prev.defined() ? ptr<T>(prev) : nullptr;
                p.sum = ptr<T>(sum);
                p.mean = ptr<float>(mean);
                p.rstd = ptr<float>(rstd);
                p.gmix = ptr<T>(gc);
                p.gsum = ptr_or_null<T>(rc);
                p.dsum = ptr<T>(r.dsum);
                p.dprev = r.dprev.defined() ? ptr<T>(r.dprev) : nullptr;
                p.rows = rows;
                p.Tn = Tn;
                p.c = int(c);
                p.L = rows_per_warp(rows);
                const int64_t warps = (rows + p.L - 1) / p.L;
                const int64_t blocks = (warps + kWarps - 1) / kWarps;
                Tensor part = sums ? empty_on(Shape{blocks, 3, c}, DType::f32, sum) : Tensor();
                p.part = sums ? ptr<float>(part) : nullptr;
                kernel<<<unsigned(blocks), threads, smem, stream()>>>(p);
                if (sums) {
                    cuda_column_sums::PartialOuts outs;
                    outs.n = 3;
                    outs.out[0] = need_dw ? ptr<T>(r.dw) : nullptr;
                    outs.out[1] = need_db ? ptr<T>(r.db) : nullptr;
                    outs.out[2] = need_dmu ? ptr<T>(r.dmu) : nullptr;
                    cuda_column_sums::sum_partials_launch(ptr<float>(part), outs, int(blocks),
                                                          int(c), std::is_same_v<T, bf16>,
                                                          stream());
                }
            });
    });
    if (!done) raise("add_layer_norm_mix: no backward kernel for {}", sum.desc());
    check_launch("add_layer_norm_mix");
    return r;
}

}  // namespace goose::ops
