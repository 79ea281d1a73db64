// The head + cross-entropy reference (head_cross_entropy on the CPU) against the same loss built
// from autograd ops: linear, cross_entropy and l2wrap, backward with a seed gy.
#include <gtest/gtest.h>

#include <cmath>

#include "common/expect_error.h"
#include "goose/autograd/l2wrap.h"
#include "goose/autograd/loss.h"
#include "goose/autograd/matmul.h"
#include "goose/autograd/tape.h"
#include "goose/core/rng.h"
#include "goose/ops/head_ce.h"

namespace goose::ops {
namespace {

void expect_close(const Tensor& got, const Tensor& want, double tol, const char* what) {
    ASSERT_EQ(got.shape(), want.shape()) << what;
    const auto g = got.to_vector(), w = want.to_vector();
    for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], w[i], tol) << what << " [" << i << "]";
}

TEST(HeadCrossEntropy, MatchesAutogradLinearCrossEntropyL2Wrap) {
    Rng rng(31);
    for (bool l2 : {false, true}) {
        const Tensor x = Tensor::randn(Shape{2, 5, 6}, rng, DType::f64);
        const Tensor w = Tensor::randn(Shape{11, 6}, rng, DType::f64);
        const Tensor t =
            Tensor::from(Shape{2, 5}, {0, 3, -100, 10, 4, 7, 7, 1, -100, 2}, DType::i64);
        HeadCrossEntropyOptions opt;
        opt.l2wrap = l2, opt.gy = 0.5;
        const HeadCrossEntropyResult r = head_cross_entropy(x, w, t, opt);

        Var xv(x, true), wv(w, true);
        const Var logits = ag::linear(xv, wv);
        const Var loss = ag::cross_entropy(logits, t);
        const Var out = l2 ? ag::l2wrap(loss, logits) : loss;
        ag::backward(out, Tensor::scalar(0.5, DType::f64));
        EXPECT_NEAR(r.loss.item(), loss.item(), 1e-12);
        expect_close(r.dx, xv.grad(), 1e-12, "dx");
        expect_close(r.dw, wv.grad(), 1e-12, "dw");
        EXPECT_EQ(r.lse.shape(), t.shape());
    }
}

TEST(HeadCrossEntropy, BadArgumentsAreClearErrors) {
    const Tensor x = Tensor::zeros(Shape{3, 4}), w = Tensor::zeros(Shape{5, 4});
    goose::test::expect_error(
        [&] { (void)head_cross_entropy(x, w, Tensor::zeros(Shape{2}, DType::i64)); }, "targets");
    goose::test::expect_error(
        [&] {
            (void)head_cross_entropy(x, Tensor::zeros(Shape{5, 3}),
                                     Tensor::zeros(Shape{3}, DType::i64));
        },
        "features");
    goose::test::expect_error([&] { (void)head_cross_entropy(x, w, Tensor::zeros(Shape{3})); },
                              "index");
}

}  // namespace
}  // namespace goose::ops
