// Evaluation data shifts for linear regression (§5.2): prompt/query pairs and covariance shapes.
#include "goose/icl/eval_data.h"

#include <cmath>
#include <vector>

#include "goose/icl/sampler.h"

namespace goose::icl {
namespace {

Tensor packed_f64(const Tensor& t) { return t.to(DType::f64); }

}  // namespace

PromptQueryXs random_quadrants(int64_t batch, int64_t n_points, int64_t n_dims, Rng& rng) {
    const Tensor x = sample_xs(batch, n_points, n_dims, rng);  // (B, n, d), checks the sizes
    Tensor p = packed_f64(x).clone();
    double* pp = p.data<double>();
    std::vector<double> sign(static_cast<size_t>(n_dims));
    for (int64_t b = 0; b < batch; ++b) {
        for (auto& s : sign) s = rng.uniform() < 0.5 ? -1.0 : 1.0;
        for (int64_t i = 0; i < n_points; ++i)
            for (int64_t j = 0; j < n_dims; ++j) {
                double& v = pp[(b * n_points + i) * n_dims + j];
                v = std::fabs(v) * sign[j];
            }
    }
    return {p.to(DType::f32), x};
}

PromptQueryXs orthogonal_train_test(int64_t batch, int64_t n_points, int64_t n_dims, Rng& rng) {
    const Tensor x = sample_xs(batch, n_points, n_dims, rng);
    const Tensor xd = packed_f64(x);
    const double* xp = xd.data<double>();
    Tensor q = Tensor::zeros(Shape{batch, n_points, n_dims}, DType::f64);
    double* qp = q.data<double>();
    const int64_t m = std::min(n_points, n_dims);
    std::vector<double> basis;  // orthonormal basis of span(x₀..x_{i-1}), rows of d
    std::vector<double> v(static_cast<size_t>(n_dims));
    for (int64_t b = 0; b < batch; ++b) {
        basis.clear();
        for (int64_t i = 0; i < m; ++i) {
            const double* xi = xp + (b * n_points + i) * n_dims;
            double norm_x = 0;
            for (int64_t j = 0; j < n_dims; ++j) {
                v[j] = xi[j];
                norm_x += xi[j] * xi[j];
            }
            // Modified Gram-Schmidt, twice for stability.
            const int64_t r = static_cast<int64_t>(basis.size()) / n_dims;
            for (int pass = 0; pass < 2; ++pass)
                for (int64_t k = 0; k < r; ++k) {
                    const double* e = basis.data() + k * n_dims;
                    double dot = 0;
                    for (int64_t j = 0; j < n_dims; ++j) dot += v[j] * e[j];
                    for (int64_t j = 0; j < n_dims; ++j) v[j] -= dot * e[j];
                }
            double norm_v = 0;
            for (int64_t j = 0; j < n_dims; ++j) norm_v += v[j] * v[j];
            norm_v = std::sqrt(norm_v);
            if (!(norm_v > 1e-12 * std::sqrt(norm_x))) continue;  // xᵢ in the span: Qᵢ = 0
            const double f = std::sqrt(norm_x) / norm_v;
            for (int64_t j = 0; j < n_dims; ++j) qp[(b * n_points + i) * n_dims + j] = v[j] * f;
            // Extend the basis with the prompt point xᵢ's new direction.
            for (int64_t j = 0; j < n_dims; ++j) basis.push_back(v[j] / norm_v);
        }
    }
    return {x, q.to(DType::f32)};
}

PromptQueryXs overlapping_train_test(int64_t batch, int64_t n_points, int64_t n_dims, Rng& rng) {
    const Tensor x = sample_xs(batch, n_points, n_dims, rng);
    Tensor q = x.clone();
    float* qp = q.data<float>();
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t i = 1; i < n_points; ++i) {
            const int64_t j = rng.randint(0, i);
            for (int64_t c = 0; c < n_dims; ++c)
                qp[(b * n_points + i) * n_dims + c] = qp[(b * n_points + j) * n_dims + c];
        }
    return {x, q};
}

Tensor half_subspace_transformation(int64_t n_dims, Rng& rng) {
    if (n_dims < 2) fail("half_subspace_transformation: n_dims must be >= 2, got {}", n_dims);
    std::vector<double> eig(static_cast<size_t>(n_dims), 0.0);
    for (int64_t i = 0; i < n_dims / 2; ++i) eig[i] = 1.0;
    return sample_transformation(n_dims, eig, true, rng);
}

Tensor skewed_transformation(int64_t n_dims, Rng& rng) {
    if (n_dims < 1) fail("skewed_transformation: n_dims must be >= 1, got {}", n_dims);
    std::vector<double> eig(static_cast<size_t>(n_dims));
    for (int64_t i = 0; i < n_dims; ++i) eig[i] = 1.0 / static_cast<double>(i + 1);
    return sample_transformation(n_dims, eig, true, rng);
}

Tensor scale_x_transformation(int64_t n_dims, double s) {
    if (n_dims < 1) fail("scale_x_transformation: n_dims must be >= 1, got {}", n_dims);
    Tensor t = Tensor::zeros(Shape{n_dims, n_dims}, DType::f64);
    for (int64_t i = 0; i < n_dims; ++i) t.data<double>()[i * n_dims + i] = s;
    return t;
}

}  // namespace goose::icl
