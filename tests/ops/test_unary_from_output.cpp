// unary_backward_from_output: dx from y = f(x) equals unary_backward's dx from x (exp, tanh,
// sigmoid, relu, relu2; f64 and f32, reference and fast CPU kernels), and the ops whose
// derivative is not a function of the output are refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common/expect_error.h"
#include "goose/core/rng.h"
#include "goose/ops/backend.h"
#include "goose/ops/unary.h"

namespace goose::ops {
namespace {

void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
    ASSERT_EQ(got.shape(), want.shape()) << what;
    const auto g = got.to_vector(), w = want.to_vector();
    for (size_t i = 0; i < g.size(); ++i)
        EXPECT_NEAR(g[i], w[i], tol * (1 + std::abs(w[i]))) << what << " [" << i << "]";
}

constexpr UnaryOp kFromOutput[] = {UnaryOp::exp, UnaryOp::tanh, UnaryOp::sigmoid, UnaryOp::relu,
                                   UnaryOp::relu2};

TEST(UnaryFromOutput, MatchesTheDerivativeFromTheInput) {
    Rng rng(41, "unary from output");
    for (DType dt : {DType::f64, DType::f32}) {
        // both signs, and exact zeros (relu and relu2: 0 has derivative 0 either way)
        Tensor x = Tensor::randn(Shape{3, 257}, rng, DType::f64, 0, 2);
        x.data<double>()[5] = 0, x.data<double>()[300] = 0;
        x = x.to(dt);
        const Tensor gy = Tensor::randn(Shape{3, 257}, rng, dt);
        const double tol = dt == DType::f64 ? 1e-12 : 2e-6;
        for (UnaryOp op : kFromOutput) {
            ASSERT_TRUE(unary_has_output_derivative(op)) << unary_name(op);
            const std::string what = std::string(unary_name(op)) + " " + std::string(dtype_name(dt));
            const Tensor y = unary_forward(op, x);
            const Tensor want = unary_backward(op, gy, x);
            expect_close(unary_backward_from_output(op, gy, y), want, tol, what + " cpu");
            BackendScope ref(Backend::ref);
            expect_close(unary_backward_from_output(op, gy, y), want, tol, what + " ref");
        }
    }
}

TEST(UnaryFromOutput, StridedOutput) {
    Rng rng(42, "strided");
    const Tensor x = Tensor::randn(Shape{6, 5}, rng, DType::f64);
    const Tensor y = unary_forward(UnaryOp::relu2, x).transpose(0, 1);  // not packed
    const Tensor gy = Tensor::randn(Shape{5, 6}, rng, DType::f64);
    expect_close(unary_backward_from_output(UnaryOp::relu2, gy, y),
                 unary_backward(UnaryOp::relu2, gy, x.transpose(0, 1)), 1e-12, "relu2 strided");
}

TEST(UnaryFromOutput, RefusesOpsWithoutOne) {
    const Tensor y = Tensor::full(Shape{4}, 1.0), gy = Tensor::full(Shape{4}, 1.0);
    for (UnaryOp op : {UnaryOp::log, UnaryOp::softplus, UnaryOp::gelu_tanh, UnaryOp::silu,
                       UnaryOp::sqrt, UnaryOp::square, UnaryOp::neg}) {
        EXPECT_FALSE(unary_has_output_derivative(op)) << unary_name(op);
        test::expect_error([&] { unary_backward_from_output(op, gy, y); },
                           {unary_name(op), "not a function of its output"});
    }
    test::expect_error(
        [&] { unary_backward_from_output(UnaryOp::relu2, Tensor::full(Shape{3}, 1.0), y); },
        "relu2");
}

}  // namespace
}  // namespace goose::ops
