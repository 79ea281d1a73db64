// The fused head + cross-entropy on CUDA against its composed CPU reference (linear,
// cross-entropy, L2Wrap, linear backward): f32 tight, bf16 (bf16 logits, fp32 accumulation)
// with stated tolerances; odd sizes, several chunks, ignored rows, i32/i64 targets, gy scaling,
// and a bad target as a clear error.
#include <gtest/gtest.h>

#include <cmath>

#include "cuda/cuda_test_util.h"
#include "goose/autograd.h"
#include "goose/core/rng.h"
#include "goose/ops/head_ce.h"

namespace goose::ops {
namespace {

double rel_err(const Tensor& got, const Tensor& want) {
    EXPECT_EQ(got.shape(), want.shape());
    const auto g = got.to(Device::cpu()).to(DType::f64).to_vector();
    const auto w = want.to(Device::cpu()).to(DType::f64).to_vector();
    double num = 0, den = 0;
    for (size_t i = 0; i < g.size(); ++i) {
        if (!std::isfinite(g[i])) return INFINITY;
        num += (g[i] - w[i]) * (g[i] - w[i]);
        den += w[i] * w[i];
    }
    return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Targets in [0, V) with every fifth position ignored (-100).
Tensor make_targets(const Shape& s, int64_t vocab, Rng& rng, DType dt) {
    Tensor t = Tensor::empty(s, dt);
    const auto u = Tensor::uniform(s, rng, DType::f64, 0, double(vocab)).to_vector();
    std::vector<double> v(u.size());
    for (size_t i = 0; i < u.size(); ++i)
        v[i] = i % 5 == 3 ? -100.0 : std::min(std::floor(u[i]), double(vocab - 1));
    return Tensor::from(s, v, dt);
}

struct Case {
    Shape x;  // (..., C)
    int64_t vocab;
    bool l2wrap;
    int64_t chunk_rows;
    DType targets;
};

void check_case(const Case& c, DType dt, Rng& rng) {
    const int64_t dim = c.x[c.x.ndim() - 1];
    Shape lead;
    for (int d = 0; d < c.x.ndim() - 1; ++d) lead.push_back(c.x[d]);
    // bf16: the reference sees the same rounded inputs in f32.
    const Tensor x = Tensor::randn(c.x, rng, DType::f32).to(dt).to(DType::f32);
    const Tensor w =
        Tensor::randn(Shape{c.vocab, dim}, rng, DType::f32, 0, 0.5).to(dt).to(DType::f32);
    const Tensor t = make_targets(lead, c.vocab, rng, c.targets);
    HeadCrossEntropyOptions opt;
    opt.l2wrap = c.l2wrap, opt.chunk_rows = c.chunk_rows, opt.gy = 0.75;
    const HeadCrossEntropyResult ref = head_cross_entropy_ref(x, w, t, opt);
    const HeadCrossEntropyResult got = head_cross_entropy(
        x.to(dt).to(Device::cuda()), w.to(dt).to(Device::cuda()), t.to(Device::cuda()), opt);
    const std::string what = x.desc() + " V=" + std::to_string(c.vocab) + " " +
                             std::string(dtype_name(dt)) + (c.l2wrap ? " l2wrap" : "") + " chunk " +
                             std::to_string(c.chunk_rows);
    ASSERT_TRUE(got.dx.defined() && got.dw.defined()) << what;
    EXPECT_EQ(got.dx.dtype(), dt) << what;
    EXPECT_EQ(got.dw.dtype(), DType::f32) << what;
    EXPECT_EQ(got.dx.shape(), x.shape()) << what;
    // f32: summation order and __expf. bf16: logits and d(logits) rounded to bf16 (2^-9
    // relative each; a one-row loss sees that unaveraged: 3.7e-3 measured for 1 row, V = 7).
    const double tol_loss = dt == DType::f32 ? 1e-6 : 1e-2;
    const double tol_grad = dt == DType::f32 ? 1e-5 : 2e-2;
    EXPECT_LE(rel_err(got.loss, ref.loss), tol_loss) << "loss " << what;
    EXPECT_LE(rel_err(got.lse, ref.lse), tol_loss) << "lse " << what;
    EXPECT_LE(rel_err(got.dx, ref.dx), tol_grad) << "dx " << what;
    EXPECT_LE(rel_err(got.dw, ref.dw), tol_grad) << "dw " << what;
}

TEST(CudaHeadCE, MatchesComposedReferenceF32AndBf16) {
    GOOSE_REQUIRE_GPU();
    Rng rng(21);
    const Case cases[] = {
        {Shape{37, 24}, 1001, true, 16, DType::i64},    // odd V (scalar path), 3 chunks
        {Shape{2, 7, 33}, 1000, false, 0, DType::i32},  // 3-D x, automatic chunk
        {Shape{1, 16}, 7, true, 1, DType::i32},         // one row, tiny vocabulary
        {Shape{3, 11, 64}, 4096, true, 8, DType::i64},  // vectorised rows, 5 chunks
    };
    for (DType dt : {DType::f32, DType::bf16})
        for (const Case& c : cases) check_case(c, dt, rng);
}

TEST(CudaHeadCE, RowCachedPassMatchesReference) {
    GOOSE_REQUIRE_GPU();
    Rng rng(24);
    const Tensor x = Tensor::randn(Shape{2, 9, 32}, rng).to(DType::bf16).to(DType::f32);
    const Tensor w =
        Tensor::randn(Shape{4096, 32}, rng, DType::f32, 0, 0.5).to(DType::bf16).to(DType::f32);
    const Tensor t = make_targets(Shape{2, 9}, 4096, rng, DType::i64);
    HeadCrossEntropyOptions opt;
    opt.l2wrap = true, opt.chunk_rows = 7, opt.row_cache = true;
    const auto ref = head_cross_entropy_ref(x, w, t, opt);
    const auto got =
        head_cross_entropy(x.to(DType::bf16).to(Device::cuda()),
                           w.to(DType::bf16).to(Device::cuda()), t.to(Device::cuda()), opt);
    EXPECT_LE(rel_err(got.loss, ref.loss), 1e-2);
    EXPECT_LE(rel_err(got.dx, ref.dx), 2e-2);
    EXPECT_LE(rel_err(got.dw, ref.dw), 2e-2);
}

TEST(CudaHeadCE, GradientsAreLinearInGy) {
    GOOSE_REQUIRE_GPU();
    Rng rng(22);
    const Tensor x = Tensor::randn(Shape{9, 32}, rng).to(Device::cuda());
    const Tensor w = Tensor::randn(Shape{300, 32}, rng).to(Device::cuda());
    const Tensor t = make_targets(Shape{9}, 300, rng, DType::i32).to(Device::cuda());
    HeadCrossEntropyOptions one, half;
    one.l2wrap = half.l2wrap = true;
    half.gy = 0.5;
    const auto a = head_cross_entropy(x, w, t, one), b = head_cross_entropy(x, w, t, half);
    EXPECT_EQ(a.loss.to(Device::cpu()).item(), b.loss.to(Device::cpu()).item());
    const auto dxa = a.dx.to(Device::cpu()).to_vector(), dxb = b.dx.to(Device::cpu()).to_vector();
    for (size_t i = 0; i < dxa.size(); ++i)
        EXPECT_NEAR(dxb[i], 0.5 * dxa[i], 1e-6 * std::fabs(dxa[i]) + 1e-12);
}

TEST(CudaHeadCE, AllIgnoredGivesZeroLossAndGradients) {
    GOOSE_REQUIRE_GPU();
    Rng rng(23);
    const Tensor x = Tensor::randn(Shape{5, 8}, rng).to(Device::cuda());
    const Tensor w = Tensor::randn(Shape{40, 8}, rng).to(Device::cuda());
    const Tensor t = Tensor::full(Shape{5}, -100, DType::i64).to(Device::cuda());
    const auto r = head_cross_entropy(x, w, t);
    EXPECT_EQ(r.loss.to(Device::cpu()).item(), 0.0);
    for (double v : r.dx.to(Device::cpu()).to_vector()) EXPECT_EQ(v, 0.0);
    for (double v : r.dw.to(Device::cpu()).to_vector()) EXPECT_EQ(v, 0.0);
}

// Through the tape: a bf16 weight that is a leaf keeps the product's f32 gradient (what the
// mixed-precision optimizer takes), bit for bit, also when an upstream gradient scales it; a bf16
// weight made by another op gets a bf16 gradient; x's gradient has x's dtype.
TEST(CudaHeadCE, Bf16LeafWeightKeepsTheF32Gradient) {
    GOOSE_REQUIRE_GPU();
    Rng rng(25);
    const Tensor xv = Tensor::randn(Shape{2, 5, 16}, rng).to(DType::bf16).to(Device::cuda());
    const Tensor wv =
        Tensor::randn(Shape{96, 16}, rng, DType::f32, 0, 0.5).to(DType::bf16).to(Device::cuda());
    const Tensor t = make_targets(Shape{2, 5}, 96, rng, DType::i64).to(Device::cuda());
    HeadCrossEntropyOptions opt;
    opt.l2wrap = true;
    const HeadCrossEntropyResult want = head_cross_entropy(xv, wv, t, opt);
    for (double scale : {1.0, 0.5}) {
        Var x(xv, true), w(wv, true);
        Var loss = ag::head_cross_entropy(x, w, t, true);
        if (scale != 1.0) loss = ag::mul(loss, Var(Tensor::full(Shape{}, scale, DType::f32,
                                                                Device::cuda())));
        ag::backward(loss);
        ASSERT_TRUE(w.grad().defined() && x.grad().defined());
        EXPECT_EQ(w.grad().dtype(), DType::f32) << scale;
        EXPECT_EQ(x.grad().dtype(), DType::bf16) << scale;
        const auto g = w.grad().to(Device::cpu()).to_vector();
        const auto d = want.dw.to(Device::cpu()).to_vector();
        ASSERT_EQ(g.size(), d.size());
        for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(g[i], scale * d[i]) << i << " " << scale;
    }
    Var w0(wv, true);
    Var w = ag::mul(w0, Var(Tensor::full(Shape{}, 1.0, DType::bf16, Device::cuda())));
    ag::backward(ag::head_cross_entropy(Var(xv), w, t, true));
    ASSERT_TRUE(w0.grad().defined());
    EXPECT_EQ(w0.grad().dtype(), DType::bf16);
}

TEST(CudaHeadCE, TargetOutsideVocabularyIsAClearError) {
    GOOSE_REQUIRE_GPU();
    const Tensor x = Tensor::zeros(Shape{4, 8}, DType::f32, Device::cuda());
    const Tensor w = Tensor::zeros(Shape{10, 8}, DType::f32, Device::cuda());
    const Tensor t = Tensor::from(Shape{4}, {1, 2, 10, 3}, DType::i32).to(Device::cuda());
    try {
        (void)head_cross_entropy(x, w, t);
        FAIL() << "expected a goose::Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("target 10 at position 2"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace goose::ops
