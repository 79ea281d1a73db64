// Fused elementwise functions of the models: kernels (OpenMP over rows or batch entries, sums
// over fixed chunks so results do not depend on the thread count) and their autograd wrappers.
#include "models/fused.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "goose/autograd.h"
#include "goose/ops/backend.h"
#include "goose/ops/binary.h"
#include "ops/cpu/fast_math.h"
#include "ops/cpu/vec.h"

#ifdef GOOSE_CUDA
#include "models/cuda/fused_cuda.h"
#endif

namespace goose::models::fused {

namespace {

constexpr int64_t kParallelMin = 16384;  // elements below which one thread does it all
constexpr int64_t kBatchChunk = 4;       // batch entries per partial sum of a parameter gradient
constexpr int64_t kRowChunk = 64;        // rows (B*T) per partial sum of a parameter gradient
constexpr double kL2Eps = 1e-12;         // F.normalize's eps (the kk of RWKV-7)

bool fast(const Var& x) { return backend_of(x.value()) == Backend::cpu; }
#ifdef GOOSE_CUDA
bool on_cuda(const Var& x) { return backend_of(x.value()) == Backend::cuda; }
#endif

// Parameter gradients from per-chunk partial sums: part holds, for each chunk in order, one
// row of C per destination; dst[q] (C values, skipped when null) = Σ_chunks part[chunk][q].
// Summing the chunks in a fixed order keeps results independent of the thread count.
template <class T>
void sum_chunk_parts(const std::vector<T>& part, int64_t chunks, int64_t C,
                     const std::vector<T*>& dst) {
    const auto Q = static_cast<int64_t>(dst.size());
    for (int64_t q = 0; q < Q; ++q) {
        T* d = dst[static_cast<size_t>(q)];
        if (!d) continue;
        std::fill(d, d + C, T(0));
        for (int64_t k = 0; k < chunks; ++k) {
            const T* p = part.data() + (k * Q + q) * C;
            for (int64_t c = 0; c < C; ++c) d[c] += p[c];
        }
    }
}

// ---- token_mix ---------------------------------------------------------------------------

// out[m] (B, T, C) = x + (xp - x) mu[m], xp the previous row (prev, or zeros, at t = 0).
template <class T>
void token_mix_forward(const T* x, const T* prev, const std::vector<const T*>& mu,
                       const std::vector<T*>& out, int64_t B, int64_t Tn, int64_t C) {
    const int64_t rows = B * Tn;
    const std::vector<T> zeros(static_cast<size_t>(C), T(0));
#pragma omp parallel for schedule(static) if (rows * C * int64_t(mu.size()) > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t b = r / Tn, t = r % Tn;
        const T* xr = x + r * C;
        const T* xp = t > 0 ? xr - C : (prev ? prev + b * C : zeros.data());
        for (size_t m = 0; m < mu.size(); ++m) {
            const T* w = mu[m];
            T* o = out[m] + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) o[c] = xr[c] + (xp[c] - xr[c]) * w[c];
        }
    }
}

// Gradients of token_mix: with dxx = Σ_m g[m] mu[m] (the gradient of xp - x),
// dx[t] = Σ_m g[m][t] - dxx[t] + dxx[t+1], dprev = dxx[0], dmu[m] = Σ_{b,t} g[m] (xp - x).
// Each batch entry runs t = T-1 .. 0 on one thread; dmu sums chunks of kBatchChunk entries.
template <class T>
void token_mix_backward_generic(const T* x, const T* prev, const std::vector<const T*>& mu,
                        const std::vector<const T*>& g, T* dx, T* dprev,
                        const std::vector<T*>& dmu, int64_t B, int64_t Tn, int64_t C) {
    const auto M = static_cast<int64_t>(mu.size());
    const int64_t chunks = (B + kBatchChunk - 1) / kBatchChunk;
    bool any_dmu = false;
    for (T* p : dmu) any_dmu = any_dmu || p;
    std::vector<T> part(any_dmu ? static_cast<size_t>(chunks * M * C) : 0, T(0));
    const std::vector<T> zeros(static_cast<size_t>(C), T(0));
#pragma omp parallel if (B * Tn * C * M > kParallelMin)
    {
        std::vector<T> gs(static_cast<size_t>(C)), dxx(static_cast<size_t>(C)),
            next(static_cast<size_t>(C)), xx(static_cast<size_t>(C));
#pragma omp for schedule(static)
        for (int64_t k = 0; k < chunks; ++k) {
            T* pk = any_dmu ? part.data() + k * M * C : nullptr;
            for (int64_t b = k * kBatchChunk; b < std::min(B, (k + 1) * kBatchChunk); ++b) {
                std::fill(next.begin(), next.end(), T(0));
                for (int64_t t = Tn - 1; t >= 0; --t) {
                    const int64_t r = b * Tn + t;
                    const T* xr = x + r * C;
                    const T* xp = t > 0 ? xr - C : (prev ? prev + b * C : zeros.data());
#pragma omp simd
                    for (int64_t c = 0; c < C; ++c) {
                        xx[c] = xp[c] - xr[c];
                        gs[c] = T(0);
                        dxx[c] = T(0);
                    }
                    for (int64_t m = 0; m < M; ++m) {
                        const T* gm = g[static_cast<size_t>(m)] + r * C;
                        const T* w = mu[static_cast<size_t>(m)];
#pragma omp simd
                        for (int64_t c = 0; c < C; ++c) {
                            gs[c] += gm[c];
                            dxx[c] += gm[c] * w[c];
                        }
                        if (pk && dmu[static_cast<size_t>(m)]) {
                            T* pm = pk + m * C;
#pragma omp simd
                            for (int64_t c = 0; c < C; ++c) pm[c] += gm[c] * xx[c];
                        }
                    }
                    if (dx) {
                        T* dr = dx + r * C;
#pragma omp simd
                        for (int64_t c = 0; c < C; ++c) dr[c] = gs[c] - dxx[c] + next[c];
                    }
                    std::swap(next, dxx);
                }
                if (dprev) std::copy(next.begin(), next.end(), dprev + b * C);
            }
        }
    }
    sum_chunk_parts(part, chunks, C, dmu);
}


