// ICL evaluation (spec icl_function_classes §5): per-position normalised errors of any predictor
// on the evaluation suite, bootstrap curves, metrics.json / CSV files.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "goose/core/tensor.h"
#include "goose/icl/baselines.h"
#include "goose/icl/tasks.h"

namespace goose::icl {

// xs (B, n, d), ys (B, n) -> predictions (B, n); position i may use only examples < i and the
// query xs[:, i] (baselines do; trained models must).
using Predictor = std::function<Tensor(const Tensor& xs, const Tensor& ys)>;

// One curve over positions k = 0..n-1 (k = in-context examples before the query): the mean
// over prompts and its 5th / 95th bootstrap percentiles.
struct Curve {
    std::vector<int64_t> k;
    std::vector<double> mean, lo, hi;
};

// errors: prompts x positions (every row the same length). mean = plain mean over prompts; the
// band resamples the prompts with replacement `bootstrap` times (the same resample for every
// position, as the original) and keeps the sorted means at floor(0.05·R) and floor(0.95·R).
// bootstrap = 0 gives lo = hi = mean. Empty or ragged input is goose::Error.
Curve aggregate(const std::vector<std::vector<double>>& errors, int bootstrap = 1000,
                uint64_t seed = 0);

// setting -> predictor name -> curve.
using EvalResults = std::map<std::string, std::map<std::string, Curve>>;

struct EvalConfig {
    TaskConfig task;
    int64_t n_dims = 0, n_points = 0;
    int64_t num_prompts = 1280;  // the last batch is smaller when batch does not divide it
    int64_t batch = 64;
    uint64_t seed = 0;
    int bootstrap = 1000;
    bool progress = true;  // one progress line per batch on stderr
};

// The settings valid for a task, in suite order (§5.2): "standard" for every task; for
// linear_regression also random_quadrants, orthogonal_train_test, overlapping_train_test,
// half_subspace, skewed, scale-x=S and scale-y=S for S in kEvalScales (printed "{:g}":
// 0.333, 0.5, 2, 3) and noisyLR; for relu_2nn_regression also "linear_regression" (the
// relu-trained model on linear-regression prompts).
std::vector<std::string> eval_settings(const TaskConfig& task);

// Runs every predictor on the same prompts: batch b of setting s draws its xs and functions from
// Rng(seed, "icl_eval").fork(s).fork("batch b"); the setting's covariance (half_subspace, skewed)
// is drawn once from Rng(seed, "icl_eval").fork(s).fork("transformation").
// Error per (prompt, position): squared error / task_normaliser(task, d); for
// linear_classification the 0/1 error of sign(prediction) against y in {-1, +1} (sign(0) = 0
// counts as wrong, so the zero estimator scores 1), not divided by anything.
// random_quadrants / orthogonal_train_test / overlapping_train_test score position i on the
// sequence [P[:i], Q[i:]] (the original's prompting strategy), which costs n predictor calls per
// batch, each kept at its position i only, as the original.
// settings empty = eval_settings(cfg.task). Unknown settings, duplicate predictor names and
// predictions that are not (B, n) are goose::Error.
EvalResults evaluate(const EvalConfig& cfg,
                     const std::vector<std::pair<std::string, Predictor>>& predictors,
                     const std::vector<std::string>& settings);

// The Lasso alphas of §4.2, each a baseline of its own for sparse linear regression.
inline constexpr double kLassoAlphas[] = {1, 0.1, 0.01, 0.001, 0.0001};

// The baselines of §4.3 for a task, as make_baseline names (which are also the metric names),
// plus "zero":
//   linear_regression (and noisy, quadratic): least_squares, knn3, averaging
//   linear_classification: knn3, averaging
//   sparse_linear_regression: least_squares, knn3, averaging, lasso_alpha_1, lasso_alpha_0.1,
//     lasso_alpha_0.01 (the plotted one), lasso_alpha_0.001, lasso_alpha_0.0001
//   relu_2nn_regression: least_squares, knn3, averaging, nn_gd
//   decision_tree: least_squares, knn3, tree_depth_4, tree (max_depth None, the plotted one),
//     xgboost, averaging
std::vector<std::string> default_baselines(const TaskConfig& task);

// Predictors wrapping make_baseline(name, options), named by `name`.
std::vector<std::pair<std::string, Predictor>> baseline_predictors(
    const std::vector<std::string>& names, const BaselineOptions& options = {});

// {"task": T, "n_dims": d, "n_points": n,
//  "curves": {SETTING: {NAME: {"k": [...], "mean": [...], "lo": [...], "hi": [...]}}}}
// written atomically. Non-finite values are written as null.
void write_metrics_json(const std::string& path, const std::string& task, int64_t n_dims,
                        int64_t n_points, const EvalResults& results);

// The curves of a metrics.json (null reads as NaN). Unreadable files, malformed JSON and a wrong
// shape (missing "curves", arrays of different lengths, ...) are goose::Error naming the path.
EvalResults read_metrics_json(const std::string& path);

// CSV with header setting,name,k,mean,lo,hi, one row per (setting, name, k); written atomically.
void write_curves_csv(const std::string& path, const EvalResults& results);

}  // namespace goose::icl
