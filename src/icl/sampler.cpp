// Gaussian x sampler, per-prompt seeded mode, and random orthogonal transformations (§1.1).
#include "goose/icl/sampler.h"

#include <lapacke.h>

#include <cmath>
#include <span>

namespace goose::icl {
namespace {

void check_sizes(const char* op, int64_t n_points, int64_t n_dims, int64_t n_dims_truncated) {
    if (n_points < 1) fail("{}: n_points must be >= 1, got {}", op, n_points);
    if (n_dims < 1) fail("{}: n_dims must be >= 1, got {}", op, n_dims);
    if (n_dims_truncated != -1 && (n_dims_truncated < 0 || n_dims_truncated > n_dims))
        fail("{}: n_dims_truncated must be -1 or in [0, n_dims = {}], got {}", op, n_dims,
             n_dims_truncated);
}

// The optional scale (d, d) and bias (d) as packed f64 (empty when undefined).
std::vector<double> matrix_arg(const char* op, const char* name, const Tensor& t, int64_t d,
                               bool square) {
    if (!t.defined()) return {};
    const Shape want = square ? Shape{d, d} : Shape{d};
    if (t.shape() != want)
        fail("{}: {} must have shape {} for n_dims = {}, got {}", op, name, want.str(), d,
             t.desc());
    if (!dtype_is_float(t.dtype()))
        fail("{}: {} must be a float tensor, got {}", op, name, t.desc());
    return t.to_vector();
}

// Maps the z block (rows of d) in place to z·scale + bias with the tail zeroed.
void transform_rows(std::span<double> z, int64_t d, const std::vector<double>& scale,
                    const std::vector<double>& bias, int64_t keep) {
    const int64_t rows = static_cast<int64_t>(z.size()) / d;
    std::vector<double> tmp(static_cast<size_t>(d));
    for (int64_t r = 0; r < rows; ++r) {
        double* x = z.data() + r * d;
        if (!scale.empty()) {
            for (int64_t j = 0; j < d; ++j) {
                double acc = 0;
                for (int64_t k = 0; k < d; ++k) acc += x[k] * scale[k * d + j];
                tmp[j] = acc;
            }
            for (int64_t j = 0; j < d; ++j) x[j] = tmp[j];
        }
        if (!bias.empty())
            for (int64_t j = 0; j < d; ++j) x[j] += bias[j];
        for (int64_t j = keep; j < d; ++j) x[j] = 0;
    }
}

}  // namespace

Tensor sample_xs(int64_t batch, int64_t n_points, int64_t n_dims, Rng& rng,
                 int64_t n_dims_truncated, const Tensor& scale, const Tensor& bias) {
    const char* op = "sample_xs";
    if (batch < 1) fail("{}: batch must be >= 1, got {}", op, batch);
    check_sizes(op, n_points, n_dims, n_dims_truncated);
    const auto s = matrix_arg(op, "scale", scale, n_dims, true);
    const auto b = matrix_arg(op, "bias", bias, n_dims, false);
    Tensor z = Tensor::randn(Shape{batch, n_points, n_dims}, rng, DType::f64);  // (B, n, d)
    transform_rows(std::span<double>(z.data<double>(), static_cast<size_t>(z.numel())), n_dims, s,
                   b, n_dims_truncated < 0 ? n_dims : n_dims_truncated);
    return z.to(DType::f32);
}

Tensor sample_xs_seeded(const std::vector<uint64_t>& seeds, int64_t n_points, int64_t n_dims,
                        int64_t n_dims_truncated, const Tensor& scale, const Tensor& bias) {
    const char* op = "sample_xs_seeded";
    if (seeds.empty()) fail("{}: seeds must not be empty", op);
    check_sizes(op, n_points, n_dims, n_dims_truncated);
    const auto s = matrix_arg(op, "scale", scale, n_dims, true);
    const auto b = matrix_arg(op, "bias", bias, n_dims, false);
    const auto batch = static_cast<int64_t>(seeds.size());
    Tensor z = Tensor::empty(Shape{batch, n_points, n_dims}, DType::f64);  // (B, n, d)
    const size_t block = static_cast<size_t>(n_points * n_dims);
    for (int64_t i = 0; i < batch; ++i) {
        Rng rng(seeds[static_cast<size_t>(i)], "xs");
        std::span<double> blk(z.data<double>() + i * n_points * n_dims, block);
        rng.fill_normal(blk);
        transform_rows(blk, n_dims, s, b, n_dims_truncated < 0 ? n_dims : n_dims_truncated);
    }
    return z.to(DType::f32);
}

Tensor random_orthogonal(int64_t d, Rng& rng) {
    if (d < 1) fail("random_orthogonal: d must be >= 1, got {}", d);
    std::vector<double> a(static_cast<size_t>(d * d));  // column-major A(i, j) = a[j * d + i]
    rng.fill_normal(a);
    std::vector<double> tau(static_cast<size_t>(d));
    const auto di = static_cast<lapack_int>(d);
    lapack_int info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, di, di, a.data(), di, tau.data());
    GOOSE_ASSERT(info == 0, "LAPACKE_dgeqrf failed: info {}", info);
    std::vector<double> sign(static_cast<size_t>(d));  // sign(diag R): makes Q Haar
    for (int64_t j = 0; j < d; ++j) sign[j] = a[j * d + j] < 0 ? -1.0 : 1.0;
    info = LAPACKE_dorgqr(LAPACK_COL_MAJOR, di, di, di, a.data(), di, tau.data());
    GOOSE_ASSERT(info == 0, "LAPACKE_dorgqr failed: info {}", info);
    Tensor q = Tensor::empty(Shape{d, d}, DType::f64);  // row-major
    double* o = q.data<double>();
    for (int64_t j = 0; j < d; ++j)
        for (int64_t i = 0; i < d; ++i) o[i * d + j] = a[j * d + i] * sign[j];
    return q;
}

Tensor sample_transformation(int64_t d, const std::vector<double>& eigenvalues, bool normalize,
                             Rng& rng) {
    const char* op = "sample_transformation";
    if (d < 1) fail("{}: d must be >= 1, got {}", op, d);
    if (static_cast<int64_t>(eigenvalues.size()) != d)
        fail("{}: eigenvalues must have d = {} entries, got {}", op, d, eigenvalues.size());
    double sum_sq = 0;
    for (double e : eigenvalues) sum_sq += e * e;
    if (normalize && !(sum_sq > 0))
        fail("{}: cannot normalize: all eigenvalues are zero", op);
    const double factor = normalize ? std::sqrt(static_cast<double>(d) / sum_sq) : 1.0;
    const Tensor u = random_orthogonal(d, rng);  // (d, d)
    const double* up = u.data<double>();
    Tensor t = Tensor::empty(Shape{d, d}, DType::f64);
    double* tp = t.data<double>();
    for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < d; ++j) {
            double acc = 0;
            for (int64_t k = 0; k < d; ++k) acc += up[i * d + k] * eigenvalues[k] * up[j * d + k];
            tp[i * d + j] = acc * factor;
        }
    return t;
}

}  // namespace goose::icl