// token_mix_backward for C a multiple of the vector width: per row and block of channels the
// sums over the M gradients stay in registers.
template <class T>
void token_mix_backward_vec(const T* x, const T* prev, const std::vector<const T*>& mu,
                            const std::vector<const T*>& g, T* dx, T* dprev,
                            const std::vector<T*>& dmu, int64_t B, int64_t Tn, int64_t C) {
    using V = ops::vec::Vec<T>;
    constexpr int64_t L = ops::vec::lanes<T>;
    const auto M = static_cast<int64_t>(mu.size());
    const int64_t chunks = (B + kBatchChunk - 1) / kBatchChunk;
    std::vector<T> part(static_cast<size_t>(chunks * M * C), T(0));
    const std::vector<T> zeros(static_cast<size_t>(C), T(0));
#pragma omp parallel if (B * Tn * C * M > kParallelMin)
    {
        std::vector<T> next(static_cast<size_t>(C)), cur(static_cast<size_t>(C));
#pragma omp for schedule(static)
        for (int64_t k = 0; k < chunks; ++k) {
            T* pk = part.data() + k * M * C;
            for (int64_t b = k * kBatchChunk; b < std::min(B, (k + 1) * kBatchChunk); ++b) {
                std::fill(next.begin(), next.end(), T(0));
                for (int64_t t = Tn - 1; t >= 0; --t) {
                    const int64_t r = b * Tn + t;
                    const T* xr = x + r * C;
                    const T* xp = t > 0 ? xr - C : (prev ? prev + b * C : zeros.data());
                    for (int64_t c = 0; c < C; c += L) {
                        const V xx = ops::vec::sub(ops::vec::load(xp + c), ops::vec::load(xr + c));
                        V gs = ops::vec::bcast(T(0)), dxx = gs;
                        for (int64_t m = 0; m < M; ++m) {
                            const V gm = ops::vec::load(g[static_cast<size_t>(m)] + r * C + c);
                            gs = ops::vec::add(gs, gm);
                            dxx = ops::vec::fma(gm, ops::vec::load(mu[static_cast<size_t>(m)] + c),
                                                dxx);
                            T* pm = pk + m * C + c;
                            ops::vec::store(pm, ops::vec::fma(gm, xx, ops::vec::load(pm)));
                        }
                        ops::vec::store(cur.data() + c, dxx);
                        // dx = Σ g - dxx + dxx of the next step
                        ops::vec::store(dx + r * C + c,
                                        ops::vec::add(ops::vec::sub(gs, dxx),
                                                      ops::vec::load(next.data() + c)));
                    }
                    std::swap(next, cur);
                }
                if (dprev) std::copy(next.begin(), next.end(), dprev + b * C);
            }
        }
    }
    sum_chunk_parts(part, chunks, C, dmu);
}

template <class T>
void token_mix_backward(const T* x, const T* prev, const std::vector<const T*>& mu,
                        const std::vector<const T*>& g, T* dx, T* dprev,
                        const std::vector<T*>& dmu, int64_t B, int64_t Tn, int64_t C) {
    if (dx && C % ops::vec::lanes<T> == 0)
        token_mix_backward_vec(x, prev, mu, g, dx, dprev, dmu, B, Tn, C);
    else
        token_mix_backward_generic(x, prev, mu, g, dx, dprev, dmu, B, Tn, C);
}

// ---- rwkv7_prep ----------------------------------------------------------------------------
// Row by row (B*T rows of C): whole-row loops the compiler vectorises, per-head sums in
// between, per-head values spread over the row's channels so that the loops stay whole-row.

// Sums of x over each head of N channels: out[h] = Σ_{n < N} x[h N + n].
template <class T>
void head_sums(const T* x, T* out, int64_t C, int64_t N) {
    for (int64_t h = 0; h < C / N; ++h) {
        T acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t n = h * N; n < (h + 1) * N; ++n) acc += x[n];
        out[h] = acc;
    }
}

// out[c] = per_head[c / N]: a per-head value over the head's channels.
template <class T>
void spread(const T* per_head, T* out, int64_t C, int64_t N) {
    for (int64_t h = 0; h < C / N; ++h)
        for (int64_t n = h * N; n < (h + 1) * N; ++n) out[n] = per_head[h];
}

template <class T>
struct PrepIn {
    const T *wl, *kr, *vr, *al, *vl, *vf;  // rows (B*T, C); vl, vf null at layer 0
    const T *w0, *a0, *v0, *kk, *ka;       // (C); v0 null at layer 0
};

template <class T>
void prep_forward(const PrepIn<T>& in, T* w, T* k, T* v, T* aa, T* bb, int64_t rows, int64_t C,
                  int64_t N) {
#pragma omp parallel if (rows * C > kParallelMin)
    {
        std::vector<T> sa(static_cast<size_t>(C)), z(static_cast<size_t>(C)),
            zz(static_cast<size_t>(C)), inv(static_cast<size_t>(C)), hs(static_cast<size_t>(C));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t o = r * C;
            const T *wl = in.wl + o, *kr = in.kr + o, *al = in.al + o;
            T *wo = w + o, *ko = k + o, *ao = aa + o, *bo = bb + o;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
                wo[c] = in.w0[c] + wl[c];
                const T s = fast_math::sigmoid(in.a0[c] + al[c]);
                sa[c] = s;
                const T zc = kr[c] * in.kk[c];
                z[c] = zc;
                zz[c] = zc * zc;
                ko[c] = kr[c] * (T(1) + (s - T(1)) * in.ka[c]);
            }
            head_sums(zz.data(), hs.data(), C, N);
            for (int64_t h = 0; h < C / N; ++h)
                hs[h] = T(1) / std::max(std::sqrt(hs[h]), static_cast<T>(kL2Eps));
            spread(hs.data(), inv.data(), C, N);
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
                const T kk = z[c] * inv[c];
                ao[c] = -kk;
                bo[c] = kk * sa[c];
            }
            if (in.vl) {
                const T *vr = in.vr + o, *vl = in.vl + o, *vf = in.vf + o;
                T* vo = v + o;
#pragma omp simd
                for (int64_t c = 0; c < C; ++c)
                    vo[c] = vr[c] + (vf[c] - vr[c]) * fast_math::sigmoid(in.v0[c] + vl[c]);
            }
        }
    }
}

