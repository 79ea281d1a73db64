// CUDA matmul and linear (cuBLASLt) against the CPU kernels: f32 tight (exact fp32, no TF32),
// f64, and bf16 (fp32 accumulation) on bf16-rounded inputs; odd shapes, transposes, batches,
// a shared b, strided views, bias, and the gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "cuda/cuda_test_util.h"
#include "goose/core/rng.h"
#include "goose/ops/matmul.h"
#include "ops/cuda/gemm_lt.h"

namespace goose {
namespace {

Tensor rand_cpu(const Shape& s, Rng& rng, DType dt = DType::f32) {
    return Tensor::randn(s, rng, DType::f32).to(dt);
}
Tensor on_gpu(const Tensor& t) {
    return t.to(Device::cuda());
}

// ‖got − want‖ / ‖want‖ over all elements (want nonzero), with NaN never passing.
double rel_err(const Tensor& got, const Tensor& want) {
    EXPECT_EQ(got.shape(), want.shape());
    const auto g = got.to(Device::cpu()).to_vector(), w = want.to(Device::cpu()).to_vector();
    double num = 0, den = 0;
    for (size_t i = 0; i < g.size(); ++i) {
        if (!std::isfinite(g[i])) return INFINITY;
        num += (g[i] - w[i]) * (g[i] - w[i]);
        den += w[i] * w[i];
    }
    return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

double tol_for(DType dt) {
    return dt == DType::f64 ? 1e-12 : dt == DType::f32 ? 2e-6 : 1e-2;
}

// matmul forward + backward on CUDA in dtype dt vs the CPU kernels in f32/f64 on the same
// (rounded) values.
void check_matmul(const Shape& sa, const Shape& sb, bool ta, bool tb, DType dt, Rng& rng) {
    const DType ref_dt = dt == DType::bf16 ? DType::f32 : dt;
    const Tensor a = rand_cpu(sa, rng, dt).to(ref_dt), b = rand_cpu(sb, rng, dt).to(ref_dt);
    const Tensor y_ref = ops::matmul_forward(a, b, ta, tb);
    const Tensor gy = rand_cpu(y_ref.shape(), rng, dt).to(ref_dt);
    const ops::MatmulGrads g_ref = ops::matmul_backward(gy, a, b, ta, tb);
    const Tensor ga = on_gpu(a.to(dt)), gb = on_gpu(b.to(dt));
    const Tensor y = ops::matmul_forward(ga, gb, ta, tb);
    EXPECT_EQ(y.dtype(), dt);
    EXPECT_TRUE(y.device().is_cuda());
    const ops::MatmulGrads g = ops::matmul_backward(on_gpu(gy.to(dt)), ga, gb, ta, tb);
    const std::string what = a.desc() + " x " + b.desc() + " ta=" + std::to_string(ta) +
                             " tb=" + std::to_string(tb) + " " + std::string(dtype_name(dt));
    EXPECT_LE(rel_err(y.to(ref_dt), y_ref), tol_for(dt)) << "y " << what;
    EXPECT_LE(rel_err(g.a.to(ref_dt), g_ref.a), tol_for(dt)) << "da " << what;
    EXPECT_LE(rel_err(g.b.to(ref_dt), g_ref.b), tol_for(dt)) << "db " << what;
}

TEST(CudaMatmul, OddShapesEveryTransposeAndDtype) {
    GOOSE_REQUIRE_GPU();
    Rng rng(1);
    for (DType dt : {DType::f32, DType::f64, DType::bf16})
        for (int ta = 0; ta < 2; ++ta)
            for (int tb = 0; tb < 2; ++tb) {
                // (M, K, N) = (7, 5, 33), (1, 33, 7), (33, 64, 1), (1, 1, 1)
                const int64_t shapes[][3] = {{7, 5, 33}, {1, 33, 7}, {33, 64, 1}, {1, 1, 1}};
                for (const auto& s : shapes) {
                    const int64_t m = s[0], k = s[1], n = s[2];
                    check_matmul(ta ? Shape{k, m} : Shape{m, k}, tb ? Shape{n, k} : Shape{k, n}, ta,
                                 tb, dt, rng);
                }
            }
}

TEST(CudaMatmul, BatchedAndSharedB) {
    GOOSE_REQUIRE_GPU();
    Rng rng(2);
    for (DType dt : {DType::f32, DType::bf16}) {
        check_matmul(Shape{3, 17, 9}, Shape{3, 9, 20}, false, false, dt, rng);      // 3-D batch
        check_matmul(Shape{2, 3, 9, 17}, Shape{2, 3, 20, 9}, true, true, dt, rng);  // 4-D
        check_matmul(Shape{4, 33, 16}, Shape{16, 7}, false, false, dt, rng);        // shared b
        check_matmul(Shape{4, 16, 33}, Shape{7, 16}, true, true, dt, rng);          // shared b, T
        check_matmul(Shape{2, 2, 5, 8}, Shape{8, 3}, false, false, dt, rng);        // 4-D, shared b
    }
}

TEST(CudaMatmul, StridedViewsAreHonoured) {
    GOOSE_REQUIRE_GPU();
    Rng rng(3);
    // A transposed view (column-major matrices), a sliced + transposed view (leading dim 15)
    // and a permuted batch (batch stride smaller than the row stride).
    const Tensor a = rand_cpu(Shape{2, 12, 10}, rng), b = rand_cpu(Shape{2, 7, 15}, rng);
    const Tensor y_ref = ops::matmul_forward(a.transpose(1, 2), b.slice(2, 2, 14).transpose(1, 2));
    const Tensor ga = on_gpu(a), gb = on_gpu(b);
    const Tensor y = ops::matmul_forward(ga.transpose(1, 2), gb.slice(2, 2, 14).transpose(1, 2));
    EXPECT_LE(rel_err(y, y_ref), 2e-6);
    const ops::MatmulGrads g_ref = ops::matmul_backward(
        y_ref, a.transpose(1, 2), b.slice(2, 2, 14).transpose(1, 2), false, false);
    const ops::MatmulGrads g = ops::matmul_backward(
        y, ga.transpose(1, 2), gb.slice(2, 2, 14).transpose(1, 2), false, false);
    EXPECT_LE(rel_err(g.a, g_ref.a), 2e-6);
    EXPECT_LE(rel_err(g.b, g_ref.b), 2e-6);
    const Tensor p = rand_cpu(Shape{5, 3, 6}, rng), q = rand_cpu(Shape{3, 6, 4}, rng);
    const Tensor pq = ops::matmul_forward(on_gpu(p).permute({1, 0, 2}), on_gpu(q));
    EXPECT_LE(rel_err(pq, ops::matmul_forward(p.permute({1, 0, 2}), q)), 2e-6);
}

TEST(CudaMatmul, EmptyInnerDimGivesZeros) {
    GOOSE_REQUIRE_GPU();
    const Tensor a = Tensor::empty(Shape{3, 0}, DType::f32, Device::cuda());
    const Tensor b = Tensor::empty(Shape{0, 4}, DType::f32, Device::cuda());
    const Tensor y = ops::matmul_forward(a, b);
    for (double v : y.to(Device::cpu()).to_vector()) EXPECT_EQ(v, 0.0);
}

void check_linear(const Shape& sx, int64_t cout, bool bias, DType dt, Rng& rng) {
    const DType ref_dt = dt == DType::bf16 ? DType::f32 : dt;
    const int64_t cin = sx[sx.ndim() - 1];
    const Tensor x = rand_cpu(sx, rng, dt).to(ref_dt),
                 w = rand_cpu(Shape{cout, cin}, rng, dt).to(ref_dt);
    const Tensor b = bias ? rand_cpu(Shape{cout}, rng, dt).to(ref_dt) : Tensor();
    const Tensor y_ref = ops::linear_forward(x, w, b);
    const Tensor gy = rand_cpu(y_ref.shape(), rng, dt).to(ref_dt);
    const ops::LinearGrads g_ref = ops::linear_backward(gy, x, w, bias);
    const Tensor gx = on_gpu(x.to(dt)), gw = on_gpu(w.to(dt));
    const Tensor y = ops::linear_forward(gx, gw, bias ? on_gpu(b.to(dt)) : Tensor());
    const ops::LinearGrads g = ops::linear_backward(on_gpu(gy.to(dt)), gx, gw, bias);
    const std::string what = x.desc() + " -> " + std::to_string(cout) + " " +
                             std::string(dtype_name(dt)) + (bias ? " bias" : "");
    EXPECT_EQ(y.dtype(), dt) << what;
    EXPECT_LE(rel_err(y.to(ref_dt), y_ref), tol_for(dt)) << "y " << what;
    EXPECT_LE(rel_err(g.x.to(ref_dt), g_ref.x), tol_for(dt)) << "dx " << what;
    EXPECT_LE(rel_err(g.w.to(ref_dt), g_ref.w), tol_for(dt)) << "dw " << what;
    if (bias) {
        EXPECT_LE(rel_err(g.b.to(ref_dt), g_ref.b), tol_for(dt)) << "db " << what;
    }
}

TEST(CudaLinear, ShapesBiasAndGradients) {
    GOOSE_REQUIRE_GPU();
    Rng rng(4);
    for (DType dt : {DType::f32, DType::f64, DType::bf16})
        for (bool bias : {false, true}) {
            check_linear(Shape{7, 33}, 5, bias, dt, rng);
            check_linear(Shape{1, 16}, 1, bias, dt, rng);
            check_linear(Shape{3, 5, 64}, 96, bias, dt, rng);
            check_linear(Shape{33}, 7, bias, dt, rng);
        }
}

TEST(CudaLinear, F32IsExactFp32NotTf32) {
    GOOSE_REQUIRE_GPU();
    // TF32 keeps 10 mantissa bits: a product of K = 512 sums would be off by ~1e-4 relative.
    Rng rng(5);
    const Tensor x = rand_cpu(Shape{256, 512}, rng), w = rand_cpu(Shape{128, 512}, rng);
    const Tensor y = ops::linear_forward(on_gpu(x), on_gpu(w));
    const Tensor y64 = ops::linear_forward(x.to(DType::f64), w.to(DType::f64));
    EXPECT_LE(rel_err(y.to(DType::f64), y64), 1e-6);
}

TEST(CudaLinear, PlansAreCachedPerShape) {
    GOOSE_REQUIRE_GPU();
    Rng rng(6);
    const Tensor x = on_gpu(rand_cpu(Shape{24, 40}, rng)), w = on_gpu(rand_cpu(Shape{56, 40}, rng));
    (void)ops::linear_forward(x, w);
    const int64_t before = gemm_lt::cached_plans();
    for (int i = 0; i < 5; ++i) (void)ops::linear_forward(x, w);
    EXPECT_EQ(gemm_lt::cached_plans(), before);
}

TEST(CudaLinear, MixedDtypesAreClearErrors) {
    GOOSE_REQUIRE_GPU();
    const Tensor x = Tensor::zeros(Shape{2, 4}, DType::bf16, Device::cuda());
    const Tensor w = Tensor::zeros(Shape{3, 4}, DType::f32, Device::cuda());
    EXPECT_THROW((void)ops::linear_forward(x, w), Error);
}

}  // namespace
}  // namespace goose
