// Argument errors of matmul, linear (with bf16 weights too), attention, embedding and
// token_shift (goose::Error whose message names the op and the tensors), and known values
// computed by hand, on both backends.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/expect_error.h"
#include "goose/autograd/attention.h"
#include "goose/autograd/matmul.h"
#include "goose/autograd/sequence.h"
#include "goose/core/rng.h"
#include "goose/ops/backend.h"

namespace goose {
namespace {

using goose::test::expect_error;

Var leaf(const Shape& s, DType dt = DType::f32) {
    return Var(Tensor::zeros(s, dt), true);
}

void expect_values(const Tensor& t, std::vector<double> want) {
    ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size())) << t.desc();
    const auto got = t.to_vector();
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << "[" << i << "]";
}

TEST(MatmulErrors, InnerDimsMismatch) {
    expect_error(
        [] {
            ag::matmul(leaf({2, 3}), leaf({4, 5}));
        },
        {"matmul", "inner dims", "f32[2, 3] cpu", "f32[4, 5] cpu", "K = 3", "K = 4"});
    // With trans_b, b (N, K) = (5, 4) has K = 4.
    expect_error(
        [] {
            ag::matmul(leaf({2, 3}), leaf({5, 4}), false, true);
        },
        {"matmul", "inner dims", "[2, 3]", "[5, 4]", "trans_b = true"});
}

TEST(MatmulErrors, BatchMismatch) {
    expect_error(
        [] {
            ag::matmul(leaf({2, 3, 4}), leaf({3, 4, 5}));
        },
        {"matmul", "batch dims", "[2, 3, 4]", "[3, 4, 5]"});
    expect_error(
        [] {
            ag::matmul(leaf({3, 4}), leaf({2, 4, 5}));
        },
        {"matmul", "batch dims", "[3, 4]", "[2, 4, 5]"});
    expect_error(
        [] {
            ag::matmul(leaf({2, 2, 3, 4}), leaf({2, 4, 5}));
        },
        {"matmul", "batch dims", "[2, 2, 3, 4]", "[2, 4, 5]"});
}

TEST(MatmulErrors, DimsAndDtypes) {
    expect_error([] { ag::matmul(leaf({4}), leaf({4, 5})); }, {"matmul", "2 to 4 dims", "[4]"});
    expect_error(
        [] {
            ag::matmul(leaf({1, 1, 1, 2, 3}), leaf({3, 5}));
        },
        {"matmul", "2 to 4 dims", "[1, 1, 1, 2, 3]"});
    expect_error(
        [] {
            ag::matmul(leaf({2, 3}), leaf({3, 5}, DType::f64));
        },
        {"matmul", "dtypes differ", "f32[2, 3]", "f64[3, 5]"});
    expect_error(
        [] {
            ag::matmul(Var(Tensor::zeros({2, 3}, DType::i32)), leaf({3, 5}));
        },
        {"matmul", "i32[2, 3]"});
}

TEST(LinearErrors, WidthMismatchAndBias) {
    expect_error(
        [] {
            ag::linear(leaf({2, 7}), leaf({5, 6}));
        },
        {"linear", "f32[2, 7] cpu", "f32[5, 6] cpu", "7", "6"});
    expect_error(
        [] {
            ag::linear(leaf({2, 7}), leaf({5, 7}), leaf({4}));
        },
        {"linear", "bias", "[5]", "f32[4] cpu"});
    expect_error([] { ag::linear(leaf({2, 7}), leaf({5, 7, 1})); }, {"linear", "w", "[5, 7, 1]"});
}

