// L2Wrap (spec §10.1): the loss value is unchanged; the logits gradient is the cross-entropy
// gradient plus gy * max * 1e-4 / rows at each row's first maximum.
#include <gtest/gtest.h>

#include "goose/autograd.h"
#include "goose/autograd/l2wrap.h"
#include "goose/core/rng.h"

namespace goose {
namespace {

TEST(L2Wrap, ValueUnchangedAndGradientHasTheExtraTerm) {
    Rng rng(12, "l2wrap");
    const int64_t b = 2, t = 3, v = 5, rows = b * t;
    Tensor x = Tensor::randn(Shape{b, t, v}, rng, DType::f64, 0.0, 2.0);
    x.set({1, 2, 1}, 9.0);  // a tie: the first maximum gets the extra gradient
    x.set({1, 2, 3}, 9.0);
    const Tensor targets = Tensor::from(Shape{b, t}, {0, 1, 2, 3, 4, 0}, DType::i64);
    const double gy = 3.0;  // the upstream gradient multiplies the extra term (unlike old L2Wrap)

    Var plain(x.clone(), true);
    Var ce_plain = ag::cross_entropy(plain, targets);
    ag::backward(ag::scale(ce_plain, gy));

    Var logits(x.clone(), true);
    Var ce = ag::cross_entropy(logits, targets);
    Var wrapped = ag::l2wrap(ce, logits);
    EXPECT_EQ(wrapped.item(), ce.item());
    ag::backward(ag::scale(wrapped, gy));

    const auto xv = x.to_vector(), g0 = plain.grad().to_vector(), g = logits.grad().to_vector();
    for (int64_t r = 0; r < rows; ++r) {
        int64_t best = 0;
        for (int64_t j = 1; j < v; ++j)
            if (xv[r * v + j] > xv[r * v + best]) best = j;
        if (r == rows - 1) {
            EXPECT_EQ(best, 1);
        }
        for (int64_t j = 0; j < v; ++j) {
            const double extra = j == best ? gy * xv[r * v + j] * 1e-4 / rows : 0.0;
            EXPECT_NEAR(g[r * v + j], g0[r * v + j] + extra, 1e-15) << r << " " << j;
        }
    }
}

TEST(L2Wrap, LossGradientPassesThroughAndF32Works) {
    Var loss(Tensor::scalar(1.5, DType::f32), true);
    Var logits(Tensor::from(Shape{2, 3}, {1, -2, 0.5, -1, -3, -0.5}, DType::f32), true);
    Var y = ag::l2wrap(loss, logits);
    EXPECT_FLOAT_EQ(static_cast<float>(y.item()), 1.5f);
    ag::backward(y);
    EXPECT_EQ(loss.grad().item(), 1.0);
    const auto g = logits.grad().to_vector();
    const std::vector<double> want{1e-4 / 2, 0, 0, 0, 0, -0.5e-4 / 2};
    for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], want[i], 1e-10) << i;
}

TEST(L2Wrap, Errors) {
    Var loss(Tensor::zeros(Shape{2}), true);
    Var logits(Tensor::zeros(Shape{2, 3}), true);
    try {
        ag::l2wrap(loss, logits);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("l2wrap"), std::string::npos);
    }
    EXPECT_THROW(
        ag::l2wrap(Var(Tensor::scalar(0.0), true), Var(Tensor::zeros(Shape{2, 3}, DType::i32))),
        Error);
}

}  // namespace
}  // namespace goose
