// Fast CPU causal attention in the blocked ("flash") form: a tile of queries meets the key
// tiles up to the diagonal with an online softmax (running max and sum per query), so no (T, T)
// matrix exists; the forward saves each query's log-sum-exp. The backward recomputes the
// probabilities tile by tile from it, with D[t] = gy[t]·y[t]: one pass over query tiles for dq,
// one over key tiles for dk and dv (each output row has one writer: no races, deterministic).
// OpenMP over (B, H, tile). Short sequences (T <= kSmallT, the ICL prompts) take a per-head
// path instead: the scores of a query against all keys at once from a transposed copy of K
// (vector loops over keys), probabilities by fast_math's exp, one pass per head for every
// gradient.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "goose/ops/attention.h"
#include "ops/cpu/fast_math.h"
#include "ops/cpu/simd.h"
#include "ops/cpu/vec.h"

namespace goose::ops {

namespace {
constexpr int64_t kQueryTile = 32;
constexpr int64_t kKeyTile = 64;
constexpr double kParallelWork = 65536;  // multiply-adds below which threads cost more
constexpr int64_t kSmallT = 64;          // sequences up to this length take the per-head path

inline float dot(const float* x, const float* y, int64_t n) {
    return simd::dot(x, y, n);
}
inline double dot(const double* x, const double* y, int64_t n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += x[i] * y[i];
    return s;
}
inline void axpy(float a, const float* x, float* y, int64_t n) {
    simd::axpy(a, x, y, n);
}
inline void axpy(double a, const double* x, double* y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

inline int64_t tiles(int64_t n, int64_t tile) {
    return (n + tile - 1) / tile;
}

// q, k, v, y (BH, T, N) packed; lse (BH, T).
template <class F>
void forward_typed(const F* q, const F* k, const F* v, F* y, F* lse, int64_t bhs, int64_t T,
                   int64_t N, F scale) {
    const int64_t qt = tiles(T, kQueryTile), tasks = bhs * qt;
    const double work = 0.5 * static_cast<double>(bhs) * static_cast<double>(T * T) * N;
#pragma omp parallel if (work > kParallelWork && tasks > 1)
    {
        std::vector<F> s(kKeyTile), m(kQueryTile), l(kQueryTile), acc(kQueryTile * N);
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t bh = task / qt, t0 = (task % qt) * kQueryTile;
            const int64_t t1 = std::min(T, t0 + kQueryTile);
            const F *qh = q + bh * T * N, *kh = k + bh * T * N, *vh = v + bh * T * N;
            std::fill(m.begin(), m.end(), -std::numeric_limits<F>::infinity());
            std::fill(l.begin(), l.end(), F(0));
            std::fill(acc.begin(), acc.end(), F(0));
            for (int64_t j0 = 0; j0 < t1; j0 += kKeyTile) {
                const int64_t j1 = std::min(j0 + kKeyTile, t1);
                for (int64_t t = std::max(t0, j0); t < t1; ++t) {  // queries that see the tile
                    const int64_t je = std::min(j1, t + 1), r = t - t0;
                    F* a = acc.data() + r * N;
                    F mx = m[r];
                    for (int64_t j = j0; j < je; ++j) {
                        s[j - j0] = scale * dot(qh + t * N, kh + j * N, N);
                        mx = std::max(mx, s[j - j0]);
                    }
                    const F c = std::exp(m[r] - mx);  // 0 for the first tile (m = -inf)
                    if (c != F(1))
                        for (int64_t n = 0; n < N; ++n) a[n] *= c;
                    F sum = l[r] * c;
                    for (int64_t j = j0; j < je; ++j) {
                        const F p = std::exp(s[j - j0] - mx);
                        sum += p;
                        axpy(p, vh + j * N, a, N);
                    }
                    m[r] = mx;
                    l[r] = sum;
                }
            }
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t r = t - t0;
                const F inv = F(1) / l[r];
                F* yr = y + (bh * T + t) * N;
                for (int64_t n = 0; n < N; ++n) yr[n] = acc[r * N + n] * inv;
                lse[bh * T + t] = m[r] + std::log(l[r]);
            }
        }
    }
}

// The probability of query t for key j and its score gradient ds = p (gy[t]·v[j] - D[t]).
template <class F>
struct Recompute {
    const F *q, *k, *v, *gy, *lse, *d;
    int64_t N;
    F scale;
    void at(int64_t t, int64_t j, F& p, F& ds) const {
        p = std::exp(scale * dot(q + t * N, k + j * N, N) - lse[t]);
        ds = p * (dot(gy + t * N, v + j * N, N) - d[t]);
    }
};

template <class F>
void backward_typed(const F* gy, const F* q, const F* k, const F* v, const F* y, const F* lse,
                    F* dq, F* dk, F* dv, int64_t bhs, int64_t T, int64_t N, F scale) {
    const double work = 0.5 * static_cast<double>(bhs) * static_cast<double>(T * T) * N;
    const bool par = work > kParallelWork;
    std::vector<F> d(static_cast<size_t>(bhs * T));  // D[t] = gy[t]·y[t] (BH, T)
#pragma omp parallel for schedule(static) if (par)
    for (int64_t i = 0; i < bhs * T; ++i) d[static_cast<size_t>(i)] = dot(gy + i * N, y + i * N, N);

    if (dq) {  // dq[t] = scale sum_{j <= t} ds[t][j] k[j], per query tile
        const int64_t qt = tiles(T, kQueryTile), tasks = bhs * qt;
#pragma omp parallel for schedule(dynamic) if (par && tasks > 1)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t bh = task / qt, t0 = (task % qt) * kQueryTile;
            const int64_t t1 = std::min(T, t0 + kQueryTile), o = bh * T * N;
            const Recompute<F> rc{q + o, k + o, v + o, gy + o, lse + bh * T, d.data() + bh * T,
                                  N,     scale};
            std::fill(dq + o + t0 * N, dq + o + t1 * N, F(0));
            for (int64_t j0 = 0; j0 < t1; j0 += kKeyTile) {
                const int64_t j1 = std::min(j0 + kKeyTile, t1);
                for (int64_t t = std::max(t0, j0); t < t1; ++t)
                    for (int64_t j = j0; j < std::min(j1, t + 1); ++j) {
                        F p, ds;
                        rc.at(t, j, p, ds);
                        axpy(scale * ds, k + o + j * N, dq + o + t * N, N);
                    }
            }
        }
    }
    if (dk || dv) {  // dk[j] = scale sum_{t >= j} ds[t][j] q[t], dv[j] = sum p[t][j] gy[t]
        const int64_t kt = tiles(T, kKeyTile), tasks = bhs * kt;
#pragma omp parallel for schedule(dynamic) if (par && tasks > 1)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t bh = task / kt, j0 = (task % kt) * kKeyTile;
            const int64_t j1 = std::min(T, j0 + kKeyTile), o = bh * T * N;
            const Recompute<F> rc{q + o, k + o, v + o, gy + o, lse + bh * T, d.data() + bh * T,
                                  N,     scale};
            std::fill(dk + o + j0 * N, dk + o + j1 * N, F(0));
            std::fill(dv + o + j0 * N, dv + o + j1 * N, F(0));
            for (int64_t t = j0; t < T; ++t)
                for (int64_t j = j0; j < std::min(j1, t + 1); ++j) {
                    F p, ds;
                    rc.at(t, j, p, ds);
                    axpy(p, gy + o + t * N, dv + o + j * N, N);
                    axpy(scale * ds, q + o + t * N, dk + o + j * N, N);
                }
        }
    }
}

