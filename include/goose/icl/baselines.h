// In-context-learning baselines (spec icl_function_classes.md §4): estimators that predict y at
// position i of a prompt from the examples before it only.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "goose/core/tensor.h"

namespace goose::icl {

// Options of every baseline; each reads only its own fields.
struct BaselineOptions {
    // ridge: minimises ||y - Xw||^2 + alpha_ridge * ||w||^2 (scikit-learn Ridge's convention and
    // default alpha = 1). Must be > 0.
    double ridge_alpha = 1.0;
    // lasso: minimises (1/(2i)) ||y - Xw||^2 + lasso_alpha * ||w||_1 without intercept (the
    // spec's plotted alpha = 0.01; the sweep is {1, 0.1, 0.01, 0.001, 0.0001}).
    double lasso_alpha = 0.01;
    double lasso_tol = 1e-4;        // scikit-learn's tol (coordinate-update and duality-gap test)
    int64_t lasso_max_iter = 100000;
    // tree: maximum depth; -1 = unlimited (the curve the paper plots); 4 is the other setting.
    int tree_max_depth = -1;
    // nn_gd: 2-layer ReLU net trained by Adam from scratch at every position (spec §4.2).
    int64_t nn_hidden = 100;
    int64_t nn_steps = 100;
    double nn_lr = 5e-3;
    int64_t nn_batch = 100;   // minibatch min(i, nn_batch), without replacement
    uint64_t seed = 0;        // nn_gd: initialisation and minibatches (reproducible)
    // xgboost: boosting rounds (XGBRegressor's n_estimators default).
    int64_t xgb_rounds = 100;
};

class Baseline {
public:
    virtual ~Baseline();
    // The name used in metrics.json: least_squares, ridge, averaging, knn3, lasso, nn_gd, tree,
    // xgboost, zero.
    virtual std::string name() const = 0;
    // xs (B, n, d) and ys (B, n), f32 or f64, any strides -> predictions (B, n) of ys' dtype.
    // Position i is predicted from xs[:, :i], ys[:, :i] and the query xs[:, i]; 0 at i = 0.
    // Prompts run in parallel (OpenMP over B); math in double.
    virtual Tensor predict(const Tensor& xs, const Tensor& ys) const = 0;
};

// The names make_baseline accepts, in the order above.
const std::vector<std::string>& baseline_names();

// A baseline by name; unknown names throw goose::Error listing the valid ones. Besides
// baseline_names(), two parametrised forms put several settings side by side in one evaluation
// (their metric name is the name given): lasso_alpha_<A> = lasso with lasso_alpha = A (e.g.
// lasso_alpha_0.01; A as fmt "{}" prints it, see lasso_baseline_name) and tree_depth_<D> = tree
// with tree_max_depth = D >= 1 (e.g. tree_depth_4; plain "tree" is the unlimited one).
std::unique_ptr<Baseline> make_baseline(const std::string& name,
                                        const BaselineOptions& options = {});

// The parametrised names: lasso_baseline_name(0.01) = "lasso_alpha_0.01",
// tree_baseline_name(4) = "tree_depth_4", tree_baseline_name(-1) = "tree".
std::string lasso_baseline_name(double alpha);
std::string tree_baseline_name(int max_depth);

}  // namespace goose::icl
