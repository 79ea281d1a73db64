// Shared machinery of the ICL baselines: input checks, prompts unpacked to double, the OpenMP
// loop over prompts, and the per-family factories.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "goose/icl/baselines.h"

namespace goose::icl::detail {

// One prompt, packed row-major in double: x (n, d), y (n).
struct Prompt {
    const double* x;
    const double* y;
    int64_t n;
    int64_t d;
    int64_t b;  // index of the prompt in the batch (seeds per-prompt random streams)
    const double* row(int64_t j) const { return x + j * d; }
};

// A baseline that fills the n predictions of one prompt at a time. predict() checks the
// arguments, converts to double, runs prompts in parallel and sets position 0 to exactly 0.
class PromptBaseline : public Baseline {
public:
    Tensor predict(const Tensor& xs, const Tensor& ys) const final;

protected:
    // out[i] for i in [1, n): the prediction at position i from the rows before it.
    virtual void predict_prompt(const Prompt& p, double* out) const = 0;
};

double dot(const double* a, const double* b, int64_t d);

std::unique_ptr<Baseline> make_least_squares();
std::unique_ptr<Baseline> make_ridge(const BaselineOptions& o);
std::unique_ptr<Baseline> make_averaging();
std::unique_ptr<Baseline> make_knn3();
std::unique_ptr<Baseline> make_lasso(const BaselineOptions& o);
std::unique_ptr<Baseline> make_nn_gd(const BaselineOptions& o);
std::unique_ptr<Baseline> make_tree(const BaselineOptions& o);
std::unique_ptr<Baseline> make_xgboost(const BaselineOptions& o);
std::unique_ptr<Baseline> make_zero();

}  // namespace goose::icl::detail
