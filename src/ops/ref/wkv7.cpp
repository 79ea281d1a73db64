// Reference WKV-7: the sequential recurrence in double, one (b, h) at a time; the backward
// recomputes and keeps every intermediate state, then walks time backwards (no autograd).
#include <cmath>
#include <vector>

#include "goose/core/element.h"
#include "goose/ops/wkv7.h"

namespace goose::ops {

namespace {
struct Dims4 {
    int64_t B, T, H, N;
};

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double decay_of(double w) { return std::exp(-kWkv7DecayScale * sigmoid(w)); }

// Reads element (b, t, h, n) of a (B, T, H, N) tensor of any strides.
double at4(const Tensor& x, int64_t b, int64_t t, int64_t h, int64_t n) {
    const int64_t idx[4] = {b, t, h, n};
    return load_as_double(x.raw_data(), x.dtype(), offset_of(idx, x.strides()));
}

void put4(Tensor& x, int64_t b, int64_t t, int64_t h, int64_t n, double v) {
    const int64_t idx[4] = {b, t, h, n};
    store_from_double(x.raw_data(), x.dtype(), offset_of(idx, x.strides()), v);
}

// State of (b, h) as an N x N row-major vector (value i, key j); zeros when undefined.
std::vector<double> load_state(const Tensor& s, int64_t b, int64_t h, int64_t N) {
    std::vector<double> S(static_cast<size_t>(N * N), 0.0);
    if (!s.defined()) return S;
    for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) S[static_cast<size_t>(i * N + j)] = at4(s, b, h, i, j);
    return S;
}

// One step: S <- S diag(decay) + sa bᵀ + v kᵀ, returns sa.
std::vector<double> step(std::vector<double>& S, const std::vector<double>& d,
                         const std::vector<double>& k, const std::vector<double>& v,
                         const std::vector<double>& a, const std::vector<double>& bb, int64_t N) {
    std::vector<double> sa(static_cast<size_t>(N), 0.0);
    for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) sa[i] += S[i * N + j] * a[j];
    for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j)
            S[i * N + j] = S[i * N + j] * d[j] + sa[i] * bb[j] + v[i] * k[j];
    return sa;
}

std::vector<double> row(const Tensor& x, int64_t b, int64_t t, int64_t h, int64_t N) {
    std::vector<double> out(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) out[n] = at4(x, b, t, h, n);
    return out;
}
}  // namespace

Wkv7Forward wkv7_forward_ref(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                             const Tensor& a, const Tensor& b, const Tensor& state_in) {
    const Dims4 D{r.size(0), r.size(1), r.size(2), r.size(3)};
    const int64_t N = D.N;
    Wkv7Forward out;
    out.y = Tensor::empty(r.shape(), r.dtype());
    out.state = Tensor::empty(Shape{D.B, D.H, N, N}, r.dtype());
    for (int64_t bi = 0; bi < D.B; ++bi)
        for (int64_t h = 0; h < D.H; ++h) {
            std::vector<double> S = load_state(state_in, bi, h, N);
            for (int64_t t = 0; t < D.T; ++t) {
                std::vector<double> d = row(w, bi, t, h, N);
                for (double& x : d) x = decay_of(x);
                step(S, d, row(k, bi, t, h, N), row(v, bi, t, h, N), row(a, bi, t, h, N),
                     row(b, bi, t, h, N), N);
                const std::vector<double> rr = row(r, bi, t, h, N);
                for (int64_t i = 0; i < N; ++i) {
                    double y = 0;
                    for (int64_t j = 0; j < N; ++j) y += S[i * N + j] * rr[j];
                    put4(out.y, bi, t, h, i, y);
                }
            }
            for (int64_t i = 0; i < N; ++i)
                for (int64_t j = 0; j < N; ++j) put4(out.state, bi, h, i, j, S[i * N + j]);
        }
    return out;
}