template <class T>
struct PrepGrads {
    const T *gw, *gk, *gv, *gaa, *gbb;  // rows (B*T, C)
    T *dkr, *dvr, *dal, *dvl, *dvf;     // rows (the v ones null at layer 0)
    T *dw0, *da0, *dv0, *dkk, *dka;     // (C) (dv0 null at layer 0)
};

// Parameter gradients: per chunk of kRowChunk rows, then the chunks in order.
enum PrepParam : int64_t { kPw0, kPa0, kPv0, kPkk, kPka, kPrepParams };

template <class T>
void prep_backward(const PrepIn<T>& in, const PrepGrads<T>& g, int64_t rows, int64_t C, int64_t N) {
    const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
    std::vector<T> part(static_cast<size_t>(chunks * kPrepParams * C), T(0));
#pragma omp parallel if (rows * C > kParallelMin)
    {
        std::vector<T> buf(static_cast<size_t>(11 * C));
        T *sa = buf.data(), *qa = sa + C, *z = qa + C, *dkk = z + C, *dsa = dkk + C,
          *zz = dsa + C, *zd = zz + C, *ss = zd + C, *coef = ss + C, *hs = coef + C,
          *hd = hs + C;
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < chunks; ++ch) {
            T* pw0 = part.data() + (ch * kPrepParams + kPw0) * C;
            T* pa0 = part.data() + (ch * kPrepParams + kPa0) * C;
            T* pv0 = part.data() + (ch * kPrepParams + kPv0) * C;
            T* pkk = part.data() + (ch * kPrepParams + kPkk) * C;
            T* pka = part.data() + (ch * kPrepParams + kPka) * C;
            for (int64_t r = ch * kRowChunk; r < std::min(rows, (ch + 1) * kRowChunk); ++r) {
                const int64_t o = r * C;
                const T *kr = in.kr + o, *al = in.al + o, *gw = g.gw + o, *gk = g.gk + o,
                        *gaa = g.gaa + o, *gbb = g.gbb + o;
                T *dkr = g.dkr + o, *dal = g.dal + o;
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) {
                    pw0[c] += gw[c];
                    const T p = in.a0[c] + al[c];
                    const T s = fast_math::sigmoid(p);
                    sa[c] = s;
                    qa[c] = fast_math::sigmoid_slope(p);
                    const T zc = kr[c] * in.kk[c];
                    z[c] = zc;
                    zz[c] = zc * zc;
                    const T d = gbb[c] * s - gaa[c];  // gradient of kk
                    dkk[c] = d;
                    zd[c] = d * zc;
                    dkr[c] = gk[c] * (T(1) + (s - T(1)) * in.ka[c]);
                    dsa[c] = gk[c] * kr[c] * in.ka[c];
                    pka[c] += gk[c] * kr[c] * (s - T(1));
                }
                head_sums(zz, hs, C, N);
                head_sums(zd, hd, C, N);
                // kk = z / max(|z|, eps): dz = (dkk - kk <dkk, kk>) / |z| = (dkk - z coef) inv
                // with coef = <dkk, z> / |z|² (0 when the norm is clamped: then dz = dkk / eps)
                for (int64_t h = 0; h < C / N; ++h) {
                    const T norm = std::sqrt(hs[h]), eps = static_cast<T>(kL2Eps);
                    const T iv = T(1) / std::max(norm, eps);
                    hs[h] = iv;
                    hd[h] = norm >= eps ? hd[h] * iv * iv : T(0);
                }
                spread(hs, ss, C, N);
                spread(hd, coef, C, N);
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) {
                    const T iv = ss[c];
                    const T dz = (dkk[c] - z[c] * coef[c]) * iv;
                    const T ds = dsa[c] + gbb[c] * z[c] * iv;
                    dkr[c] += dz * in.kk[c];
                    pkk[c] += dz * kr[c];
                    const T da = ds * qa[c];
                    dal[c] = da;
                    pa0[c] += da;
                }
                if (in.vl) {
                    const T *vr = in.vr + o, *vl = in.vl + o, *vf = in.vf + o, *gv = g.gv + o;
                    T *dvr = g.dvr + o, *dvf = g.dvf + o, *dvl = g.dvl + o;
#pragma omp simd
                    for (int64_t c = 0; c < C; ++c) {
                        const T p = in.v0[c] + vl[c];
                        const T s = fast_math::sigmoid(p);
                        const T d = gv[c] * (vf[c] - vr[c]) * fast_math::sigmoid_slope(p);
                        dvr[c] = gv[c] * (T(1) - s);
                        dvf[c] = gv[c] * s;
                        dvl[c] = d;
                        pv0[c] += d;
                    }
                }
            }
        }
    }
    sum_chunk_parts(part, chunks, C, {g.dw0, g.da0, g.dv0, g.dkk, g.dka});
}

// ---- rwkv7_out ------------------------------------------------------------------------------

template <class T>
struct OutIn {
    const T *y, *r, *k, *v, *g;  // rows (B*T, C)
    const T *rk, *lw, *lb;       // (C)
};

// Row o's per-head statistics spread over the channels: mean and rstd of y (two-pass, as the
// group norm kernel), s = Σ r k r_k. tmp, hs: C scratch each.
template <class T>
void out_stats(const OutIn<T>& in, int64_t o, int64_t C, int64_t N, double eps, T* mean, T* rstd,
               T* s, T* tmp, T* hs) {
    const T* y = in.y + o;
    const T inv_n = T(1) / static_cast<T>(N);
    head_sums(y, hs, C, N);
    for (int64_t h = 0; h < C / N; ++h) hs[h] *= inv_n;
    spread(hs, mean, C, N);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) tmp[c] = (y[c] - mean[c]) * (y[c] - mean[c]);
    head_sums(tmp, hs, C, N);
    for (int64_t h = 0; h < C / N; ++h)
        hs[h] = T(1) / std::sqrt(hs[h] * inv_n + static_cast<T>(eps));
    spread(hs, rstd, C, N);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) tmp[c] = in.r[o + c] * in.k[o + c] * in.rk[c];
    head_sums(tmp, hs, C, N);
    spread(hs, s, C, N);
}

