// Fast CPU causal attention in the blocked ("flash") form: a tile of queries meets the key
// tiles up to the diagonal with an online softmax (running max and sum per query), so no (T, T)
// matrix exists; the forward saves each query's log-sum-exp. The backward recomputes the
// probabilities tile by tile from it, with D[t] = gy[t]·y[t]: one pass over query tiles for dq,
// one over key tiles for dk and dv (each output row has one writer: no races, deterministic).
// OpenMP over (B, H, tile).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "goose/ops/attention.h"
#include "ops/cpu/simd.h"

namespace goose::ops {

namespace {
constexpr int64_t kQueryTile = 32;
constexpr int64_t kKeyTile = 64;
constexpr double kParallelWork = 65536;  // multiply-adds below which threads cost more

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

template <class F>
AttentionOut forward_as(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), N = q.size(3);
    const Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
    AttentionOut out{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(Shape{B, H, T}, q.dtype())};
    forward_typed<F>(qc.data<F>(), kc.data<F>(), vc.data<F>(), out.y.data<F>(), out.lse.data<F>(),
                     B * H, T, N, static_cast<F>(scale));
    return out;
}

template <class F>
AttentionGrads backward_as(const Tensor& gy, const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& y, const Tensor& lse, double scale, bool need_q,
                           bool need_k, bool need_v) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), N = q.size(3);
    const Tensor gc = gy.contiguous(), qc = q.contiguous(), kc = k.contiguous(),
                 vc = v.contiguous(), yc = y.contiguous(), lc = lse.contiguous();
    AttentionGrads g;
    if (need_q) g.q = Tensor::empty(q.shape(), q.dtype());
    Tensor dk, dv;
    if (need_k || need_v) {  // one pass makes both
        dk = Tensor::empty(q.shape(), q.dtype());
        dv = Tensor::empty(q.shape(), q.dtype());
    }
    backward_typed<F>(gc.data<F>(), qc.data<F>(), kc.data<F>(), vc.data<F>(), yc.data<F>(),
                      lc.data<F>(), need_q ? g.q.data<F>() : nullptr,
                      dk.defined() ? dk.data<F>() : nullptr, dv.defined() ? dv.data<F>() : nullptr,
                      B * H, T, N, static_cast<F>(scale));
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