// ---- short sequences: one head at a time ----------------------------------------------------
// A head's matrices live in per-thread scratch padded to whole vectors: rows (T, Np) for q, k,
// v, gy, y and the gradients, (N, Tp) for Kᵀ and Vᵀ, (Tr, Tp) for scores / probabilities, with
// zeros in the padding. Every product is the micro-kernel `block_product`: 4 rows of a scalar
// operand times vectors of the other.

inline float exp_of(float x) { return fast_math::exp(x); }
inline double exp_of(double x) { return std::exp(x); }

constexpr int64_t kRows = 4;  // rows per micro-kernel call

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// c[r][:L] = alpha Σ_{kk in [k0, k1)} a(r, kk) b[kk][:L] for r < kRows, with a(r, kk) =
// a[r * ar + kk * ak] and b[kk] = b + kk * ldb (L values, a vector).
template <class F>
inline void block_product(const F* a, int64_t ar, int64_t ak, const F* b, int64_t ldb, int64_t k0,
                          int64_t k1, F* c, int64_t ldc, F alpha) {
    using V = vec::Vec<F>;
    V c0 = vec::bcast(F(0)), c1 = c0, c2 = c0, c3 = c0;
    for (int64_t kk = k0; kk < k1; ++kk) {
        const V bv = vec::load(b + kk * ldb);
        const F* ak_ = a + kk * ak;
        c0 = vec::fma(vec::bcast(ak_[0]), bv, c0);
        c1 = vec::fma(vec::bcast(ak_[ar]), bv, c1);
        c2 = vec::fma(vec::bcast(ak_[2 * ar]), bv, c2);
        c3 = vec::fma(vec::bcast(ak_[3 * ar]), bv, c3);
    }
    const V va = vec::bcast(alpha);
    vec::store(c, vec::mul(c0, va));
    vec::store(c + ldc, vec::mul(c1, va));
    vec::store(c + 2 * ldc, vec::mul(c2, va));
    vec::store(c + 3 * ldc, vec::mul(c3, va));
}

