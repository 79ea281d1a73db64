// The evaluation data shifts of the linear-regression suite (spec §5.2, [ICL] build_evals).
// Prompt/query pairs: the model's sequence for position i is [P[:i], Q[i:]] and it is scored at
// i only. The transformation builders give the (d, d) `scale` of sample_xs; like the original,
// draw one per evaluation config and share it across that config's batches.
#pragma once
#include <cstdint>

#include "goose/core/rng.h"
#include "goose/core/tensor.h"

namespace goose::icl {

// Prompt points P and query points Q, both (B, n, d) f32.
struct PromptQueryXs {
    Tensor prompts;
    Tensor queries;
};

// random_quadrants: x standard Gaussian; P = |x| ⊙ s with one random ±1 pattern s (d) per
// prompt, so all of a prompt's points lie in one orthant; Q = x (random orthants).
PromptQueryXs random_quadrants(int64_t batch, int64_t n_points, int64_t n_dims, Rng& rng);

// orthogonal_train_test: P = x; for i < min(n, d), Qᵢ = xᵢ minus its projection onto
// span(x₀..x_{i-1}), rescaled to ‖xᵢ‖; for i >= min(n, d), Qᵢ = 0 (as the original).
PromptQueryXs orthogonal_train_test(int64_t batch, int64_t n_points, int64_t n_dims, Rng& rng);

// overlapping_train_test: P = x; Q₀ = x₀, and for i >= 1, Qᵢ = x_j with j uniform in [0, i)
// (a copy of one of the earlier prompt points).
PromptQueryXs overlapping_train_test(int64_t batch, int64_t n_points, int64_t n_dims, Rng& rng);

// half_subspace: t = U·diag(1 on floor(d/2) directions, 0 elsewhere)·Uᵀ, normalised, so x = z·t
// lies in a random d/2-dimensional subspace with E‖x‖² = d. (d, d) f64; d >= 2.
Tensor half_subspace_transformation(int64_t n_dims, Rng& rng);

// skewed: eigenvalues 1/(i+1), i = 0..d-1, normalised so that E‖x‖² = d. (d, d) f64.
Tensor skewed_transformation(int64_t n_dims, Rng& rng);

// scale-x=s: t = U·(s·I)·Uᵀ = s·I exactly, so x <- s·x (built directly: no draw). (d, d) f64.
Tensor scale_x_transformation(int64_t n_dims, double s);

// The scale-x factors and scale-y factors of the suite: 0.333, 0.5, 2, 3.
inline constexpr double kEvalScales[] = {0.333, 0.5, 2.0, 3.0};

}  // namespace goose::icl