template <class T>
void out_forward(const OutIn<T>& in, T* z, int64_t rows, int64_t C, int64_t N, double eps) {
#pragma omp parallel if (rows * C > kParallelMin)
    {
        std::vector<T> buf(static_cast<size_t>(5 * C));
        T *mean = buf.data(), *rstd = mean + C, *s = rstd + C, *tmp = s + C, *hs = tmp + C;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t o = r * C;
            out_stats(in, o, C, N, eps, mean, rstd, s, tmp, hs);
            const T *y = in.y + o, *v = in.v + o, *g = in.g + o;
            T* zo = z + o;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c)
                zo[c] = ((y[c] - mean[c]) * rstd[c] * in.lw[c] + in.lb[c] + s[c] * v[c]) * g[c];
        }
    }
}

template <class T>
struct OutGrads {
    const T* gz;                // rows
    T *dy, *dr, *dk, *dv, *dg;  // rows
    T *drk, *dlw, *dlb;         // (C); null where not needed
};

enum OutParam : int64_t { kOrk, kOlw, kOlb, kOutParams };

template <class T>
void out_backward(const OutIn<T>& in, const OutGrads<T>& g, int64_t rows, int64_t C, int64_t N,
                  double eps) {
    const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
    std::vector<T> part(static_cast<size_t>(chunks * kOutParams * C), T(0));
    const T inv_n = T(1) / static_cast<T>(N);
#pragma omp parallel if (rows * C > kParallelMin)
    {
        std::vector<T> buf(static_cast<size_t>(13 * C));
        T *mean = buf.data(), *rstd = mean + C, *s = rstd + C, *tmp = s + C, *yh = tmp + C,
          *dyh = yh + C, *t1 = dyh + C, *t2 = t1 + C, *ds = t2 + C, *m1 = ds + C, *m2 = m1 + C,
          *hs = m2 + C;
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < chunks; ++ch) {
            T* prk = part.data() + (ch * kOutParams + kOrk) * C;
            T* plw = part.data() + (ch * kOutParams + kOlw) * C;
            T* plb = part.data() + (ch * kOutParams + kOlb) * C;
            for (int64_t r = ch * kRowChunk; r < std::min(rows, (ch + 1) * kRowChunk); ++r) {
                const int64_t o = r * C;
                out_stats(in, o, C, N, eps, mean, rstd, s, tmp, hs);
                const T *y = in.y + o, *v = in.v + o, *gg = in.g + o, *gz = g.gz + o,
                        *rr = in.r + o, *kk = in.k + o;
                T *dg = g.dg + o, *dv = g.dv + o, *dy = g.dy + o, *dr = g.dr + o, *dk = g.dk + o;
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) {
                    const T h = (y[c] - mean[c]) * rstd[c];
                    const T dp = gz[c] * gg[c];  // gradient of ln_x(y) + s v
                    dg[c] = gz[c] * (h * in.lw[c] + in.lb[c] + s[c] * v[c]);
                    dv[c] = dp * s[c];
                    t1[c] = dp * v[c];
                    plw[c] += dp * h;
                    plb[c] += dp;
                    const T d = dp * in.lw[c];
                    yh[c] = h;
                    dyh[c] = d;
                    t2[c] = d * h;
                }
                head_sums(t1, hs, C, N);
                spread(hs, ds, C, N);
                head_sums(dyh, hs, C, N);
                spread(hs, m1, C, N);
                head_sums(t2, hs, C, N);
                spread(hs, m2, C, N);
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) {
                    dy[c] = rstd[c] * (dyh[c] - m1[c] * inv_n - yh[c] * m2[c] * inv_n);
                    dr[c] = ds[c] * kk[c] * in.rk[c];
                    dk[c] = ds[c] * rr[c] * in.rk[c];
                    prk[c] += ds[c] * rr[c] * kk[c];
                }
            }
        }
    }
    sum_chunk_parts(part, chunks, C, {g.drk, g.dlw, g.dlb});
}

// ---- lstm_cell -------------------------------------------------------------------------------

inline float tanh_of(float x) { return fast_math::tanh(x); }
inline double tanh_of(double x) { return std::tanh(x); }

template <class T>
void lstm_forward(const T* gates, const T* cp, T* h, T* c, int64_t B, int64_t C) {
#pragma omp parallel for schedule(static) if (B * C > kParallelMin)
    for (int64_t b = 0; b < B; ++b) {
        const T* g = gates + b * 4 * C;
        const T* cpb = cp + b * C;
#pragma omp simd
        for (int64_t j = 0; j < C; ++j) {
            const T i = fast_math::sigmoid(g[j]), f = fast_math::sigmoid(g[C + j]),
                    gg = tanh_of(g[2 * C + j]), o = fast_math::sigmoid(g[3 * C + j]);
            const T cn = f * cpb[j] + i * gg;
            c[b * C + j] = cn;
            h[b * C + j] = o * tanh_of(cn);
        }
    }
}

// dgates (B, 4C) and dc_prev (B, C) from dh and dc (the gradients of h and c).
template <class T>
void lstm_backward(const T* gates, const T* cp, const T* dh, const T* dc, T* dgates, T* dcp,
                   int64_t B, int64_t C) {
#pragma omp parallel for schedule(static) if (B * C > kParallelMin)
    for (int64_t b = 0; b < B; ++b) {
        const T* g = gates + b * 4 * C;
        T* dg = dgates + b * 4 * C;
        const int64_t o0 = b * C;
#pragma omp simd
        for (int64_t j = 0; j < C; ++j) {
            const T i = fast_math::sigmoid(g[j]), f = fast_math::sigmoid(g[C + j]),
                    gg = tanh_of(g[2 * C + j]), o = fast_math::sigmoid(g[3 * C + j]);
            const T cn = f * cp[o0 + j] + i * gg;
            const T tc = tanh_of(cn);
            const T dct = dc[o0 + j] + dh[o0 + j] * o * (T(1) - tc * tc);
            dg[j] = dct * gg * i * (T(1) - i);
            dg[C + j] = dct * cp[o0 + j] * f * (T(1) - f);
            dg[2 * C + j] = dct * i * (T(1) - gg * gg);
            dg[3 * C + j] = dh[o0 + j] * tc * o * (T(1) - o);
            dcp[o0 + j] = dct * f;
        }
    }
}