TEST(LinearErrors, Bf16Dtypes) {
    const Var wb(Tensor::zeros({4, 3}, DType::bf16));
    expect_error(
        [&] {
            ag::linear(Var(Tensor::zeros({2, 3}, DType::bf16)), wb);
        },
        {"linear", "x", "bf16[2, 3] cpu", "f32 or f64"});
    expect_error(
        [&] {
            ag::linear(leaf({2, 3}, DType::f64), wb);
        },
        {"linear", "bf16 weights need f32 x", "f64[2, 3] cpu", "bf16[4, 3] cpu"});
    expect_error(
        [] {
            ag::linear(leaf({2, 3}), Var(Tensor::zeros({4, 3}, DType::f16)));
        },
        {"linear", "f32, f64 or bf16", "f16[4, 3] cpu", "f32[2, 3] cpu"});
    expect_error(
        [&] {
            ag::linear(leaf({2, 3}), wb, Var(Tensor::zeros({4}, DType::bf16)));
        },
        {"linear", "dtypes differ", "f32[2, 3] cpu", "bf16[4] cpu"});
    expect_error(
        [&] {
            ag::linear(leaf({2, 5}), wb);
        },
        {"linear", "f32[2, 5] cpu", "bf16[4, 3] cpu"});
}

TEST(LinearErrors, Bf16WeightsTakeNoGradient) {
    const Var x = leaf({2, 3});
    const Var w(Tensor::zeros({4, 3}, DType::bf16), true);
    expect_error([&] { ag::linear(x, w); }, {"linear", "inference-only", "bf16[4, 3] cpu"});
    {
        ag::NoGradGuard guard;  // inference: a requires_grad flag on w does not matter
        EXPECT_EQ(ag::linear(x, w).shape(), (Shape{2, 4}));
    }
    const Tensor gy = Tensor::zeros({2, 4});
    expect_error([&] { ops::linear_backward(gy, x.value(), w.value(), false); },
                 {"linear", "inference-only", "bf16[4, 3] cpu"});
    EXPECT_FALSE(ops::linear_backward(gy, x.value(), w.value(), false, true, false).w.defined());
}

TEST(AttentionErrors, ShapeMismatch) {
    expect_error(
        [] {
            ag::attention(leaf({1, 2, 4, 8}), leaf({1, 2, 5, 8}), leaf({1, 2, 4, 8}));
        },
        {"attention", "q f32[1, 2, 4, 8]", "k f32[1, 2, 5, 8]", "v f32[1, 2, 4, 8]"});
    expect_error(
        [] {
            ag::attention(leaf({1, 2, 4, 8}), leaf({1, 2, 4, 8}), leaf({1, 2, 4, 7}));
        },
        {"attention", "v f32[1, 2, 4, 7]"});
    expect_error(
        [] {
            ag::attention(leaf({2, 4, 8}), leaf({2, 4, 8}), leaf({2, 4, 8}));
        },
        {"attention", "4-d", "f32[2, 4, 8]"});
    expect_error(
        [] {
            ag::attention(leaf({1, 1, 4, 8}), leaf({1, 1, 4, 8}), leaf({1, 1, 4, 8}, DType::f64));
        },
        {"attention", "dtypes differ"});
}

TEST(EmbeddingErrors, IdsOutOfRangeAndDtype) {
    const Tensor ids = Tensor::from(Shape{2, 2}, {0, 1, 2, 9}, DType::i64);
    expect_error(
        [&] {
            ag::embedding(leaf({5, 3}), ids);
        },
        {"embedding", "id 9", "position [1, 1]", "[0, 5)", "V = 5"});
    const Tensor neg = Tensor::from(Shape{3}, {0, -1, 2}, DType::i32);
    expect_error([&] { ag::embedding(leaf({5, 3}), neg); }, {"embedding", "id -1", "[1]"});
    const Tensor floats = Tensor::from(Shape{2}, {0, 1}, DType::f32);
    expect_error(
        [&] {
            ag::embedding(leaf({5, 3}), floats);
        },
        {"embedding", "i32 or i64", "f32[2] cpu"});
    expect_error([&] { ag::embedding(leaf({5}), Tensor::zeros(Shape{2}, DType::i64)); },
                 {"embedding", "weight", "f32[5] cpu"});
}

TEST(TokenShiftErrors, PrevShapeAndDims) {
    expect_error(
        [] {
            ag::token_shift(leaf({2, 5, 7}), leaf({2, 8}));
        },
        {"token_shift", "prev", "[2, 7]", "f32[2, 5, 7] cpu", "f32[2, 8] cpu"});
    expect_error(
        [] {
            ag::token_shift(leaf({2, 5, 7}), leaf({2, 1, 7}));
        },
        {"token_shift", "prev", "f32[2, 1, 7] cpu"});
    expect_error([] { ag::token_shift(leaf({5, 7})); }, {"token_shift", "3-d", "f32[5, 7] cpu"});
}

