// ICL baselines: the factory, argument checks and the parallel loop over prompts.
#include "goose/icl/baselines.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <vector>

#include "goose/core/error.h"
#include "icl/baselines_common.h"

namespace goose::icl {

Baseline::~Baseline() = default;

const std::vector<std::string>& baseline_names() {
    static const std::vector<std::string> names = {"least_squares", "ridge", "averaging",
                                                   "knn3",          "lasso", "nn_gd",
                                                   "tree",          "xgboost", "zero"};
    return names;
}

namespace {
// The number after `prefix` in a parametrised baseline name; the whole rest must parse.
template <class T>
T parse_suffix(const std::string& name, const char* prefix) {
    const std::string rest = name.substr(std::strlen(prefix));
    T v{};
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    if (rest.empty() || ec != std::errc() || end != rest.data() + rest.size())
        fail("make_baseline: '{}': '{}' is not a number (e.g. lasso_alpha_0.01, tree_depth_4)",
             name, rest);
    return v;
}
}  // namespace

std::unique_ptr<Baseline> make_baseline(const std::string& name, const BaselineOptions& o) {
    using namespace detail;
    if (name == "least_squares") return make_least_squares();
    if (name == "ridge") return make_ridge(o);
    if (name == "averaging") return make_averaging();
    if (name == "knn3") return make_knn3();
    if (name == "lasso") return make_lasso(o);
    if (name == "nn_gd") return make_nn_gd(o);
    if (name == "tree") return make_tree(o);
    if (name == "xgboost") return make_xgboost(o);
    if (name == "zero") return make_zero();
    // Parametrised names (several settings side by side in one evaluation).
    if (name.starts_with("lasso_alpha_")) {
        BaselineOptions p = o;
        p.lasso_alpha = parse_suffix<double>(name, "lasso_alpha_");
        if (!(p.lasso_alpha > 0) || !std::isfinite(p.lasso_alpha))
            fail("make_baseline: '{}': the Lasso alpha must be > 0", name);
        return make_lasso(p);
    }
    if (name.starts_with("tree_depth_")) {
        BaselineOptions p = o;
        p.tree_max_depth = parse_suffix<int>(name, "tree_depth_");
        if (p.tree_max_depth < 1) fail("make_baseline: '{}': the tree depth must be >= 1", name);
        return make_tree(p);
    }
    fail("make_baseline: unknown baseline '{}'; valid names: {}, lasso_alpha_<A> (e.g. "
         "lasso_alpha_0.01), tree_depth_<D> (e.g. tree_depth_4)",
         name, fmt::join(baseline_names(), ", "));
}

std::string lasso_baseline_name(double alpha) { return fmt::format("lasso_alpha_{}", alpha); }

std::string tree_baseline_name(int max_depth) {
    return max_depth < 0 ? std::string("tree") : fmt::format("tree_depth_{}", max_depth);
}

namespace detail {

double dot(const double* a, const double* b, int64_t d) {
    double s = 0;
    for (int64_t k = 0; k < d; ++k) s += a[k] * b[k];
    return s;
}

Tensor PromptBaseline::predict(const Tensor& xs, const Tensor& ys) const {
    const std::string op = "icl baseline " + name();
    GOOSE_CHECK(xs.defined() && ys.defined(), "{}: undefined input tensor", op);
    GOOSE_CHECK(xs.ndim() == 3 && ys.ndim() == 2 && xs.size(0) == ys.size(0) &&
                    xs.size(1) == ys.size(1),
                "{}: expected xs (B, n, d) and ys (B, n), got xs {} and ys {}", op, xs.desc(),
                ys.desc());
    auto is_float = [](DType t) { return t == DType::f32 || t == DType::f64; };
    GOOSE_CHECK(is_float(xs.dtype()) && is_float(ys.dtype()),
                "{}: xs and ys must be f32 or f64, got xs {} and ys {}", op, xs.desc(), ys.desc());
    const int64_t B = xs.size(0), n = xs.size(1), d = xs.size(2);
    const std::vector<double> x = xs.to_vector();  // (B, n, d)
    const std::vector<double> y = ys.to_vector();  // (B, n)
    std::vector<double> out(static_cast<size_t>(B * n), 0.0);  // (B, n)
    std::vector<std::exception_ptr> errors(static_cast<size_t>(B));
#pragma omp parallel for schedule(dynamic, 1) if (B > 1)
    for (int64_t b = 0; b < B; ++b) {
        try {
            const Prompt p{x.data() + b * n * d, y.data() + b * n, n, d, b};
            predict_prompt(p, out.data() + b * n);
            if (n > 0) out[static_cast<size_t>(b * n)] = 0.0;  // no examples: the zero estimator
        } catch (...) {
            errors[static_cast<size_t>(b)] = std::current_exception();
        }
    }
    for (const auto& e : errors)
        if (e) std::rethrow_exception(e);
    return Tensor::from({B, n}, out, ys.dtype());
}

}  // namespace detail
}  // namespace goose::icl