template <class T>
std::vector<const T*> ptrs(const std::vector<Tensor>& ts) {
    std::vector<const T*> p;
    for (const Tensor& t : ts) p.push_back(t.defined() ? t.data<T>() : nullptr);
    return p;
}

// token_mix's gradients on the CPU backend from one gradient per mix (packed, f32 or f64).
TokenMixGrads token_mix_grads_cpu(const Tensor& xv, const Tensor& pv,
                                  const std::vector<Tensor>& muv, const std::vector<Tensor>& gs,
                                  bool need_x) {
    const int64_t B = xv.size(0), Tn = xv.size(1), C = xv.size(2);
    const auto M = muv.size();
    TokenMixGrads r;
    if (need_x) r.dx = Tensor::empty(xv.shape(), xv.dtype());
    if (pv.defined()) r.dprev = Tensor::empty(pv.shape(), pv.dtype());
    for (size_t m = 0; m < M; ++m) r.dmu.push_back(Tensor::empty(muv[m].shape(), xv.dtype()));
    auto run = [&](auto tag) {
        using T = decltype(tag);
        std::vector<T*> d;
        for (Tensor& t : r.dmu) d.push_back(t.data<T>());
        token_mix_backward<T>(xv.data<T>(), pv.defined() ? pv.data<T>() : nullptr, ptrs<T>(muv),
                              ptrs<T>(gs), need_x ? r.dx.data<T>() : nullptr,
                              pv.defined() ? r.dprev.data<T>() : nullptr, d, B, Tn, C);
    };
    if (xv.dtype() == DType::f32)
        run(float{});
    else if (xv.dtype() == DType::f64)
        run(double{});
    else
        fail("token_mix backward: x must be f32 or f64, got {}", xv.desc());
    return r;
}

}  // namespace

std::vector<Var> token_mix(const Var& x, const Var& prev, const std::vector<Var>& mu) {
    if (!x.defined() || x.ndim() != 3) fail("token_mix: x must be (B, T, C)");
    const int64_t B = x.size(0), Tn = x.size(1), C = x.size(2);
#ifdef GOOSE_CUDA
    if (on_cuda(x)) return token_mix_cuda(x, prev, mu);
#endif
    if (!fast(x)) {
        const Var shifted = ag::token_shift(x, prev);
        std::vector<Var> out;
        for (const Var& w : mu) out.push_back(ag::lerp(x, shifted, w));
        return out;
    }
    const DType dt = x.dtype();
    auto check = [&](const Tensor& t, const Shape& s, const char* what) {
        if (t.shape() != s || t.dtype() != dt)
            fail("token_mix: {} must be {}{}, got {}", what, dtype_name(dt), s.str(), t.desc());
    };
    if (prev.defined()) check(prev.value(), Shape{B, C}, "prev");
    std::vector<Tensor> muv;
    for (const Var& w : mu) {
        check(w.value(), Shape{1, 1, C}, "mu");
        muv.push_back(w.value().contiguous());
    }
    const Tensor xv = x.value().contiguous();
    const Tensor pv = prev.defined() ? prev.value().contiguous() : Tensor();
    std::vector<Tensor> outs;
    for (size_t m = 0; m < mu.size(); ++m) outs.push_back(Tensor::empty(xv.shape(), dt));
    if (dt == DType::f32 || dt == DType::f64) {
        auto run = [&](auto tag) {
            using T = decltype(tag);
            std::vector<T*> o;
            for (Tensor& t : outs) o.push_back(t.data<T>());
            token_mix_forward<T>(xv.data<T>(), pv.defined() ? pv.data<T>() : nullptr,
                                 ptrs<T>(muv), o, B, Tn, C);
        };
        if (dt == DType::f32) run(float{}); else run(double{});
    } else {
        fail("token_mix: x must be f32 or f64, got {}", x.value().desc());
    }
    std::vector<Var> inputs{x, prev};
    for (const Var& w : mu) inputs.push_back(w);
    return ag::record("token_mix", std::move(inputs), std::move(outs),
                      [xv, pv, muv](GradIO& io) {
        const auto M = static_cast<int>(muv.size());
        std::vector<Tensor> gs;
        for (int m = 0; m < M; ++m) gs.push_back(io.gy(m).contiguous());
        TokenMixGrads g = token_mix_grads_cpu(xv, pv, muv, gs, io.needs(0));
        io.set(0, std::move(g.dx));
        if (pv.defined() && io.needs(1)) io.set(1, std::move(g.dprev));
        for (int m = 0; m < M; ++m)
            if (io.needs(2 + m)) io.set(2 + m, std::move(g.dmu[static_cast<size_t>(m)]));
    });
}