class KnownValues : public ::testing::TestWithParam<Backend> {};

TEST_P(KnownValues, MatmulTwoByThreeTimesThreeByTwo) {
    BackendScope scope(GetParam());
    // [[1, 2, 3], [4, 5, 6]] [[7, 8], [9, 10], [11, 12]] = [[58, 64], [139, 154]]
    const Tensor a = Tensor::from(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
    const Tensor b = Tensor::from(Shape{3, 2}, {7, 8, 9, 10, 11, 12});
    Var av(a, true), bv(b, true);
    Var y = ag::matmul(av, bv);
    expect_values(y.value(), {58, 64, 139, 154});
    // d sum(y) / da = ones (2, 2) bᵀ: each row holds b's row sums; d / db = aᵀ ones: a's column
    // sums in each column.
    ag::backward(y, Tensor::full(Shape{2, 2}, 1.0));
    expect_values(av.grad(), {15, 19, 23, 15, 19, 23});
    expect_values(bv.grad(), {5, 5, 7, 7, 9, 9});
    // The same product from transposed storage, with flags and with transposed views.
    expect_values(ag::matmul(Var(a.transpose(0, 1).contiguous()),
                             Var(b.transpose(0, 1).contiguous()), true, true)
                      .value(),
                  {58, 64, 139, 154});
    expect_values(ag::matmul(Var(a.transpose(0, 1).contiguous().transpose(0, 1)), Var(b)).value(),
                  {58, 64, 139, 154});
}

TEST_P(KnownValues, LinearByHand) {
    BackendScope scope(GetParam());
    const Var x(Tensor::from(Shape{1, 2}, {1, 2}));
    const Var w(Tensor::from(Shape{3, 2}, {1, 0, 0, 1, 1, 1}));
    const Var b(Tensor::from(Shape{3}, {0.5, 0, -1}));
    expect_values(ag::linear(x, w, b).value(), {1.5, 2, 2});
    expect_values(ag::linear(x, w).value(), {1, 2, 3});
}

TEST_P(KnownValues, LinearBf16ByHand) {
    BackendScope scope(GetParam());
    // bf16 keeps 8 significant bits: 0.1 is stored as 0.10009765625, the others exactly.
    const Tensor w = Tensor::from(Shape{2, 3}, {0.5, -1, 2, 0.1, 3, -0.25}).to(DType::bf16);
    EXPECT_EQ(w.get({1, 0}), 0.10009765625);
    Var x(Tensor::from(Shape{2, 3}, {1, 2, 3, 4, 5, 6}), true);
    Var b(Tensor::from(Shape{2}, {1, -2}), true);
    // Row 0: 0.5 - 2 + 6 + 1 = 5.5 and 0.10009765625 + 6 - 0.75 - 2; row 1: 2 - 5 + 12 + 1 and
    // 0.400390625 + 15 - 1.5 - 2.
    const std::vector<double> want{5.5, 3.35009765625, 10, 11.900390625};
    Var y = ag::linear(x, Var(w), b);
    EXPECT_EQ(y.dtype(), DType::f32);
    expect_values(y.value(), want);
    // d sum(y) / dx = column sums of w in every row; d / db = 2 (two rows).
    ag::backward(y, Tensor::full(Shape{2, 2}, 1.0));
    expect_values(x.grad(), {0.60009765625, 2, 1.75, 0.60009765625, 2, 1.75});
    expect_values(b.grad(), {2, 2});
    // Six rows (past the direct kernel's four): the same two rows thrice.
    const Tensor x6 =
        Tensor::from(Shape{3, 2, 3}, {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});
    std::vector<double> want6;
    for (int i = 0; i < 3; ++i) want6.insert(want6.end(), want.begin(), want.end());
    expect_values(ag::linear(Var(x6), Var(w), Var(b.value())).value(), want6);
}

TEST_P(KnownValues, AttentionWithOneStepReturnsV) {
    BackendScope scope(GetParam());
    Rng rng(7);
    Var q(Tensor::randn(Shape{2, 3, 1, 5}, rng), true),
        k(Tensor::randn(Shape{2, 3, 1, 5}, rng), true),
        v(Tensor::randn(Shape{2, 3, 1, 5}, rng), true);
    Var y = ag::attention(q, k, v);
    expect_values(y.value(), v.value().to_vector());
    const Tensor gy = Tensor::randn(Shape{2, 3, 1, 5}, rng);
    ag::backward(y, gy);
    expect_values(v.grad(), gy.to_vector());  // the weight is exactly 1
    expect_values(q.grad(), std::vector<double>(30, 0.0));
    expect_values(k.grad(), std::vector<double>(30, 0.0));
}

TEST_P(KnownValues, AttentionUniformScoresAverage) {
    BackendScope scope(GetParam());
    // q = 0: every visible key has the same score, so y[t] is the mean of v[0..t].
    const Var q(Tensor::zeros(Shape{1, 1, 3, 1})), k(Tensor::from(Shape{1, 1, 3, 1}, {5, -2, 9}));
    const Var v(Tensor::from(Shape{1, 1, 3, 1}, {3, 6, 12}));
    expect_values(ag::attention(q, k, v).value(), {3, 4.5, 7});
}

TEST_P(KnownValues, EmbeddingAndTokenShift) {
    BackendScope scope(GetParam());
    Var w(Tensor::from(Shape{3, 2}, {0, 1, 10, 11, 20, 21}), true);
    const Tensor ids = Tensor::from(Shape{2, 2}, {2, 0, 2, 1}, DType::i32);
    Var e = ag::embedding(w, ids);
    EXPECT_EQ(e.shape(), (Shape{2, 2, 2}));
    expect_values(e.value(), {20, 21, 0, 1, 20, 21, 10, 11});
    ag::backward(e, Tensor::full(Shape{2, 2, 2}, 1.0));
    expect_values(w.grad(), {1, 1, 1, 1, 2, 2});  // id 2 appears twice

    Var x(Tensor::from(Shape{1, 3, 2}, {1, 2, 3, 4, 5, 6}), true);
    Var prev(Tensor::from(Shape{1, 2}, {-1, -2}), true);
    Var y = ag::token_shift(x, prev);
    expect_values(y.value(), {-1, -2, 1, 2, 3, 4});
    expect_values(ag::token_shift(Var(x.value())).value(), {0, 0, 1, 2, 3, 4});
    ag::backward(y, Tensor::from(Shape{1, 3, 2}, {10, 20, 30, 40, 50, 60}));
    expect_values(x.grad(), {30, 40, 50, 60, 0, 0});
    expect_values(prev.grad(), {10, 20});
}

// A decoding-sized GEMV (one row, K = 768, N = 4096) with bf16 weights: the fast direct kernel
// against the reference, and the widened-GEMM path (8 rows) likewise.
TEST(LinearBf16, LargeGemvMatchesReference) {
    Rng rng(11);
    const Tensor w = Tensor::randn(Shape{4096, 768}, rng).to(DType::bf16);
    const Tensor b = Tensor::randn(Shape{4096}, rng);
    for (int64_t m : {1, 8}) {
        const Tensor x = Tensor::randn(Shape{m, 768}, rng);
        Tensor ref;
        {
            BackendScope scope(Backend::ref);
            ref = ops::linear_forward(x, w, b);
        }
        const Tensor fast = ops::linear_forward(x, w, b);
        ASSERT_EQ(fast.shape(), ref.shape());
        const auto f = fast.to_vector(), r = ref.to_vector();
        int bad = 0;
        for (size_t i = 0; i < r.size(); ++i)
            if (std::abs(f[i] - r[i]) > 1e-4 * (std::abs(r[i]) + 1) && bad++ < 5)
                ADD_FAILURE() << "M=" << m << " [" << i << "]: ref " << r[i] << " fast " << f[i];
        EXPECT_EQ(bad, 0);
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, KnownValues, ::testing::Values(Backend::ref, Backend::cpu),
                         [](const auto& info) { return std::string(backend_name(info.param)); });

}  // namespace
}  // namespace goose
