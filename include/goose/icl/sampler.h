// The x sampler of the ICL lab (spec icl_function_classes §1.1): Gaussian prompts x = z·scale + bias
// with the curriculum's zeroed tail, a per-prompt seeded mode, and random covariance shapes.
#pragma once
#include <cstdint>
#include <vector>

#include "goose/core/rng.h"
#include "goose/core/tensor.h"

namespace goose::icl {

// (B, n, d) f32 prompts: z ~ N(0, 1) iid, x = z·scale + bias (scale (d, d), bias (d); either may
// be undefined), then coordinates [n_dims_truncated, d) set to 0 (-1 = keep all d).
// The draws come from `rng` in row-major (b, i, j) order. Errors (goose::Error) name the field.
Tensor sample_xs(int64_t batch, int64_t n_points, int64_t n_dims, Rng& rng,
                 int64_t n_dims_truncated = -1, const Tensor& scale = {}, const Tensor& bias = {});

// Finite-data mode: prompt b draws its (n, d) block from Rng(seeds[b], "xs") alone, so it
// depends only on seeds[b] (not on the other seeds or the batch). B = seeds.size().
Tensor sample_xs_seeded(const std::vector<uint64_t>& seeds, int64_t n_points, int64_t n_dims,
                        int64_t n_dims_truncated = -1, const Tensor& scale = {},
                        const Tensor& bias = {});

// A random orthogonal (d, d) matrix, Haar distributed: Q of the QR of a Gaussian matrix with the
// columns' signs fixed by sign(diag R). f64.
Tensor random_orthogonal(int64_t d, Rng& rng);

// t = U·diag(eigenvalues)·Uᵀ (d, d) f64 with U = random_orthogonal(d, rng); when `normalize`,
// t is multiplied by sqrt(d / Σ eigᵢ²) so that E‖z·t‖² = d. eigenvalues.size() must be d.
// (The original takes U from an SVD; a Haar U from QR has the same distribution.)
Tensor sample_transformation(int64_t d, const std::vector<double>& eigenvalues, bool normalize,
                             Rng& rng);

}  // namespace goose::icl