TokenMixGrads token_mix_backward(const Tensor& x, const Tensor& prev,
                                 const std::vector<Tensor>& mu, const std::vector<MixGrad>& grads,
                                 bool need_x) {
    if (!x.defined() || x.ndim() != 3) fail("token_mix backward: x must be (B, T, C)");
    for (const MixGrad& q : grads) {
        if (q.mix >= mu.size())
            fail("token_mix backward: a gradient of mix {} but only {} mixing vectors", q.mix,
                 mu.size());
        if (!q.g.defined() || q.g.shape() != x.shape())
            fail("token_mix backward: the gradient of mix {} must be shaped {}, got {}", q.mix,
                 x.shape().str(), q.g.defined() ? q.g.desc() : "undefined");
    }
#ifdef GOOSE_CUDA
    if (backend_of(x) == Backend::cuda) return token_mix_backward_cuda(x, prev, mu, grads, need_x);
#endif
    // each mix's gradient: its gradients added in the given order (zeros when none)
    std::vector<Tensor> gs(mu.size());
    for (const MixGrad& q : grads) {
        Tensor& acc = gs[q.mix];
        acc = acc.defined() ? ops::binary_forward(BinaryOp::add, acc, q.g) : q.g;
    }
    for (Tensor& g : gs)
        g = g.defined() ? g.contiguous() : Tensor::zeros(x.shape(), x.dtype(), x.device());
    if (backend_of(x) == Backend::cpu) {
        std::vector<Tensor> muv;
        for (const Tensor& w : mu) muv.push_back(w.contiguous());
        return token_mix_grads_cpu(x.contiguous(), prev.defined() ? prev.contiguous() : Tensor(),
                                   muv, gs, need_x);
    }
    // the reference backend: the composed ops' backward (a tape of its own)
    Var xi(x, need_x), pi = prev.defined() ? Var(prev, true) : Var();
    std::vector<Var> mui;
    for (const Tensor& w : mu) mui.emplace_back(w, true);
    const std::vector<Var> outs = token_mix(xi, pi, mui);
    ag::backward(outs, std::move(gs));
    TokenMixGrads r;
    if (need_x) r.dx = xi.grad();
    if (pi.defined()) r.dprev = pi.grad();
    for (const Var& w : mui) r.dmu.push_back(w.grad());
    return r;
}

namespace {
// A packed (rows, C) view's data or null.
template <class T>
const T* cdata(const Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}
template <class T>
T* mdata(Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}
Tensor packed(const Var& v) { return v.defined() ? v.value().contiguous() : Tensor(); }

void check_same(const char* op, const Tensor& t, const Shape& s, DType dt, const char* what) {
    if (!t.defined() || t.shape() != s || t.dtype() != dt)
        fail("{}: {} must be {}{}, got {}", op, what, dtype_name(dt), s.str(),
             t.defined() ? t.desc() : "undefined");
}

template <class F>
void dispatch(DType dt, F&& f) {
    if (dt == DType::f32)
        f(float{});
    else
        f(double{});
}
}  // namespace

Rwkv7Prep rwkv7_prep(const Var& w_lora, const Var& k_raw, const Var& v_raw, const Var& a_lora,
                     const Var& v_lora, const Var& v_first, const Var& w0, const Var& a0,
                     const Var& v0, const Var& k_k, const Var& k_a, int64_t head_size) {
    if (!k_raw.defined() || k_raw.ndim() != 3) fail("rwkv7_prep: k must be (B, T, C)");
    const int64_t B = k_raw.size(0), Tn = k_raw.size(1), C = k_raw.size(2), N = head_size;
    const bool gate = v_lora.defined();
#ifdef GOOSE_CUDA
    if (on_cuda(k_raw))
        return rwkv7_prep_cuda(w_lora, k_raw, v_raw, a_lora, v_lora, v_first, w0, a0, v0, k_k, k_a,
                               head_size);
#endif
    if (!fast(k_raw)) {
        const Shape heads{B, Tn, C / N, N}, flat{B, Tn, C};
        Rwkv7Prep p;
        p.w = ag::add(w0, w_lora);
        const Var a = ag::sigmoid(ag::add(a0, a_lora));
        const Var kk = ag::reshape(ag::l2_normalize(ag::reshape(ag::mul(k_raw, k_k), heads)), flat);
        const Var one(Tensor::scalar(1.0, k_raw.dtype()).to(k_raw.value().device()));
        p.k = ag::mul(k_raw, ag::lerp(one, a, k_a));
        p.v = gate ? ag::lerp(v_raw, v_first, ag::sigmoid(ag::add(v0, v_lora))) : v_raw;
        p.a = ag::neg(kk);
        p.b = ag::mul(kk, a);
        return p;
    }
    const DType dt = k_raw.dtype();
    const Shape flat{B, Tn, C}, vec{1, 1, C};
    const char* op = "rwkv7_prep";
    if (N < 1 || C % N != 0) fail("rwkv7_prep: C {} is not a multiple of head_size {}", C, N);
    check_same(op, w_lora.value(), flat, dt, "w_lora");
    check_same(op, v_raw.value(), flat, dt, "v_raw");
    check_same(op, a_lora.value(), flat, dt, "a_lora");
    for (auto [p, what] : {std::pair{&w0, "w0"}, {&a0, "a0"}, {&k_k, "k_k"}, {&k_a, "k_a"}})
        check_same(op, p->value(), vec, dt, what);
    if (gate) {
        check_same(op, v_lora.value(), flat, dt, "v_lora");
        check_same(op, v_first.value(), flat, dt, "v_first");
        check_same(op, v0.value(), vec, dt, "v0");
    }
    // Saved inputs (packed), shared by the forward and the backward.
    struct Saved {
        Tensor wl, kr, vr, al, vl, vf, w0, a0, v0, kk, ka;
    };
    auto sv = std::make_shared<Saved>(Saved{
        packed(w_lora), packed(k_raw), packed(v_raw), packed(a_lora),
        gate ? packed(v_lora) : Tensor(), gate ? packed(v_first) : Tensor(), packed(w0),
        packed(a0), gate ? packed(v0) : Tensor(), packed(k_k), packed(k_a)});
    std::vector<Tensor> outs;
    for (int i = 0; i < (gate ? 5 : 4); ++i) outs.push_back(Tensor::empty(flat, dt));
    // outs: w, k, a, b, [v]
    dispatch(dt, [&](auto tag) {
        using T = decltype(tag);
        const PrepIn<T> in{cdata<T>(sv->wl), cdata<T>(sv->kr), cdata<T>(sv->vr), cdata<T>(sv->al),
                           cdata<T>(sv->vl), cdata<T>(sv->vf), cdata<T>(sv->w0), cdata<T>(sv->a0),
                           cdata<T>(sv->v0), cdata<T>(sv->kk), cdata<T>(sv->ka)};
        prep_forward<T>(in, outs[0].data<T>(), outs[1].data<T>(),
                        gate ? outs[4].data<T>() : nullptr, outs[2].data<T>(), outs[3].data<T>(),
                        B * Tn, C, N);
    });
    // inputs: 0 w_lora, 1 k_raw, 2 v_raw, 3 a_lora, 4 v_lora, 5 v_first, 6 w0, 7 a0, 8 v0, 9 k_k,
    // 10 k_a
    std::vector<Var> inputs{w_lora, k_raw, v_raw, a_lora, v_lora, v_first, w0, a0, v0, k_k, k_a};
    if (!gate) inputs[4] = inputs[5] = inputs[8] = Var();
    std::vector<Var> res = ag::record(op, std::move(inputs), std::move(outs),
                                      [sv, gate, B, Tn, C, N](GradIO& io) {
        const Shape flat{B, Tn, C}, vec{1, 1, C};
        const DType dt = sv->kr.dtype();
        const Tensor gw = io.gy(0).contiguous(), gk = io.gy(1).contiguous(),
                     gaa = io.gy(2).contiguous(), gbb = io.gy(3).contiguous(),
                     gv = gate ? io.gy(4).contiguous() : Tensor();
        auto maybe = [&](int i, const Shape& s) {
            return io.needs(i) ? Tensor::empty(s, dt) : Tensor();
        };
        // Row gradients are always computed (the kernel has no branches); d w_lora = gy of w.
        Tensor dwl = gw, dkr = Tensor::empty(flat, dt), dal = Tensor::empty(flat, dt);
        Tensor dvr = gate ? Tensor::empty(flat, dt) : Tensor(),
               dvl = gate ? Tensor::empty(flat, dt) : Tensor(),
               dvf = gate ? Tensor::empty(flat, dt) : Tensor();
        Tensor dw0 = maybe(6, vec), da0 = maybe(7, vec), dv0 = gate ? maybe(8, vec) : Tensor(),
               dkk = maybe(9, vec), dka = maybe(10, vec);
        dispatch(dt, [&](auto tag) {
            using T = decltype(tag);
            const PrepIn<T> in{cdata<T>(sv->wl), cdata<T>(sv->kr), cdata<T>(sv->vr),
                               cdata<T>(sv->al), cdata<T>(sv->vl), cdata<T>(sv->vf),
                               cdata<T>(sv->w0), cdata<T>(sv->a0), cdata<T>(sv->v0),
                               cdata<T>(sv->kk), cdata<T>(sv->ka)};
            const PrepGrads<T> g{cdata<T>(gw),  cdata<T>(gk),  cdata<T>(gv),  cdata<T>(gaa),
                                 cdata<T>(gbb), mdata<T>(dkr), mdata<T>(dvr), mdata<T>(dal),
                                 mdata<T>(dvl), mdata<T>(dvf), mdata<T>(dw0), mdata<T>(da0),
                                 mdata<T>(dv0), mdata<T>(dkk), mdata<T>(dka)};
            prep_backward<T>(in, g, B * Tn, C, N);
        });
        Tensor* ds[] = {&dwl, &dkr, &dvr, &dal, &dvl, &dvf, &dw0, &da0, &dv0, &dkk, &dka};
        for (int i = 0; i < 11; ++i)
            if (ds[i]->defined()) io.set(i, std::move(*ds[i]));
    });
    Rwkv7Prep p;
    p.w = res[0];
    p.k = res[1];
    p.a = res[2];
    p.b = res[3];
    p.v = gate ? res[4] : v_raw;
    return p;
}

