// ICL gradient-descent baseline: a fresh 2-layer ReLU net (d -> hidden -> 1) per prompt and
// position, trained by Adam on the MSE of minibatches of the earlier examples (spec §4.2).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "goose/core/error.h"
#include "goose/core/rng.h"
#include "icl/baselines_common.h"

namespace goose::icl::detail {
namespace {

// Adam (PyTorch defaults: betas 0.9, 0.999, eps 1e-8, no weight decay) over one flat vector.
struct Adam {
    std::vector<double> m, v;
    double lr;
    int64_t t = 0;
    Adam(size_t size, double lr_) : m(size, 0.0), v(size, 0.0), lr(lr_) {}
    void step(std::vector<double>& w, const std::vector<double>& g) {
        constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-8;
        ++t;
        const double c1 = 1 - std::pow(b1, double(t)), c2 = 1 - std::pow(b2, double(t));
        for (size_t k = 0; k < w.size(); ++k) {
            m[k] = b1 * m[k] + (1 - b1) * g[k];
            v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k];
            w[k] -= lr * (m[k] / c1) / (std::sqrt(v[k] / c2) + eps);
        }
    }
};

// Parameters packed in one vector: W1 (h, d), b1 (h), W2 (h), b2 (1). PyTorch's nn.Linear
// default init: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
class NnGd final : public PromptBaseline {
public:
    explicit NnGd(const BaselineOptions& o)
        : hidden_(o.nn_hidden), steps_(o.nn_steps), lr_(o.nn_lr), batch_(o.nn_batch),
          seed_(o.seed) {
        GOOSE_CHECK(hidden_ > 0 && steps_ >= 0 && lr_ > 0 && batch_ > 0,
                    "icl baseline nn_gd: need nn_hidden > 0, nn_steps >= 0, nn_lr > 0, nn_batch "
                    "> 0, got {}, {}, {}, {}", hidden_, steps_, lr_, batch_);
    }
    std::string name() const override { return "nn_gd"; }

protected:
    void predict_prompt(const Prompt& p, double* out) const override {
        for (int64_t i = 1; i < p.n; ++i) {
            Rng rng = Rng(seed_, "icl.nn_gd").fork(fmt::format("{}/{}", p.b, i));
            out[i] = fit_and_predict(p, i, rng);
        }
    }

private:
    double fit_and_predict(const Prompt& p, int64_t m, Rng& rng) const {
        const int64_t d = p.d, h = hidden_;
        const int64_t o_b1 = h * d, o_w2 = o_b1 + h, o_b2 = o_w2 + h, size = o_b2 + 1;
        std::vector<double> w(static_cast<size_t>(size)), g(static_cast<size_t>(size));
        const double k1 = 1.0 / std::sqrt(double(d)), k2 = 1.0 / std::sqrt(double(h));
        for (int64_t k = 0; k < o_w2; ++k) w[k] = (2 * rng.uniform() - 1) * k1;
        for (int64_t k = o_w2; k < size; ++k) w[k] = (2 * rng.uniform() - 1) * k2;
        Adam adam(w.size(), lr_);
        const int64_t bs = std::min(m, batch_);
        std::vector<int64_t> perm(static_cast<size_t>(m));
        std::vector<double> hid(static_cast<size_t>(h));
        for (int64_t step = 0; step < steps_; ++step) {
            // Minibatch without replacement: a partial Fisher-Yates shuffle (all rows if m <= bs).
            std::iota(perm.begin(), perm.end(), 0);
            if (bs < m)
                for (int64_t t = 0; t < bs; ++t) std::swap(perm[t], perm[rng.randint(t, m)]);
            std::fill(g.begin(), g.end(), 0.0);
            for (int64_t t = 0; t < bs; ++t) {
                const double* x = p.row(perm[t]);
                double pred = w[o_b2];
                for (int64_t u = 0; u < h; ++u) {
                    const double a = w[o_b1 + u] + dot(w.data() + u * d, x, d);
                    hid[u] = a > 0 ? a : 0.0;
                    pred += w[o_w2 + u] * hid[u];
                }
                const double dpred = 2.0 * (pred - p.y[perm[t]]) / double(bs);  // d mean sq err
                g[o_b2] += dpred;
                for (int64_t u = 0; u < h; ++u) {
                    if (hid[u] <= 0) continue;  // ReLU gradient 0 at 0, as PyTorch
                    g[o_w2 + u] += dpred * hid[u];
                    const double da = dpred * w[o_w2 + u];
                    g[o_b1 + u] += da;
                    double* gw = g.data() + u * d;
                    for (int64_t k = 0; k < d; ++k) gw[k] += da * x[k];
                }
            }
            adam.step(w, g);
        }
        const double* q = p.row(m);
        double pred = w[o_b2];
        for (int64_t u = 0; u < h; ++u) {
            const double a = w[o_b1 + u] + dot(w.data() + u * d, q, d);
            pred += w[o_w2 + u] * (a > 0 ? a : 0.0);
        }
        return pred;
    }

    int64_t hidden_, steps_;
    double lr_;
    int64_t batch_;
    uint64_t seed_;
};

}  // namespace

std::unique_ptr<Baseline> make_nn_gd(const BaselineOptions& o) {
    return std::make_unique<NnGd>(o);
}

}  // namespace goose::icl::detail
