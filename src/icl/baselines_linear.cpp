// ICL linear baselines: minimum-norm least squares (LAPACK gelsd), ridge (LAPACK posv) and
// averaging (the mean of y_j x_j).
#include <lapacke.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "goose/core/error.h"
#include "icl/baselines_common.h"

namespace goose::icl::detail {
namespace {

// w = argmin ||X w - y|| of minimum norm, X (m, d) row-major: LAPACK dgelsd (SVD), singular
// values below rcond * s_max treated as zero, rcond = eps * max(m, d) (torch.linalg.lstsq's
// default).
class LeastSquares final : public PromptBaseline {
public:
    std::string name() const override { return "least_squares"; }

protected:
    void predict_prompt(const Prompt& p, double* out) const override {
        const int64_t d = p.d;
        std::vector<double> a, rhs, s(static_cast<size_t>(d));
        for (int64_t i = 1; i < p.n; ++i) {
            const int64_t m = i, ld = std::max(m, d);
            a.assign(p.x, p.x + m * d);                        // (m, d), destroyed by gelsd
            rhs.assign(static_cast<size_t>(ld), 0.0);          // (max(m, d), 1)
            std::copy(p.y, p.y + m, rhs.begin());
            const double rcond = std::numeric_limits<double>::epsilon() * double(ld);
            lapack_int rank = 0;
            const lapack_int info = LAPACKE_dgelsd(
                LAPACK_ROW_MAJOR, lapack_int(m), lapack_int(d), 1, a.data(), lapack_int(d),
                rhs.data(), 1, s.data(), rcond, &rank);
            GOOSE_CHECK(info == 0, "icl baseline least_squares: LAPACKE_dgelsd failed (info {}) "
                        "at prompt {} position {}", info, p.b, i);
            out[i] = dot(p.row(i), rhs.data(), d);  // rhs[:d] holds w
        }
    }
};

// w = (X^T X + alpha I)^{-1} X^T y (LAPACK dposv, Cholesky), no intercept. The Gram matrix and
// X^T y grow by one rank-1 term per position.
class Ridge final : public PromptBaseline {
public:
    explicit Ridge(double alpha) : alpha_(alpha) {
        GOOSE_CHECK(alpha > 0, "icl baseline ridge: ridge_alpha must be > 0, got {}", alpha);
    }
    std::string name() const override { return "ridge"; }

protected:
    void predict_prompt(const Prompt& p, double* out) const override {
        const int64_t d = p.d;
        std::vector<double> gram(static_cast<size_t>(d * d), 0.0), xty(static_cast<size_t>(d));
        std::vector<double> a, w;
        for (int64_t i = 1; i < p.n; ++i) {
            const double* xj = p.row(i - 1);
            for (int64_t r = 0; r < d; ++r) {
                for (int64_t c = 0; c < d; ++c) gram[r * d + c] += xj[r] * xj[c];
                xty[r] += xj[r] * p.y[i - 1];
            }
            a = gram;
            for (int64_t r = 0; r < d; ++r) a[r * d + r] += alpha_;
            w = xty;
            const lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', lapack_int(d), 1,
                                                  a.data(), lapack_int(d), w.data(), 1);
            GOOSE_CHECK(info == 0, "icl baseline ridge: LAPACKE_dposv failed (info {}) at prompt "
                        "{} position {}", info, p.b, i);
            out[i] = dot(p.row(i), w.data(), d);
        }
    }

private:
    double alpha_;
};

// w = (1/i) sum_{j<i} y_j x_j, kept as a running sum.
class Averaging final : public PromptBaseline {
public:
    std::string name() const override { return "averaging"; }

protected:
    void predict_prompt(const Prompt& p, double* out) const override {
        std::vector<double> sum(static_cast<size_t>(p.d), 0.0);
        for (int64_t i = 1; i < p.n; ++i) {
            const double* xj = p.row(i - 1);
            for (int64_t k = 0; k < p.d; ++k) sum[k] += p.y[i - 1] * xj[k];
            out[i] = dot(p.row(i), sum.data(), p.d) / double(i);
        }
    }
};

}  // namespace

std::unique_ptr<Baseline> make_least_squares() { return std::make_unique<LeastSquares>(); }
std::unique_ptr<Baseline> make_ridge(const BaselineOptions& o) {
    return std::make_unique<Ridge>(o.ridge_alpha);
}
std::unique_ptr<Baseline> make_averaging() { return std::make_unique<Averaging>(); }

}  // namespace goose::icl::detail