Rwkv7PrepWkv rwkv7_prep_wkv7(const Var& r, const Var& w_lora, const Var& k_raw, const Var& v_raw,
                             const Var& a_lora, const Var& v_lora, const Var& v_first,
                             const Var& w0, const Var& a0, const Var& v0, const Var& k_k,
                             const Var& k_a, int64_t head_size, const Var& state_in) {
#ifdef GOOSE_CUDA
    if (on_cuda(k_raw)) {
        Rwkv7PrepWkv f = rwkv7_prep_wkv7_cuda(r, w_lora, k_raw, v_raw, a_lora, v_lora, v_first, w0,
                                              a0, v0, k_k, k_a, head_size, state_in);
        if (f.y.defined()) return f;
    }
#endif
    const Rwkv7Prep p = rwkv7_prep(w_lora, k_raw, v_raw, a_lora, v_lora, v_first, w0, a0, v0, k_k,
                                   k_a, head_size);
    const ag::Wkv7Result wkv = ag::wkv7_heads(r, p.w, p.k, p.v, p.a, p.b, head_size, state_in);
    return {wkv.y, wkv.state, p.k, p.v};
}

Var rwkv7_out(const Var& y, const Var& r, const Var& k, const Var& v, const Var& r_k,
              const Var& ln_w, const Var& ln_b, const Var& g, double eps) {
    if (!r.defined() || r.ndim() != 3) fail("rwkv7_out: r must be (B, T, C)");
    if (!y.defined() || y.ndim() != 4) fail("rwkv7_out: y must be (B, T, H, N)");
    const int64_t B = r.size(0), Tn = r.size(1), C = r.size(2), H = y.size(2), N = y.size(3);
    const Shape flat{B, Tn, C}, heads{B, Tn, H, N};
#ifdef GOOSE_CUDA
    if (on_cuda(r)) return rwkv7_out_cuda(y, r, k, v, r_k, ln_w, ln_b, g, eps);
#endif
    if (!fast(r)) {
        const Var yn = ag::group_norm(ag::reshape(y, flat), static_cast<int>(H), ln_w, ln_b, eps);
        const Var bonus = ag::mul(
            ag::sum(ag::mul(ag::mul(ag::reshape(r, heads), ag::reshape(k, heads)), r_k), {3}, true),
            ag::reshape(v, heads));
        return ag::mul(ag::add(yn, ag::reshape(bonus, flat)), g);
    }
    const DType dt = r.dtype();
    const char* op = "rwkv7_out";
    check_same(op, y.value(), heads, dt, "y");
    if (H * N != C) fail("rwkv7_out: y {} does not match r {}", y.value().desc(), r.value().desc());
    check_same(op, k.value(), flat, dt, "k");
    check_same(op, v.value(), flat, dt, "v");
    check_same(op, g.value(), flat, dt, "g");
    check_same(op, r_k.value(), Shape{H, N}, dt, "r_k");
    check_same(op, ln_w.value(), Shape{C}, dt, "ln_w");
    check_same(op, ln_b.value(), Shape{C}, dt, "ln_b");
    struct Saved {
        Tensor y, r, k, v, g, rk, lw, lb;
    };
    auto sv = std::make_shared<Saved>(Saved{packed(y), packed(r), packed(k), packed(v), packed(g),
                                            packed(r_k), packed(ln_w), packed(ln_b)});
    Tensor z = Tensor::empty(flat, dt);
    auto in_of = [](const Saved& s, auto tag) {
        using T = decltype(tag);
        return OutIn<T>{cdata<T>(s.y),  cdata<T>(s.r),  cdata<T>(s.k),  cdata<T>(s.v),
                        cdata<T>(s.g),  cdata<T>(s.rk), cdata<T>(s.lw), cdata<T>(s.lb)};
    };
    dispatch(dt, [&](auto tag) {
        using T = decltype(tag);
        out_forward<T>(in_of(*sv, tag), z.data<T>(), B * Tn, C, N, eps);
    });
    // inputs: 0 y, 1 r, 2 k, 3 v, 4 r_k, 5 ln_w, 6 ln_b, 7 g
    return ag::record(op, {y, r, k, v, r_k, ln_w, ln_b, g}, std::move(z),
                      [sv, in_of, B, Tn, C, N, H, eps](GradIO& io) {
        const DType dt = sv->r.dtype();
        const Shape flat{B, Tn, C};
        const Tensor gz = io.gy().contiguous();
        auto maybe = [&](int i, const Shape& s) {
            return io.needs(i) ? Tensor::empty(s, dt) : Tensor();
        };
        // Row gradients are always computed (the kernel has no branches).
        Tensor dy = Tensor::empty(Shape{B, Tn, H, N}, dt), dr = Tensor::empty(flat, dt),
               dk = Tensor::empty(flat, dt), dv = Tensor::empty(flat, dt),
               dg = Tensor::empty(flat, dt);
        Tensor drk = maybe(4, Shape{H, N}), dlw = maybe(5, Shape{C}), dlb = maybe(6, Shape{C});
        dispatch(dt, [&](auto tag) {
            using T = decltype(tag);
            const OutGrads<T> g{cdata<T>(gz),  mdata<T>(dy),  mdata<T>(dr),
                                mdata<T>(dk),  mdata<T>(dv),  mdata<T>(dg),
                                mdata<T>(drk), mdata<T>(dlw), mdata<T>(dlb)};
            out_backward<T>(in_of(*sv, tag), g, B * Tn, C, N, eps);
        });
        Tensor* ds[] = {&dy, &dr, &dk, &dv, &drk, &dlw, &dlb, &dg};
        for (int i = 0; i < 8; ++i)
            if (ds[i]->defined()) io.set(i, std::move(*ds[i]));
    });
}