Wkv7Grads wkv7_backward_ref(const Tensor& gy, const Tensor& gstate, const Tensor& r,
                            const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a,
                            const Tensor& b, const Tensor& state_in, const Wkv7Forward&) {
    const Dims4 D{r.size(0), r.size(1), r.size(2), r.size(3)};
    const int64_t N = D.N, T = D.T;
    Wkv7Grads g;
    for (Tensor* t : {&g.r, &g.w, &g.k, &g.v, &g.a, &g.b}) *t = Tensor::zeros(r.shape(), r.dtype());
    g.state = Tensor::zeros(Shape{D.B, D.H, N, N}, r.dtype());
    for (int64_t bi = 0; bi < D.B; ++bi)
        for (int64_t h = 0; h < D.H; ++h) {
            // Forward again, keeping S before every step and every sa.
            std::vector<std::vector<double>> before(static_cast<size_t>(T)), sas(static_cast<size_t>(T));
            std::vector<double> S = load_state(state_in, bi, h, N);
            for (int64_t t = 0; t < T; ++t) {
                before[t] = S;
                std::vector<double> d = row(w, bi, t, h, N);
                for (double& x : d) x = decay_of(x);
                sas[t] = step(S, d, row(k, bi, t, h, N), row(v, bi, t, h, N), row(a, bi, t, h, N),
                              row(b, bi, t, h, N), N);
            }
            // dS: gradient with respect to the state after step t (initially the final state).
            std::vector<double> dS = load_state(gstate, bi, h, N);
            for (int64_t t = T - 1; t >= 0; --t) {
                const auto rr = row(r, bi, t, h, N), kk = row(k, bi, t, h, N),
                           vv = row(v, bi, t, h, N), aa = row(a, bi, t, h, N),
                           bb = row(b, bi, t, h, N), ww = row(w, bi, t, h, N),
                           dy = row(gy, bi, t, h, N);
                const std::vector<double>& Sp = before[t];
                const std::vector<double>& sa = sas[t];
                std::vector<double> d(static_cast<size_t>(N));
                for (int64_t j = 0; j < N; ++j) d[j] = decay_of(ww[j]);
                // S_after = Sp diag(d) + sa bᵀ + v kᵀ; y = S_after r.
                std::vector<double> Sa(static_cast<size_t>(N * N));
                for (int64_t i = 0; i < N; ++i)
                    for (int64_t j = 0; j < N; ++j)
                        Sa[i * N + j] = Sp[i * N + j] * d[j] + sa[i] * bb[j] + vv[i] * kk[j];
                for (int64_t j = 0; j < N; ++j) {
                    double s = 0;
                    for (int64_t i = 0; i < N; ++i) s += Sa[i * N + j] * dy[i];
                    put4(g.r, bi, t, h, j, s);
                }
                for (int64_t i = 0; i < N; ++i)
                    for (int64_t j = 0; j < N; ++j) dS[i * N + j] += dy[i] * rr[j];
                std::vector<double> dsa(static_cast<size_t>(N), 0.0), dprev(static_cast<size_t>(N * N));
                for (int64_t j = 0; j < N; ++j) {
                    double dd = 0, dk = 0, db = 0;
                    for (int64_t i = 0; i < N; ++i) {
                        dd += dS[i * N + j] * Sp[i * N + j];
                        dk += dS[i * N + j] * vv[i];
                        db += dS[i * N + j] * sa[i];
                    }
                    const double sg = sigmoid(ww[j]);
                    put4(g.w, bi, t, h, j, dd * d[j] * (-kWkv7DecayScale) * sg * (1 - sg));
                    put4(g.k, bi, t, h, j, dk);
                    put4(g.b, bi, t, h, j, db);
                }
                for (int64_t i = 0; i < N; ++i) {
                    double dv = 0;
                    for (int64_t j = 0; j < N; ++j) {
                        dv += dS[i * N + j] * kk[j];
                        dsa[i] += dS[i * N + j] * bb[j];
                    }
                    put4(g.v, bi, t, h, i, dv);
                }
                for (int64_t j = 0; j < N; ++j) {
                    double da = 0;
                    for (int64_t i = 0; i < N; ++i) da += dsa[i] * Sp[i * N + j];
                    put4(g.a, bi, t, h, j, da);
                }
                for (int64_t i = 0; i < N; ++i)
                    for (int64_t j = 0; j < N; ++j)
                        dprev[i * N + j] = dS[i * N + j] * d[j] + dsa[i] * aa[j];
                dS = std::move(dprev);
            }
            for (int64_t i = 0; i < N; ++i)
                for (int64_t j = 0; j < N; ++j) put4(g.state, bi, h, i, j, dS[i * N + j]);
        }
    return g;
}

}  // namespace goose::ops