// A (B, H, T, N) operand with unit stride along N: head (b, h)'s row t starts at
// p + b sb + h sh + t st.
template <class F>
struct HeadView {
    const F* p;
    int64_t sb, sh, st;
    const F* head(int64_t bh, int64_t H) const { return p + (bh / H) * sb + (bh % H) * sh; }
};

template <class F>
HeadView<F> head_view(const Tensor& x) {
    return {x.data<F>(), x.strides()[0], x.strides()[1], x.strides()[2]};
}

template <class F>
struct HeadScratch {
    int64_t T, N, Tp, Np, Tr;
    std::vector<F> q, k, v, g, y, kt, vt, p, ds, dq, dk, dv, inv;
    HeadScratch(int64_t t, int64_t n)
        : T(t), N(n), Tp(round_up(t, vec::lanes<F>)), Np(round_up(n, vec::lanes<F>)),
          Tr(round_up(t, kRows)) {
        for (auto* x : {&q, &k, &v, &g, &y, &dq, &dk, &dv})
            x->assign(static_cast<size_t>(Tr * Np), F(0));
        for (auto* x : {&kt, &vt}) x->assign(static_cast<size_t>(N * Tp), F(0));
        for (auto* x : {&p, &ds}) x->assign(static_cast<size_t>(Tr * Tp), F(0));
        inv.assign(static_cast<size_t>(Tr), F(0));
    }
    // Rows t of src (st apart, unit stride within) -> rows Np apart in `rows` (padding and rows
    // past T stay zero); optionally also its transpose (N, Tp) in `cols`.
    void load(const F* src, int64_t st, std::vector<F>& rows, std::vector<F>* cols = nullptr) {
        F* r = rows.data();
        if (N == Np && st == N) {
            std::copy(src, src + T * N, r);
        } else {
            for (int64_t t = 0; t < T; ++t)
                for (int64_t n = 0; n < N; ++n) r[t * Np + n] = src[t * st + n];
        }
        if (cols) {
            F* c = cols->data();
            for (int64_t n = 0; n < N; ++n)
                for (int64_t t = 0; t < T; ++t) c[n * Tp + t] = src[t * st + n];
        }
    }
    void store(const std::vector<F>& rows, F* dst) const {
        const F* r = rows.data();
        if (N == Np) {
            std::copy(r, r + T * N, dst);
            return;
        }
        for (int64_t t = 0; t < T; ++t)
            for (int64_t n = 0; n < N; ++n) dst[t * N + n] = r[t * Np + n];
    }
};

