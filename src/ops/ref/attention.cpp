// Reference causal attention: materialises the (T, T) scores and probabilities of each head,
// one element at a time, any strides, in double. Recomputes everything in the backward (the
// saved output and log-sum-exp are not used).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "goose/core/element.h"
#include "goose/ops/attention.h"

namespace goose::ops {

namespace {
// Element [b, h, t, n] of a (B, H, T, N) tensor, as double.
double at(const Tensor& x, int64_t b, int64_t h, int64_t t, int64_t n) {
    const Strides& s = x.strides();
    return load_as_double(x.raw_data(), x.dtype(), b * s[0] + h * s[1] + t * s[2] + n * s[3]);
}

// Probabilities (T, T) of head (b, h): p[t][s] = softmax over s <= t of scale q[t]·k[s]; 0 for
// s > t. Also the log-sum-exp of each row.
void probabilities(const Tensor& q, const Tensor& k, int64_t b, int64_t h, double scale,
                   std::vector<double>& p, std::vector<double>& lse) {
    const int64_t T = q.size(2), N = q.size(3);
    p.assign(static_cast<size_t>(T * T), 0.0);
    lse.assign(static_cast<size_t>(T), 0.0);
    for (int64_t t = 0; t < T; ++t) {
        double* row = p.data() + t * T;
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t s = 0; s <= t; ++s) {
            double dot = 0;
            for (int64_t n = 0; n < N; ++n) dot += at(q, b, h, t, n) * at(k, b, h, s, n);
            row[s] = scale * dot;
            m = std::max(m, row[s]);
        }
        double sum = 0;
        for (int64_t s = 0; s <= t; ++s) sum += std::exp(row[s] - m);
        for (int64_t s = 0; s <= t; ++s) row[s] = std::exp(row[s] - m) / sum;
        lse[static_cast<size_t>(t)] = m + std::log(sum);
    }
}
}  // namespace

AttentionOut attention_forward_ref(const Tensor& q, const Tensor& k, const Tensor& v,
                                   double scale) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), N = q.size(3);
    AttentionOut out{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(Shape{B, H, T}, q.dtype())};
    std::vector<double> p, lse;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
            probabilities(q, k, b, h, scale, p, lse);
            for (int64_t t = 0; t < T; ++t) {
                for (int64_t n = 0; n < N; ++n) {
                    double s = 0;
                    for (int64_t j = 0; j <= t; ++j)
                        s += p[static_cast<size_t>(t * T + j)] * at(v, b, h, j, n);
                    store_from_double(out.y.raw_data(), q.dtype(), ((b * H + h) * T + t) * N + n,
                                      s);
                }
                store_from_double(out.lse.raw_data(), q.dtype(), (b * H + h) * T + t,
                                  lse[static_cast<size_t>(t)]);
            }
        }
    return out;
}

AttentionGrads attention_backward_ref(const Tensor& gy, const Tensor& q, const Tensor& k,
                                      const Tensor& v, const Tensor& y, const Tensor& lse,
                                      double scale, bool need_q, bool need_k, bool need_v) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), N = q.size(3);
    const DType dt = q.dtype();
    AttentionGrads g;
    if (need_q) g.q = Tensor::empty(q.shape(), dt);
    if (need_k) g.k = Tensor::empty(q.shape(), dt);
    if (need_v) g.v = Tensor::empty(q.shape(), dt);
    std::vector<double> p, l, ds(static_cast<size_t>(T * T));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
            probabilities(q, k, b, h, scale, p, l);
            const int64_t base = (b * H + h) * T * N;
            // ds[t][s] = p[t][s] (dp[t][s] - sum_s' p[t][s'] dp[t][s']), dp = gy[t]·v[s]
            for (int64_t t = 0; t < T; ++t) {
                double row = 0;
                for (int64_t s = 0; s <= t; ++s) {
                    double dp = 0;
                    for (int64_t n = 0; n < N; ++n) dp += at(gy, b, h, t, n) * at(v, b, h, s, n);
                    ds[static_cast<size_t>(t * T + s)] = dp;
                    row += p[static_cast<size_t>(t * T + s)] * dp;
                }
                for (int64_t s = 0; s < T; ++s) {
                    const auto i = static_cast<size_t>(t * T + s);
                    ds[i] = s <= t ? p[i] * (ds[i] - row) : 0.0;
                }
            }
            for (int64_t t = 0; t < T; ++t)
                for (int64_t n = 0; n < N; ++n) {
                    double dq = 0, dk = 0, dv = 0;
                    for (int64_t s = 0; s < T; ++s) {
                        const auto ts = static_cast<size_t>(t * T + s),
                                   st = static_cast<size_t>(s * T + t);
                        dq += ds[ts] * at(k, b, h, s, n);  // dq[t] = scale sum_s ds[t][s] k[s]
                        dk += ds[st] * at(q, b, h, s, n);  // dk[t] = scale sum_s ds[s][t] q[s]
                        dv += p[st] * at(gy, b, h, s, n);  // dv[t] = sum_s p[s][t] gy[s]
                    }
                    const int64_t i = base + t * N + n;
                    if (need_q) store_from_double(g.q.raw_data(), dt, i, scale * dq);
                    if (need_k) store_from_double(g.k.raw_data(), dt, i, scale * dk);
                    if (need_v) store_from_double(g.v.raw_data(), dt, i, dv);
                }
        }
    return g;
}

}  // namespace goose::ops
