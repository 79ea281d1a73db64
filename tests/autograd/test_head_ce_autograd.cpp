// ag::head_cross_entropy (one tape entry, gradients from the fused op) against the composed
// linear + cross_entropy + l2wrap: loss and both gradients, with an upstream gradient of 2.5
// and as the root (backward's seed of 1).
#include <gtest/gtest.h>

#include <cmath>
#include <utility>

#include "goose/autograd.h"
#include "goose/core/rng.h"

namespace goose::ag {
namespace {

TEST(HeadCrossEntropyAutograd, MatchesComposedLinearCrossEntropyL2Wrap) {
    Rng rng(3, "head_ce");
    const Tensor xv = Tensor::randn(Shape{2, 5, 6}, rng, DType::f64);
    const Tensor wv = Tensor::randn(Shape{11, 6}, rng, DType::f64);
    std::vector<double> ids(10);
    for (double& i : ids) i = static_cast<double>(rng.randint(0, 11));
    const Tensor targets = Tensor::from(Shape{2, 5}, ids, DType::i64);
    // scale 1: the loss is the root (backward's default seed, no scaling pass)
    for (auto [l2, gy] : {std::pair{false, 2.5}, {true, 2.5}, {true, 1.0}}) {
        Var x1(xv.clone(), true), w1(wv.clone(), true);
        Var fused = head_cross_entropy(x1, w1, targets, l2);
        backward(gy == 1.0 ? fused : scale(fused, gy));
        Var x2(xv.clone(), true), w2(wv.clone(), true);
        Var logits = linear(x2, w2);
        Var loss = cross_entropy(logits, targets);
        if (l2) loss = l2wrap(loss, logits);
        const double composed = loss.value().item();
        backward(scale(loss, gy));
        EXPECT_NEAR(fused.value().item(), composed, 1e-12);
        const auto gx1 = x1.grad().to_vector(), gx2 = x2.grad().to_vector();
        const auto gw1 = w1.grad().to_vector(), gw2 = w2.grad().to_vector();
        for (size_t i = 0; i < gx2.size(); ++i) EXPECT_NEAR(gx1[i], gx2[i], 1e-12) << "dx " << i;
        for (size_t i = 0; i < gw2.size(); ++i) EXPECT_NEAR(gw1[i], gw2[i], 1e-12) << "dw " << i;
    }
}

}  // namespace
}  // namespace goose::ag