// s = scale x Kᵀ for the causal part: rows (Tr, Tp) of `s` from rows x (Np apart) and
// kt (N, Tp); key blocks past a row block's last query are skipped (left as they were).
template <class F>
void causal_scores(const HeadScratch<F>& h, const F* x, const F* kt, F scale, F* s) {
    constexpr int64_t L = vec::lanes<F>;
    for (int64_t t0 = 0; t0 < h.Tr; t0 += kRows)
        for (int64_t j0 = 0; j0 < std::min(h.Tp, t0 + kRows); j0 += L)
            block_product(x + t0 * h.Np, h.Np, int64_t(1), kt + j0, h.Tp, 0, h.N,
                          s + t0 * h.Tp + j0, h.Tp, scale);
}

inline float keep_if(bool c, float x, float alt) { return fast_math::select(c, x, alt); }
inline double keep_if(bool c, double x, double alt) { return c ? x : alt; }

// p[t][j] = exp(s[t][j] - m_t) for j <= t and 0 past the diagonal (up to Tp; the loops run over
// whole rows, masked, so that they vectorise without remainders). With lse given,
// m_t = lse[t] (p is then the softmax); else m_t = max_j s[t][j], lse[t] is written and
// h.inv[t] = 1 / Σ_j p[t][j] (p is left unnormalised).
template <class F>
void causal_probs(HeadScratch<F>& h, const F* s, F* p, F* lse, bool lse_given) {
    const F ninf = -std::numeric_limits<F>::infinity();
    for (int64_t t = 0; t < h.T; ++t) {
        const F* sr = s + t * h.Tp;
        F* pr = p + t * h.Tp;
#pragma omp simd
        for (int64_t j = 0; j < h.Tp; ++j) pr[j] = keep_if(j <= t, sr[j], ninf);
        F m = ninf;
        if (lse_given) {
            m = lse[t];
        } else {
#pragma omp simd reduction(max : m)
            for (int64_t j = 0; j < h.Tp; ++j) m = std::max(m, pr[j]);
        }
        F sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < h.Tp; ++j) {
            pr[j] = exp_of(pr[j] - m);  // exp(-inf) = 0 past the diagonal
            sum += pr[j];
        }
        if (!lse_given) {
            h.inv[static_cast<size_t>(t)] = F(1) / sum;
            lse[t] = m + std::log(sum);
        }
    }
}

// out rows = P X for causal P (rows (Tr, Tp), zero past the diagonal), X rows (Np apart).
template <class F>
void causal_apply(const HeadScratch<F>& h, const F* p, const F* x, F* out) {
    constexpr int64_t L = vec::lanes<F>;
    for (int64_t t0 = 0; t0 < h.Tr; t0 += kRows)
        for (int64_t n0 = 0; n0 < h.Np; n0 += L)
            block_product(p + t0 * h.Tp, h.Tp, int64_t(1), x + n0, h.Np, 0,
                          std::min(h.T, t0 + kRows), out + t0 * h.Np + n0, h.Np, F(1));
}

// out rows = Pᵀ X: out[j] = Σ_{t >= j} p[t][j] x[t].
template <class F>
void causal_apply_t(const HeadScratch<F>& h, const F* p, const F* x, F* out) {
    constexpr int64_t L = vec::lanes<F>;
    for (int64_t j0 = 0; j0 < h.Tr; j0 += kRows)
        for (int64_t n0 = 0; n0 < h.Np; n0 += L)
            block_product(p + j0, int64_t(1), h.Tp, x + n0, h.Np, j0, h.T, out + j0 * h.Np + n0,
                          h.Np, F(1));
}

