// ICL baselines against theory on noiseless linear regression (spec icl_function_classes.md
// §5.3), plus task-specific checks, the "only earlier examples" rule and the factory's errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "goose/core/error.h"
#include "goose/core/rng.h"
#include "goose/icl/baselines.h"

namespace goose::icl {
namespace {

// A batch of prompts: x (B, n, d) ~ N(0, I), y (B, n) from a per-prompt function of x.
struct Batch {
    int64_t B, n, d;
    std::vector<double> x, y;
    Tensor xs() const { return Tensor::from({B, n, d}, x, DType::f64); }
    Tensor ys() const { return Tensor::from({B, n}, y, DType::f64); }
    const double* row(int64_t b, int64_t i) const { return x.data() + (b * n + i) * d; }
};

using Function = std::function<double(const double*)>;

Batch make_batch(int64_t B, int64_t n, int64_t d, uint64_t seed,
                 const std::function<Function(Rng&)>& draw_function) {
    Batch t{B, n, d, std::vector<double>(static_cast<size_t>(B * n * d)),
            std::vector<double>(static_cast<size_t>(B * n))};
    Rng rng(seed, "test.icl.x");
    rng.fill_normal(t.x);
    Rng frng(seed, "test.icl.f");
    for (int64_t b = 0; b < B; ++b) {
        const Function f = draw_function(frng);
        for (int64_t i = 0; i < n; ++i) t.y[b * n + i] = f(t.row(b, i));
    }
    return t;
}

// y = x^T w, w ~ N(0, I_d); with `sparsity` > 0 only that many random coordinates are non-zero.
// The ws are appended to *ws (B, d) when given.
Batch linear_batch(int64_t B, int64_t n, int64_t d, uint64_t seed, int64_t sparsity = 0,
                   std::vector<double>* ws = nullptr) {
    return make_batch(B, n, d, seed, [d, sparsity, ws](Rng& r) {
        std::vector<double> w(static_cast<size_t>(d));
        r.fill_normal(w);
        if (sparsity > 0) {
            std::vector<int64_t> perm(static_cast<size_t>(d));
            for (int64_t k = 0; k < d; ++k) perm[k] = k;
            for (int64_t k = 0; k < d; ++k) std::swap(perm[k], perm[r.randint(k, d)]);
            for (int64_t k = sparsity; k < d; ++k) w[perm[k]] = 0;
        }
        if (ws) ws->insert(ws->end(), w.begin(), w.end());
        return Function([w](const double* x) {
            double s = 0;
            for (size_t k = 0; k < w.size(); ++k) s += w[k] * x[k];
            return s;
        });
    });
}

// Per position: the mean over prompts of (pred - y)^2 / norm, and its standard error.
struct Curve {
    std::vector<double> mean, se;
};

Curve error_curve(const Tensor& pred, const Batch& t, double norm) {
    const std::vector<double> p = pred.to_vector();
    Curve c{std::vector<double>(static_cast<size_t>(t.n)), std::vector<double>(size_t(t.n))};
    for (int64_t i = 0; i < t.n; ++i) {
        double s = 0, s2 = 0;
        for (int64_t b = 0; b < t.B; ++b) {
            const double e = std::pow(p[b * t.n + i] - t.y[b * t.n + i], 2) / norm;
            s += e;
            s2 += e * e;
        }
        const double m = s / double(t.B);
        c.mean[i] = m;
        c.se[i] = std::sqrt(std::max(0.0, s2 / double(t.B) - m * m) / double(t.B - 1));
    }
    return c;
}

Curve run(const std::string& name, const Batch& t, double norm, const BaselineOptions& o = {}) {
    return error_curve(make_baseline(name, o)->predict(t.xs(), t.ys()), t, norm);
}

constexpr int64_t kD = 8;

// Least squares: 1 - k/d for k < d. The per-prompt error (x^T P w)^2 (P: projection on the
// d - k unexplained directions) has relative std sqrt(2 + 6/(d-k)), so with 2048 prompts the
// standard error is 3.1% (k = 0) to 6.3% (k = 7) of the mean: the test allows 4 SE.
TEST(IclBaselines, LeastSquaresMatchesTheory) {
    const Batch t = linear_batch(2048, 2 * kD + 1, kD, 1);
    const Curve c = run("least_squares", t, kD);
    for (int64_t k = 0; k < kD; ++k) {
        const double theory = 1.0 - double(k) / kD;
        EXPECT_NEAR(c.mean[k], theory, 4 * c.se[k]) << "k = " << k;
        EXPECT_LT(c.se[k], 0.07 * theory) << "k = " << k;
    }
    for (int64_t k = kD; k < t.n; ++k) EXPECT_LT(c.mean[k], 1e-6) << "k = " << k;
}

// Averaging: (d + 1)/k exactly in expectation; 4 SE (and within 10%).
TEST(IclBaselines, AveragingMatchesTheory) {
    const Batch t = linear_batch(2048, 17, kD, 2);
    const Curve c = run("averaging", t, kD);
    for (int64_t k : {4, 8, 16}) {
        const double theory = double(kD + 1) / double(k);
        EXPECT_NEAR(c.mean[k], theory, 4 * c.se[k]) << "k = " << k;
        EXPECT_NEAR(c.mean[k], theory, 0.1 * theory) << "k = " << k;
    }
}

TEST(IclBaselines, ZeroIsOneAndExactlyZero) {
    const Batch t = linear_batch(2048, 9, kD, 3);
    const Tensor pred = make_baseline("zero")->predict(t.xs(), t.ys());
    for (double v : pred.to_vector()) EXPECT_EQ(v, 0.0);
    const Curve c = error_curve(pred, t, kD);
    for (int64_t k = 0; k < t.n; ++k) EXPECT_NEAR(c.mean[k], 1.0, 4 * c.se[k]) << "k = " << k;
}

TEST(IclBaselines, Knn3ErrorDecreases) {
    const Batch t = linear_batch(512, 41, kD, 4);
    const Curve c = run("knn3", t, kD);
    auto window = [&](int64_t lo, int64_t hi) {
        double s = 0;
        for (int64_t k = lo; k < hi; ++k) s += c.mean[k];
        return s / double(hi - lo);
    };
    EXPECT_NEAR(c.mean[1], 2.0, 4 * c.se[1]);  // one neighbour: E(y_0 - y_1)^2 = 2d
    EXPECT_GT(window(1, 6), window(15, 20));
    EXPECT_GT(window(15, 20), window(35, 41));
    EXPECT_LT(window(35, 41), 1.5);
}

// Ridge (alpha 1): never better than least squares (the Bayes estimator here), and better than 0.
TEST(IclBaselines, RidgeBetweenLeastSquaresAndZero) {
    const Batch t = linear_batch(512, 17, kD, 5);
    const Curve ls = run("least_squares", t, kD), ridge = run("ridge", t, kD);
    double ls_sum = 0, ridge_sum = 0;
    for (int64_t k = 1; k < t.n; ++k) {
        EXPECT_LT(ridge.mean[k], 1.0 - 0.5 * double(std::min<int64_t>(k, kD)) / kD) << k;
        ls_sum += ls.mean[k];
        ridge_sum += ridge.mean[k];
    }
    for (int64_t k = kD; k < t.n; ++k) EXPECT_GT(ridge.mean[k], ls.mean[k]);
    EXPECT_GT(ridge_sum, ls_sum);
}

// Lasso (alpha 0.01) on 2-sparse w in d = 20 from m = 10 examples (where the l1 solution is
// usually the sparse one): w_hat, read by querying basis vectors, satisfies the
// optimality conditions and (in 7 of 8 problems) has the true support. Then, in d = 8, its error (normalised by the
// sparsity) beats least squares for 3 <= k < d (with k <= 2 examples the l1 solution puts the
// weight on the wrong coordinates more often than not, and least squares is better).
TEST(IclBaselines, LassoRecoversSparseSupport) {
    constexpr int64_t d = 20, m = 10, problems = 8;
    constexpr double alpha = 0.01;
    std::vector<double> w;  // (problems, d)
    const Batch base = linear_batch(problems, m, d, 6, 2, &w);
    // Prompt (p, j): the m examples of problem p, then the query e_j: prediction = w_hat_j.
    Batch t{problems * d, m + 1, d, {}, {}};
    for (int64_t p = 0; p < problems; ++p)
        for (int64_t j = 0; j < d; ++j) {
            for (int64_t i = 0; i < m; ++i) {
                t.x.insert(t.x.end(), base.row(p, i), base.row(p, i) + d);
                t.y.push_back(base.y[p * m + i]);
            }
            for (int64_t k = 0; k < d; ++k) t.x.push_back(k == j ? 1.0 : 0.0);
            t.y.push_back(0.0);
        }
    const std::vector<double> out = make_baseline("lasso")->predict(t.xs(), t.ys()).to_vector();
    auto w_hat = [&](int64_t p, int64_t j) { return out[(p * d + j) * (m + 1) + m]; };
    int64_t recovered = 0;
    for (int64_t p = 0; p < problems; ++p) {
        bool ok = true;
        for (int64_t j = 0; j < d; ++j) {
            // Optimality of (1/(2m)) ||y - Xw||^2 + alpha ||w||_1: g = X^T (y - X w_hat) / m is
            // alpha sign(w_hat_j) where w_hat_j != 0 and within [-alpha, alpha] elsewhere (to
            // the solver's tolerance).
            double g = 0;
            for (int64_t i = 0; i < m; ++i) {
                double r = base.y[p * m + i];
                for (int64_t k = 0; k < d; ++k) r -= base.row(p, i)[k] * w_hat(p, k);
                g += base.row(p, i)[j] * r / double(m);
            }
            const double hat = w_hat(p, j), wj = w[p * d + j];
            if (hat != 0)
                EXPECT_NEAR(g / alpha, hat > 0 ? 1.0 : -1.0, 0.05) << "p " << p << " j " << j;
            else
                EXPECT_LE(std::abs(g / alpha), 1.05) << "p " << p << " j " << j;
            ok = ok && (wj != 0 ? std::abs(hat - wj) < 0.15 : std::abs(hat) < 0.05);
        }
        recovered += ok;
    }
    EXPECT_GE(recovered, problems - 1);  // recovery is likely, not certain, at m = 10

    const Batch s = linear_batch(512, kD + 1, kD, 7, 2);
    const Curve lasso = run("lasso", s, 2), ls = run("least_squares", s, 2);
    for (int64_t k = 3; k < kD; ++k) EXPECT_LT(lasso.mean[k], ls.mean[k]) << "k = " << k;
}

// A depth-2 sign tree on x_0, x_1 over points whose coordinates are +-(0.5 + U(0, 1)): the gap
// around 0 holds no point, so any split threshold in it classifies every query correctly.
Batch sign_tree_batch(int64_t B, int64_t n, int64_t d, uint64_t seed) {
    Batch t = make_batch(B, n, d, seed, [](Rng&) {
        return Function([](const double* x) {
            return x[0] > 0 ? (x[1] > 0 ? 1.0 : -1.0) : (x[1] > 0 ? 2.0 : 0.5);
        });
    });
    Rng rng(seed, "test.icl.tree");
    for (double& v : t.x) v = (v > 0 ? 1.0 : -1.0) * (0.5 + rng.uniform());
    for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < n; ++i) {
            const double* x = t.row(b, i);
            t.y[b * n + i] = x[0] > 0 ? (x[1] > 0 ? 1.0 : -1.0) : (x[1] > 0 ? 2.0 : 0.5);
        }
    return t;
}

TEST(IclBaselines, TreeFitsSignTreeExactly) {
    const Batch t = sign_tree_batch(64, 61, 4, 8);
    for (int depth : {-1, 4}) {
        BaselineOptions o;
        o.tree_max_depth = depth;
        const std::vector<double> p = make_baseline("tree", o)->predict(t.xs(), t.ys()).to_vector();
        int64_t exact = 0, total = 0;
        for (int64_t b = 0; b < t.B; ++b)
            for (int64_t i = 40; i < t.n; ++i, ++total)
                exact += p[b * t.n + i] == t.y[b * t.n + i];
        EXPECT_GE(double(exact), 0.99 * double(total)) << "max_depth " << depth;
    }
    // One example: the tree is a single leaf, the prediction that example's y.
    const std::vector<double> p = make_baseline("tree")->predict(t.xs(), t.ys()).to_vector();
    EXPECT_EQ(p[1], t.y[0]);
}

TEST(IclBaselines, XGBoostBeatsZeroOnTreeTask) {
    const Batch t = sign_tree_batch(4, 25, 4, 9);
    const Curve xgb = run("xgboost", t, 1), zero = run("zero", t, 1);
    double x_sum = 0, z_sum = 0;
    for (int64_t k = 15; k < t.n; ++k) {
        x_sum += xgb.mean[k];
        z_sum += zero.mean[k];
    }
    EXPECT_LT(x_sum, 0.5 * z_sum);
}

// y = sum_u relu(v_u^T x) with 4 units, v_u ~ N(0, I/d).
TEST(IclBaselines, NnGdBeatsZeroOnReluTask) {
    constexpr int64_t d = 4;
    const Batch t = make_batch(8, 21, d, 10, [](Rng& r) {
        std::vector<double> v(4 * d);
        r.fill_normal(v, 0, 1 / std::sqrt(double(d)));
        return Function([v](const double* x) {
            double s = 0;
            for (int64_t u = 0; u < 4; ++u) {
                double a = 0;
                for (int64_t k = 0; k < d; ++k) a += v[u * d + k] * x[k];
                s += std::max(a, 0.0);
            }
            return s;
        });
    });
    BaselineOptions o;
    o.seed = 3;
    const auto nn = make_baseline("nn_gd", o);
    const Tensor p1 = nn->predict(t.xs(), t.ys());
    EXPECT_EQ(p1.to_vector(), nn->predict(t.xs(), t.ys()).to_vector());  // reproducible
    const Curve c = error_curve(p1, t, 1), zero = run("zero", t, 1);
    double n_sum = 0, z_sum = 0;
    for (int64_t k = 10; k < t.n; ++k) {
        n_sum += c.mean[k];
        z_sum += zero.mean[k];
    }
    EXPECT_LT(n_sum, 0.5 * z_sum);
}

// Every baseline: exactly 0 at i = 0, and the prediction at i does not change when xs[:, >i]
// and ys[:, >=i] change. f32 inputs, strided (a transposed view) to exercise the packing.
TEST(IclBaselines, UseOnlyEarlierExamples) {
    constexpr int64_t B = 3, n = 9, d = 3;
    BaselineOptions o;
    o.nn_steps = 5;
    o.xgb_rounds = 5;
    Rng rng(11, "test.icl.causal");
    const Tensor xs = Tensor::randn({B, d, n}, rng).transpose(1, 2);  // (B, n, d) strided
    const Tensor ys = Tensor::randn({B, n}, rng);
    for (const std::string& name : baseline_names()) {
        const auto model = make_baseline(name, o);
        EXPECT_EQ(model->name(), name);
        const Tensor pred = model->predict(xs, ys);
        ASSERT_EQ(pred.shape(), (Shape{B, n})) << name;
        EXPECT_EQ(pred.dtype(), DType::f32) << name;
        for (int64_t b = 0; b < B; ++b) EXPECT_EQ(pred.get({b, 0}), 0.0) << name;
        for (int64_t i : {int64_t(0), int64_t(1), int64_t(4), n - 1}) {
            Tensor xs2 = xs.clone(), ys2 = ys.clone();
            for (int64_t b = 0; b < B; ++b) {
                for (int64_t j = i; j < n; ++j) {
                    ys2.set({b, j}, 100.0 + double(j));
                    if (j > i)
                        for (int64_t k = 0; k < d; ++k) xs2.set({b, j, k}, -3.0 * double(k + j));
                }
            }
            const Tensor pred2 = model->predict(xs2, ys2);
            for (int64_t b = 0; b < B; ++b)
                EXPECT_EQ(pred2.get({b, i}), pred.get({b, i})) << name << " b " << b << " i " << i;
        }
    }
}

TEST(IclBaselines, Errors) {
    try {
        make_baseline("ols");
        FAIL() << "expected goose::Error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("'ols'"), std::string::npos) << msg;
        for (const std::string& name : baseline_names())
            EXPECT_NE(msg.find(name), std::string::npos) << msg;
    }
    const auto ls = make_baseline("least_squares");
    EXPECT_THROW(ls->predict(Tensor::zeros({2, 3}), Tensor::zeros({2, 3})), Error);
    EXPECT_THROW(ls->predict(Tensor::zeros({2, 3, 4}), Tensor::zeros({2, 4})), Error);
    EXPECT_THROW(ls->predict(Tensor::zeros({2, 3, 4}, DType::i32), Tensor::zeros({2, 3})), Error);
    BaselineOptions bad;
    bad.ridge_alpha = 0;
    EXPECT_THROW(make_baseline("ridge", bad), Error);
}

}  // namespace
}  // namespace goose::icl