AddNorm add_layer_norm(const Var& x, const Var& a, const Var& w, const Var& b, double eps) {
#ifdef GOOSE_CUDA
    if (on_cuda(x)) {
        AddNorm r = add_layer_norm_cuda(x, a, w, b, eps);
        if (r.sum.defined()) return r;
    }
#endif
    const Var sum = ag::add(x, a);
    return {sum, ag::layer_norm(sum, w, b, eps)};
}

AddNormMix add_layer_norm_mix(const Var& x, const Var& a, const Var& w, const Var& b, double eps,
                              const Var& mu, const Var& prev) {
#ifdef GOOSE_CUDA
    if (on_cuda(x)) {
        AddNormMix r = add_layer_norm_mix_cuda(x, a, w, b, eps, mu, prev);
        if (r.sum.defined()) return r;
    }
#endif
    const AddNorm n = add_layer_norm(x, a, w, b, eps);
    return {n.sum, token_mix(n.normed, prev, {mu})[0]};
}

LstmCell lstm_cell(const Var& gates, const Var& c_prev) {
    if (!gates.defined() || gates.ndim() != 2 || gates.size(1) % 4 != 0)
        fail("lstm_cell: gates must be (B, 4C), got {}",
             gates.defined() ? gates.value().desc() : "undefined");
    const int64_t B = gates.size(0), C = gates.size(1) / 4;
    if (!fast(gates)) {
        const std::vector<Var> q = ag::split(gates, {C, C, C, C}, 1);  // i, f, g, o
        LstmCell r;
        r.c = ag::add(ag::mul(ag::sigmoid(q[1]), c_prev),
                      ag::mul(ag::sigmoid(q[0]), ag::tanh(q[2])));
        r.h = ag::mul(ag::sigmoid(q[3]), ag::tanh(r.c));
        return r;
    }
    const DType dt = gates.dtype();
    check_same("lstm_cell", c_prev.value(), Shape{B, C}, dt, "c_prev");
    const Tensor gv = packed(gates), cv = packed(c_prev);
    std::vector<Tensor> outs{Tensor::empty(Shape{B, C}, dt), Tensor::empty(Shape{B, C}, dt)};
    dispatch(dt, [&](auto tag) {
        using T = decltype(tag);
        lstm_forward<T>(gv.data<T>(), cv.data<T>(), outs[0].data<T>(), outs[1].data<T>(), B, C);
    });
    std::vector<Var> res =
        ag::record("lstm_cell", {gates, c_prev}, std::move(outs), [gv, cv, B, C](GradIO& io) {
            const DType dt = gv.dtype();
            const Tensor dh = io.gy(0).contiguous(), dc = io.gy(1).contiguous();
            Tensor dg = Tensor::empty(Shape{B, 4 * C}, dt), dcp = Tensor::empty(Shape{B, C}, dt);
            dispatch(dt, [&](auto tag) {
                using T = decltype(tag);
                lstm_backward<T>(gv.data<T>(), cv.data<T>(), dh.data<T>(), dc.data<T>(),
                                 dg.data<T>(), dcp.data<T>(), B, C);
            });
            io.set(0, std::move(dg));
            io.set(1, std::move(dcp));
        });
    return {res[0], res[1]};
}

}  // namespace goose::models::fused