template <class F>
void small_forward(const HeadView<F>& q, const HeadView<F>& k, const HeadView<F>& v, F* y, F* lse,
                   int64_t B, int64_t H, int64_t T, int64_t N, F scale) {
    const int64_t bhs = B * H;
    const double work = static_cast<double>(bhs) * static_cast<double>(T * T) * N;
#pragma omp parallel if (work > kParallelWork && bhs > 1)
    {
        HeadScratch<F> h(T, N);
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < bhs; ++bh) {
            h.load(q.head(bh, H), q.st, h.q);
            h.load(k.head(bh, H), k.st, h.k, &h.kt);
            h.load(v.head(bh, H), v.st, h.v);
            causal_scores(h, h.q.data(), h.kt.data(), scale, h.ds.data());
            causal_probs(h, h.ds.data(), h.p.data(), lse + bh * T, false);
            causal_apply(h, h.p.data(), h.v.data(), h.y.data());
            for (int64_t t = 0; t < T; ++t) {  // the softmax's normalisation, per query
                F* yt = h.y.data() + t * h.Np;
                const F c = h.inv[static_cast<size_t>(t)];
#pragma omp simd
                for (int64_t n = 0; n < h.Np; ++n) yt[n] *= c;
            }
            h.store(h.y, y + bh * T * N);
        }
    }
}

// Per head: P from the saved log-sum-exp, dP = gy Vᵀ, dS = scale P (dP - D) with
// D[t] = gy[t]·y[t]; dq = dS K, dk = dSᵀ Q, dv = Pᵀ gy. Null outputs are skipped.
template <class F>
void small_backward(const HeadView<F>& gy, const HeadView<F>& q, const HeadView<F>& k,
                    const HeadView<F>& v, const F* y, const F* lse, F* dq, F* dk, F* dv, int64_t B,
                    int64_t H, int64_t T, int64_t N, F scale) {
    const int64_t bhs = B * H;
    const double work = static_cast<double>(bhs) * static_cast<double>(T * T) * N;
#pragma omp parallel if (work > kParallelWork && bhs > 1)
    {
        HeadScratch<F> h(T, N);
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < bhs; ++bh) {
            const int64_t o = bh * T * N;
            h.load(q.head(bh, H), q.st, h.q);
            h.load(k.head(bh, H), k.st, h.k, &h.kt);
            h.load(v.head(bh, H), v.st, h.v, &h.vt);
            h.load(gy.head(bh, H), gy.st, h.g);
            h.load(y + o, N, h.y);
            causal_scores(h, h.q.data(), h.kt.data(), scale, h.ds.data());
            causal_probs(h, h.ds.data(), h.p.data(), const_cast<F*>(lse + bh * T), true);
            causal_scores(h, h.g.data(), h.vt.data(), F(1), h.ds.data());  // dP = gy Vᵀ
            for (int64_t t = 0; t < T; ++t) {
                const F *gt = h.g.data() + t * h.Np, *yt = h.y.data() + t * h.Np;
                F d = 0;
#pragma omp simd reduction(+ : d)
                for (int64_t n = 0; n < h.Np; ++n) d += gt[n] * yt[n];
                F* dsr = h.ds.data() + t * h.Tp;
                const F* pr = h.p.data() + t * h.Tp;
#pragma omp simd
                for (int64_t j = 0; j < h.Tp; ++j) dsr[j] = scale * pr[j] * (dsr[j] - d);
            }
            if (dq) {
                causal_apply(h, h.ds.data(), h.k.data(), h.dq.data());
                h.store(h.dq, dq + o);
            }
            if (dk) {
                causal_apply_t(h, h.ds.data(), h.q.data(), h.dk.data());
                h.store(h.dk, dk + o);
            }
            if (dv) {
                causal_apply_t(h, h.p.data(), h.g.data(), h.dv.data());
                h.store(h.dv, dv + o);
            }
        }
    }
}

