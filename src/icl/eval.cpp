// ICL evaluation: bootstrap aggregation, the evaluation suite loop and the baseline predictors.
#include "goose/icl/eval.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include "goose/core/error.h"
#include "goose/core/rng.h"
#include "goose/icl/eval_data.h"
#include "goose/icl/sampler.h"

namespace goose::icl {
namespace {

std::string scale_setting(const char* prefix, double s) {
    return fmt::format("{}={:g}", prefix, s);
}

// What one setting changes: the task, the x covariance, or a prompt/query pair generator.
struct SettingPlan {
    TaskConfig task;
    Tensor x_scale;  // (d, d) or undefined
    PromptQueryXs (*pairs)(int64_t, int64_t, int64_t, Rng&) = nullptr;
};

SettingPlan plan_setting(const EvalConfig& cfg, const std::string& setting, const Rng& base) {
    SettingPlan p{cfg.task, {}, nullptr};
    Rng trng = base.fork(setting).fork("transformation");
    const int64_t d = cfg.n_dims;
    if (setting == "standard") return p;
    if (setting == "random_quadrants") p.pairs = random_quadrants;
    else if (setting == "orthogonal_train_test") p.pairs = orthogonal_train_test;
    else if (setting == "overlapping_train_test") p.pairs = overlapping_train_test;
    else if (setting == "half_subspace") p.x_scale = half_subspace_transformation(d, trng);
    else if (setting == "skewed") p.x_scale = skewed_transformation(d, trng);
    else if (setting == "noisyLR") {
        p.task.name = "noisy_linear_regression";
        p.task.noise_std = 1;
        p.task.renormalize_ys = true;
    } else if (setting == "linear_regression") {
        p.task = TaskConfig{};
        p.task.name = "linear_regression";
    } else {
        bool found = false;
        for (double s : kEvalScales) {
            if (setting == scale_setting("scale-x", s)) {
                p.x_scale = scale_x_transformation(d, s);
                found = true;
            } else if (setting == scale_setting("scale-y", s)) {
                p.task.scale = s;
                found = true;
            }
        }
        GOOSE_CHECK(found, "evaluate: setting '{}' has no plan", setting);
    }
    return p;
}

// Per-(prompt, position) errors of `pred` (B, n) against ys (B, n), appended to rows.
void score(const std::string& name, const Tensor& pred, const std::vector<double>& y, int64_t B,
           int64_t n, bool classification, double norm, int64_t only_pos,
           std::vector<std::vector<double>>& rows, size_t row0) {
    GOOSE_CHECK(pred.defined() && pred.ndim() == 2 && pred.size(0) == B && pred.size(1) == n,
                "evaluate: predictor '{}' must return (B, n) = ({}, {}) predictions, got {}",
                name, B, n, pred.defined() ? pred.desc() : std::string("undefined"));
    const std::vector<double> p = pred.to(Device::cpu()).to_vector();  // models may run on GPU
    for (int64_t b = 0; b < B; ++b) {
        auto& row = rows[row0 + static_cast<size_t>(b)];
        for (int64_t i = 0; i < n; ++i) {
            if (only_pos >= 0 && i != only_pos) continue;
            const double pv = p[b * n + i], yv = y[b * n + i];
            double e;
            if (classification) {
                const double s = pv > 0 ? 1.0 : (pv < 0 ? -1.0 : 0.0);
                e = (s == yv) ? 0.0 : 1.0;
                if (std::isnan(pv)) e = 1.0;
            } else {
                e = (pv - yv) * (pv - yv) / norm;
            }
            row[static_cast<size_t>(i)] = e;
        }
    }
}

// Sequence [P[:i], Q[i:]] (B, n, d) f32 and its ys.
Tensor splice(const Tensor& p, const Tensor& q, int64_t i) {
    const int64_t B = p.size(0), n = p.size(1), d = p.size(2);
    Tensor out = q.clone();
    const float* pp = p.data<float>();
    float* op = out.data<float>();
    for (int64_t b = 0; b < B; ++b)
        std::memcpy(op + b * n * d, pp + b * n * d, static_cast<size_t>(i * d) * sizeof(float));
    return out;
}

Tensor splice_ys(const Tensor& yp, const Tensor& yq, int64_t i) {
    const int64_t B = yp.size(0), n = yp.size(1);
    Tensor out = yq.clone();
    const float* pp = yp.data<float>();
    float* op = out.data<float>();
    for (int64_t b = 0; b < B; ++b)
        std::memcpy(op + b * n, pp + b * n, static_cast<size_t>(i) * sizeof(float));
    return out;
}

}  // namespace

Curve aggregate(const std::vector<std::vector<double>>& errors, int bootstrap, uint64_t seed) {
    GOOSE_CHECK(!errors.empty(), "aggregate: no prompts");
    const size_t P = errors.size(), n = errors[0].size();
    for (size_t r = 0; r < P; ++r)
        GOOSE_CHECK(errors[r].size() == n, "aggregate: prompt {} has {} positions, prompt 0 has {}",
                    r, errors[r].size(), n);
    GOOSE_CHECK(bootstrap >= 0, "aggregate: bootstrap must be >= 0, got {}", bootstrap);
    Curve c;
    c.k.resize(n);
    c.mean.assign(n, 0.0);
    for (size_t i = 0; i < n; ++i) c.k[i] = static_cast<int64_t>(i);
    for (const auto& row : errors)
        for (size_t i = 0; i < n; ++i) c.mean[i] += row[i];
    for (auto& m : c.mean) m /= static_cast<double>(P);
    if (bootstrap == 0) {
        c.lo = c.hi = c.mean;
        return c;
    }
    const auto R = static_cast<size_t>(bootstrap);
    std::vector<double> means(R * n, 0.0);  // (R, n)
    Rng rng(seed, "icl_bootstrap");
    for (size_t r = 0; r < R; ++r) {
        double* m = means.data() + r * n;
        for (size_t s = 0; s < P; ++s) {
            const auto& row = errors[static_cast<size_t>(rng.randint(0, static_cast<int64_t>(P)))];
            for (size_t i = 0; i < n; ++i) m[i] += row[i];
        }
        for (size_t i = 0; i < n; ++i) m[i] /= static_cast<double>(P);
    }
    const size_t lo_at = std::min(R - 1, static_cast<size_t>(0.05 * static_cast<double>(R)));
    const size_t hi_at = std::min(R - 1, static_cast<size_t>(0.95 * static_cast<double>(R)));
    c.lo.resize(n);
    c.hi.resize(n);
    std::vector<double> col(R);
    for (size_t i = 0; i < n; ++i) {
        for (size_t r = 0; r < R; ++r) col[r] = means[r * n + i];
        std::sort(col.begin(), col.end());
        c.lo[i] = col[lo_at];
        c.hi[i] = col[hi_at];
    }
    return c;
}

std::vector<std::string> eval_settings(const TaskConfig& task) {
    std::vector<std::string> s = {"standard"};
    if (task.name == "relu_2nn_regression") s.push_back("linear_regression");
    if (task.name != "linear_regression") return s;
    for (const char* n : {"random_quadrants", "orthogonal_train_test", "overlapping_train_test",
                          "half_subspace", "skewed"})
        s.push_back(n);
    for (double x : kEvalScales) s.push_back(scale_setting("scale-x", x));
    for (double x : kEvalScales) s.push_back(scale_setting("scale-y", x));
    s.push_back("noisyLR");
    return s;
}

EvalResults evaluate(const EvalConfig& cfg,
                     const std::vector<std::pair<std::string, Predictor>>& predictors,
                     const std::vector<std::string>& settings_in) {
    GOOSE_CHECK(cfg.n_dims >= 1 && cfg.n_points >= 1 && cfg.num_prompts >= 1 && cfg.batch >= 1,
                "evaluate: n_dims, n_points, num_prompts and batch must be >= 1, got {}, {}, {}, "
                "{}",
                cfg.n_dims, cfg.n_points, cfg.num_prompts, cfg.batch);
    GOOSE_CHECK(!predictors.empty(), "evaluate: no predictors");
    std::set<std::string> names;
    for (const auto& [name, fn] : predictors) {
        GOOSE_CHECK(names.insert(name).second, "evaluate: duplicate predictor name '{}'", name);
        GOOSE_CHECK(static_cast<bool>(fn), "evaluate: predictor '{}' is empty", name);
    }
    (void)task_normaliser(cfg.task, cfg.n_dims);  // validates the task config
    const std::vector<std::string> valid = eval_settings(cfg.task);
    const std::vector<std::string> settings = settings_in.empty() ? valid : settings_in;
    for (const auto& s : settings)
        GOOSE_CHECK(std::find(valid.begin(), valid.end(), s) != valid.end(),
                    "evaluate: unknown setting '{}' for task {}; valid settings: {}", s,
                    cfg.task.name, fmt::join(valid, ", "));

    const Rng base(cfg.seed, "icl_eval");
    const int64_t B_full = cfg.batch, n = cfg.n_points, d = cfg.n_dims;
    const int64_t num_batches = (cfg.num_prompts + B_full - 1) / B_full;
    const int64_t total = num_batches * static_cast<int64_t>(settings.size());
    const auto t0 = std::chrono::steady_clock::now();
    int64_t done = 0;
    EvalResults results;
    for (const auto& setting : settings) {
        const SettingPlan plan = plan_setting(cfg, setting, base);
        const bool classification = plan.task.name == "linear_classification";
        const double norm = task_normaliser(plan.task, d);
        std::vector<std::vector<std::vector<double>>> errs(
            predictors.size(),
            std::vector<std::vector<double>>(static_cast<size_t>(cfg.num_prompts),
                                             std::vector<double>(static_cast<size_t>(n), 0.0)));
        for (int64_t bi = 0; bi < num_batches; ++bi) {
            const int64_t B = std::min(B_full, cfg.num_prompts - bi * B_full);
            const auto row0 = static_cast<size_t>(bi * B_full);
            Rng rng = base.fork(setting).fork(fmt::format("batch {}", bi));
            if (plan.pairs == nullptr) {
                const Tensor xs = sample_xs(B, n, d, rng, -1, plan.x_scale);
                const auto task = make_task(plan.task, d, B, rng);
                const Tensor ys = task->evaluate(xs);
                const std::vector<double> y = ys.to_vector();
                for (size_t p = 0; p < predictors.size(); ++p)
                    score(predictors[p].first, predictors[p].second(xs, ys), y, B, n,
                          classification, norm, -1, errs[p], row0);
            } else {
                const PromptQueryXs pq = plan.pairs(B, n, d, rng);
                const Tensor P = pq.prompts.to(DType::f32), Q = pq.queries.to(DType::f32);
                const auto task = make_task(plan.task, d, B, rng);
                const Tensor yp = task->evaluate(P).to(DType::f32);
                const Tensor yq = task->evaluate(Q).to(DType::f32);
                for (int64_t i = 0; i < n; ++i) {  // n predictor calls per batch
                    const Tensor xs = splice(P, Q, i);
                    const Tensor ys = splice_ys(yp, yq, i);
                    const std::vector<double> y = ys.to_vector();
                    for (size_t p = 0; p < predictors.size(); ++p)
                        score(predictors[p].first, predictors[p].second(xs, ys), y, B, n,
                              classification, norm, i, errs[p], row0);
                }
            }
            ++done;
            if (cfg.progress) {
                const double secs = std::chrono::duration<double>(
                                        std::chrono::steady_clock::now() - t0)
                                        .count();
                const double rate = static_cast<double>(done) / std::max(secs, 1e-9);
                std::fprintf(stderr, "icl eval %s: batch %lld/%lld, %.2f batches/s, ETA %.0f s\n",
                             setting.c_str(), static_cast<long long>(bi + 1),
                             static_cast<long long>(num_batches), rate,
                             static_cast<double>(total - done) / rate);
            }
        }
        for (size_t p = 0; p < predictors.size(); ++p)
            results[setting][predictors[p].first] = aggregate(errs[p], cfg.bootstrap, cfg.seed);
    }
    return results;
}

std::vector<std::string> default_baselines(const TaskConfig& task) {
    const std::string& t = task.name;
    std::vector<std::string> b;
    if (t == "linear_classification") b = {"knn3", "averaging"};
    else if (t == "sparse_linear_regression") {
        b = {"least_squares", "knn3", "averaging"};
        for (double alpha : kLassoAlphas) b.push_back(lasso_baseline_name(alpha));
    } else if (t == "relu_2nn_regression")
        b = {"least_squares", "knn3", "averaging", "nn_gd"};
    else if (t == "decision_tree")
        b = {"least_squares", "knn3", tree_baseline_name(4), tree_baseline_name(-1), "xgboost",
             "averaging"};
    else if (t == "linear_regression" || t == "noisy_linear_regression" ||
             t == "quadratic_regression")
        b = {"least_squares", "knn3", "averaging"};
    else
        fail("default_baselines: unknown task '{}'; valid tasks: {}", t,
             fmt::join(task_names(), ", "));
    b.push_back("zero");
    return b;
}

std::vector<std::pair<std::string, Predictor>> baseline_predictors(
    const std::vector<std::string>& names, const BaselineOptions& options) {
    std::vector<std::pair<std::string, Predictor>> out;
    for (const auto& name : names) {
        std::shared_ptr<const Baseline> b = make_baseline(name, options);
        out.emplace_back(name,
                         [b](const Tensor& xs, const Tensor& ys) { return b->predict(xs, ys); });
    }
    return out;
}

}  // namespace goose::icl
