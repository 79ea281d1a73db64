// softmax, loss and norm families: argument errors (goose::Error naming the op and the tensors)
// and known values on both CPU backends.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/expect_error.h"
#include "goose/autograd/loss.h"
#include "goose/autograd/norm.h"
#include "goose/autograd/softmax.h"
#include "goose/ops/backend.h"

namespace goose {
namespace {

using goose::test::expect_error;

Var leaf(const Tensor& t) { return Var(t, true); }

// ---- errors ----

TEST(NormErrors, CrossEntropyTargetsShape) {
    const Tensor logits = Tensor::zeros(Shape{2, 3, 5});
    expect_error([&] { ag::cross_entropy(Var(logits), Tensor::zeros(Shape{2, 4}, DType::i64)); },
                 {"cross_entropy", "i64[2, 4]", "f32[2, 3, 5]"});
    expect_error(
        [&] { ag::cross_entropy(Var(logits), Tensor::zeros(Shape{2, 3, 5}, DType::i64)); },
        {"cross_entropy", "i64[2, 3, 5]"});
}

TEST(NormErrors, CrossEntropyFloatTargets) {
    expect_error(
        [] { ag::cross_entropy(Var(Tensor::zeros(Shape{2, 5})), Tensor::zeros(Shape{2})); },
        {"cross_entropy", "i32 or i64", "f32[2]"});
}

TEST(NormErrors, CrossEntropyTargetOutOfRange) {
    const Tensor logits = Tensor::zeros(Shape{2, 3, 5});
    Tensor t = Tensor::zeros(Shape{2, 3}, DType::i64);
    t.set({1, 2}, 5);
    expect_error([&] { ag::cross_entropy(Var(logits), t); },
                 {"cross_entropy", "target 5", "position [1, 2]", "[0, 5)"});
    t.set({1, 2}, -1);
    expect_error([&] { ag::cross_entropy(Var(logits), t.to(DType::i32)); },
                 {"cross_entropy", "target -1", "position [1, 2]"});
    // -100 (the default ignore_index) is not an error, but it is with another ignore_index.
    t.set({1, 2}, -100);
    EXPECT_NO_THROW(ag::cross_entropy(Var(logits), t));
    expect_error([&] { ag::cross_entropy(Var(logits), t, 0); }, {"target -100", "[1, 2]"});
}

TEST(NormErrors, CrossEntropyLogits) {
    expect_error([] { ag::cross_entropy(Var(Tensor::zeros(Shape{2, 5}, DType::i32)),
                                        Tensor::zeros(Shape{2}, DType::i64)); },
                 {"cross_entropy", "f32 or f64", "i32[2, 5]"});
    expect_error([] { ag::cross_entropy(Var(Tensor::zeros(Shape{2, 0})),
                                        Tensor::zeros(Shape{2}, DType::i64)); },
                 {"cross_entropy", "f32[2, 0]"});
}

TEST(NormErrors, MseAndBceShapesAndDtypes) {
    expect_error([] { ag::mse(Var(Tensor::zeros(Shape{2, 3})), Var(Tensor::zeros(Shape{3, 2}))); },
                 {"mse", "f32[2, 3]", "f32[3, 2]"});
    expect_error(
        [] { ag::mse(Var(Tensor::zeros(Shape{3})), Var(Tensor::zeros(Shape{3}, DType::f64))); },
        {"mse", "f32[3]", "f64[3]"});
    expect_error([] { ag::bce_with_logits(Var(Tensor::zeros(Shape{4})),
                                          Var(Tensor::zeros(Shape{5}))); },
                 {"bce_with_logits", "f32[4]", "f32[5]"});
}

TEST(NormErrors, GroupNormGroups) {
    const Tensor x = Tensor::zeros(Shape{2, 21});
    expect_error([&] { ag::group_norm(Var(x), 4, Var(), Var()); },
                 {"group_norm", "21 channels", "f32[2, 21]", "groups = 4"});
    expect_error([&] { ag::group_norm(Var(x), 0, Var(), Var()); }, {"group_norm", "groups"});
}

TEST(NormErrors, AffineWrongSize) {
    const Tensor x = Tensor::zeros(Shape{2, 7});
    expect_error([&] { ag::layer_norm(Var(x), Var(Tensor::zeros(Shape{6})), Var()); },
                 {"layer_norm", "w must have shape [7]", "f32[6]", "f32[2, 7]"});
    expect_error([&] { ag::layer_norm(Var(x), Var(), Var(Tensor::zeros(Shape{1, 7}))); },
                 {"layer_norm", "b must have shape [7]", "f32[1, 7]"});
    expect_error([&] { ag::layer_norm(Var(x), Var(Tensor::zeros(Shape{7}, DType::f64)), Var()); },
                 {"layer_norm", "f64[7]", "dtype"});
    expect_error([&] { ag::group_norm(Var(x), 7, Var(Tensor::zeros(Shape{8})), Var()); },
                 {"group_norm", "w must have shape [7]", "f32[8]"});
}

TEST(NormErrors, SoftmaxAndNormInputs) {
    expect_error([] { ag::softmax(Var(Tensor::scalar(1.0))); }, {"softmax", "f32[]"});
    expect_error([] { ag::log_softmax(Var(Tensor::zeros(Shape{3}, DType::i64))); },
                 {"log_softmax", "i64[3]"});
    expect_error([] { ag::l2_normalize(Var(Tensor::zeros(Shape{3})), -1.0); },
                 {"l2_normalize", "eps"});
}

// ---- known values, on the fast CPU kernels and on the reference ----

class NormKnownValues : public ::testing::TestWithParam<Backend> {};

TEST_P(NormKnownValues, CrossEntropyOfUniformLogitsIsLogV) {
    BackendScope scope(GetParam());
    for (int64_t v : {1, 7, 130}) {
        const Tensor logits = Tensor::full(Shape{3, v}, 2.5);
        const Tensor t = Tensor::from(Shape{3}, {0, double(v - 1), double(v / 2)}, DType::i64);
        EXPECT_NEAR(ag::cross_entropy(Var(logits), t).item(), std::log(double(v)), 1e-6) << v;
    }
}

TEST_P(NormKnownValues, CrossEntropySkipsIgnoredRows) {
    BackendScope scope(GetParam());
    const std::vector<double> x = {1, 2, 3, 0.5, -1, 0, 4, 4, 4, -2, 0, 2};  // (4, 3)
    Var logits = leaf(Tensor::from(Shape{4, 3}, x, DType::f64));
    const Tensor t = Tensor::from(Shape{4}, {2, -100, 0, 1}, DType::i64);
    Var loss = ag::cross_entropy(logits, t);
    // By hand: rows 0, 2 and 3 count; -log_softmax(row)[target] = lse(row) - row[target].
    auto lse = [&](int r) {
        double s = 0;
        for (int j = 0; j < 3; ++j) s += std::exp(x[3 * r + j]);
        return std::log(s);
    };
    const double expect = ((lse(0) - 3) + (lse(2) - 4) + (lse(3) - 0)) / 3;
    EXPECT_NEAR(loss.item(), expect, 1e-12);
    ag::backward(loss);
    const Tensor& g = logits.grad();
    for (int j = 0; j < 3; ++j) EXPECT_EQ(g.get({1, j}), 0.0);  // the ignored row
    // row 2 is uniform: softmax 1/3, target 0 -> (1/3 - 1) / 3 and 1/9
    EXPECT_NEAR(g.get({2, 0}), (1.0 / 3 - 1) / 3, 1e-12);
    EXPECT_NEAR(g.get({2, 2}), 1.0 / 9, 1e-12);
    // The same through a custom ignore_index.
    const Tensor t2 = Tensor::from(Shape{4}, {2, 7, 0, 1}, DType::i32);
    Var logits2 = leaf(Tensor::from(Shape{4, 3}, x, DType::f64));
    Var l2 = ag::cross_entropy(logits2, t2, 7);  // i32 targets
    EXPECT_NEAR(l2.item(), expect, 1e-12);
}

TEST_P(NormKnownValues, CrossEntropyAllIgnoredIsZeroWithZeroGradient) {
    BackendScope scope(GetParam());
    Var logits = leaf(Tensor::from(Shape{2, 3}, {1, 2, 3, 4, 5, 6}));
    Var loss = ag::cross_entropy(logits, Tensor::full(Shape{2}, -100, DType::i64));
    EXPECT_EQ(loss.item(), 0.0);  // PyTorch gives NaN here
    ag::backward(loss);
    for (double g : logits.grad().to_vector()) EXPECT_EQ(g, 0.0);
}

TEST_P(NormKnownValues, LayerNormOfOneTwoThree) {
    BackendScope scope(GetParam());
    const double k = std::sqrt(1.5);  // (x - 2) / sqrt(2/3)
    for (DType dt : {DType::f32, DType::f64}) {
        const Tensor y = ag::layer_norm(Var(Tensor::from(Shape{3}, {1, 2, 3}, dt)), Var(), Var(), 0)
                             .value();
        EXPECT_NEAR(y.get({0}), -k, 1e-6);
        EXPECT_NEAR(y.get({1}), 0.0, 1e-6);
        EXPECT_NEAR(y.get({2}), k, 1e-6);
        EXPECT_NEAR(k, 1.2247, 1e-4);
    }
    // With the affine: y * w + b.
    const Tensor y = ag::layer_norm(Var(Tensor::from(Shape{1, 3}, {1, 2, 3})),
                                    Var(Tensor::from(Shape{3}, {2, 2, 2})),
                                    Var(Tensor::from(Shape{3}, {1, 1, 1})), 0)
                         .value();
    EXPECT_NEAR(y.get({0, 2}), 2 * k + 1, 1e-5);
}

TEST_P(NormKnownValues, GroupNormIsLayerNormPerGroup) {
    BackendScope scope(GetParam());
    // Two groups of 3: [1, 2, 3] and [10, 20, 30] normalise to the same values.
    const Tensor y = ag::group_norm(Var(Tensor::from(Shape{1, 6}, {1, 2, 3, 10, 20, 30})), 2,
                                    Var(), Var(), 0)
                         .value();
    const double k = std::sqrt(1.5);
    const double expect[] = {-k, 0, k, -k, 0, k};
    for (int j = 0; j < 6; ++j) EXPECT_NEAR(y.get({0, j}), expect[j], 1e-5) << j;
}

TEST_P(NormKnownValues, L2NormalizeAndItsClamp) {
    BackendScope scope(GetParam());
    const Tensor y = ag::l2_normalize(Var(Tensor::from(Shape{2, 2}, {3, 4, 0, 0}))).value();
    EXPECT_NEAR(y.get({0, 0}), 0.6, 1e-6);
    EXPECT_NEAR(y.get({0, 1}), 0.8, 1e-6);
    EXPECT_EQ(y.get({1, 0}), 0.0);  // a zero row stays zero (the norm is clamped to eps)
    // Clamped: x / eps, gradient gy / eps.
    Var x = leaf(Tensor::from(Shape{2}, {0.3, 0.4}, DType::f64));
    Var z = ag::l2_normalize(x, 1.0);
    EXPECT_NEAR(z.value().get({1}), 0.4, 1e-12);
    ag::backward(z, Tensor::from(Shape{2}, {1, 1}, DType::f64));
    EXPECT_NEAR(x.grad().get({0}), 1.0, 1e-12);
}

TEST_P(NormKnownValues, SoftmaxRowsSumToOne) {
    BackendScope scope(GetParam());
    const Tensor x = Tensor::from(Shape{2, 3}, {1000, 1001, 1002, -5, 0, 5});
    const auto y = ag::softmax(Var(x)).value().to_vector();
    EXPECT_NEAR(y[0] + y[1] + y[2], 1.0, 1e-6);
    EXPECT_NEAR(y[2] / y[1], std::exp(1.0), 1e-4);
    const auto ly = ag::log_softmax(Var(x)).value().to_vector();
    EXPECT_NEAR(ly[2], -std::log(1 + std::exp(-1.0) + std::exp(-2.0)), 1e-5);
}

TEST_P(NormKnownValues, MseAndBceValues) {
    BackendScope scope(GetParam());
    Var p = leaf(Tensor::from(Shape{2}, {1, 3}, DType::f64));
    Var t = leaf(Tensor::from(Shape{2}, {0, 1}, DType::f64));
    Var l = ag::mse(p, t);
    EXPECT_NEAR(l.item(), 2.5, 1e-12);  // (1 + 4) / 2
    ag::backward(l);
    EXPECT_NEAR(p.grad().get({1}), 2.0, 1e-12);   // 2 (3 - 1) / 2
    EXPECT_NEAR(t.grad().get({1}), -2.0, 1e-12);
    // bce at x = 0 is log 2 for any target; d/dy = -x / n.
    Var x = leaf(Tensor::from(Shape{2}, {0, 2}, DType::f64));
    Var y = leaf(Tensor::from(Shape{2}, {0.3, 1}, DType::f64));
    Var b = ag::bce_with_logits(x, y);
    EXPECT_NEAR(b.item(), (std::log(2.0) + std::log1p(std::exp(-2.0))) / 2, 1e-12);
    ag::backward(b);
    EXPECT_NEAR(y.grad().get({1}), -1.0, 1e-12);
    EXPECT_NEAR(x.grad().get({0}), (0.5 - 0.3) / 2, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Backends, NormKnownValues, ::testing::Values(Backend::cpu, Backend::ref),
                         [](const auto& info) { return std::string(backend_name(info.param)); });

}  // namespace
}  // namespace goose