// Unit stride along N: the per-head path reads such views (the (B, T, H, N) projections of a
// model seen as (B, H, T, N)) without packing them.
bool rows_readable(const Tensor& x) { return x.strides()[3] == 1 || x.size(3) == 1; }

template <class F>
AttentionOut forward_as(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), N = q.size(3);
    AttentionOut out{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(Shape{B, H, T}, q.dtype())};
    if (T <= kSmallT) {
        auto view = [](const Tensor& x) { return rows_readable(x) ? x : x.contiguous(); };
        const Tensor qv = view(q), kv = view(k), vv = view(v);
        small_forward<F>(head_view<F>(qv), head_view<F>(kv), head_view<F>(vv), out.y.data<F>(),
                         out.lse.data<F>(), B, H, T, N, static_cast<F>(scale));
        return out;
    }
    const Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
    forward_typed<F>(qc.data<F>(), kc.data<F>(), vc.data<F>(), out.y.data<F>(), out.lse.data<F>(),
                     B * H, T, N, static_cast<F>(scale));
    return out;
}

template <class F>
AttentionGrads backward_as(const Tensor& gy, const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& y, const Tensor& lse, double scale, bool need_q,
                           bool need_k, bool need_v) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), N = q.size(3);
    AttentionGrads g;
    if (need_q) g.q = Tensor::empty(q.shape(), q.dtype());
    Tensor dk, dv;
    if (need_k || need_v) {  // one pass makes both
        dk = Tensor::empty(q.shape(), q.dtype());
        dv = Tensor::empty(q.shape(), q.dtype());
    }
    const Tensor yc = y.contiguous(), lc = lse.contiguous();
    if (T <= kSmallT) {
        auto view = [](const Tensor& x) { return rows_readable(x) ? x : x.contiguous(); };
        const Tensor gv = view(gy), qv = view(q), kv = view(k), vv = view(v);
        small_backward<F>(head_view<F>(gv), head_view<F>(qv), head_view<F>(kv), head_view<F>(vv),
                          yc.data<F>(), lc.data<F>(), need_q ? g.q.data<F>() : nullptr,
                          dk.defined() ? dk.data<F>() : nullptr,
                          dv.defined() ? dv.data<F>() : nullptr, B, H, T, N,
                          static_cast<F>(scale));
    } else {
        const Tensor gc = gy.contiguous(), qc = q.contiguous(), kc = k.contiguous(),
                     vc = v.contiguous();
        backward_typed<F>(gc.data<F>(), qc.data<F>(), kc.data<F>(), vc.data<F>(), yc.data<F>(),
                          lc.data<F>(), need_q ? g.q.data<F>() : nullptr,
                          dk.defined() ? dk.data<F>() : nullptr,
                          dv.defined() ? dv.data<F>() : nullptr, B * H, T, N,
                          static_cast<F>(scale));
    }
    if (need_k) g.k = dk;
    if (need_v) g.v = dv;
    return g;
}
}  // namespace

AttentionOut attention_forward_cpu(const Tensor& q, const Tensor& k, const Tensor& v,
                                   double scale) {
    return q.dtype() == DType::f32 ? forward_as<float>(q, k, v, scale)
                                   : forward_as<double>(q, k, v, scale);
}

AttentionGrads attention_backward_cpu(const Tensor& gy, const Tensor& q, const Tensor& k,
                                      const Tensor& v, const Tensor& y, const Tensor& lse,
                                      double scale, bool need_q, bool need_k, bool need_v) {
    return q.dtype() == DType::f32
               ? backward_as<float>(gy, q, k, v, y, lse, scale, need_q, need_k, need_v)
               : backward_as<double>(gy, q, k, v, y, lse, scale, need_q, need_k, need_v);
}

}  // namespace goose::ops
