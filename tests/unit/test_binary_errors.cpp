// Argument errors of the binary, select and reduce families (the message names the op and the
// offending tensors), and small hand-computed values on both CPU backends.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "goose/autograd/binary.h"
#include "goose/autograd/reduce.h"
#include "goose/autograd/select.h"
#include "goose/ops/backend.h"

namespace goose {
namespace {

// The message of the goose::Error that f throws ("" if none).
template <class F>
std::string error_of(F f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// stmt throws goose::Error whose message contains every one of the given strings.
#define EXPECT_GOOSE_ERROR(stmt, ...)                                                          \
    do {                                                                                       \
        EXPECT_THROW(stmt, ::goose::Error);                                                    \
        const std::string msg_ = error_of([&] { stmt; });                                      \
        for (const char* part_ : {__VA_ARGS__})                                                \
            EXPECT_NE(msg_.find(part_), std::string::npos) << "'" << part_ << "' not in: "     \
                                                           << msg_;                            \
    } while (0)

Tensor f32(const Shape& s) { return Tensor::zeros(s, DType::f32); }
Tensor mask(const Shape& s) { return Tensor::zeros(s, DType::u8); }
Var var(const Tensor& t) { return Var(t, false); }

TEST(BinaryErrors, ShapesDtypesAndGradients) {
    EXPECT_GOOSE_ERROR(ops::binary_forward(BinaryOp::add, f32({3}), f32({4})), "add", "[3]",
                       "[4]");
    EXPECT_GOOSE_ERROR(ag::sub(var(f32({2, 3})), var(f32({3, 2}))), "sub", "[2, 3]", "[3, 2]");
    EXPECT_GOOSE_ERROR(ag::mul(var(Tensor::zeros({3}, DType::i32)), var(f32({3}))), "mul",
                       "i32[3]");
    EXPECT_GOOSE_ERROR(ag::div(var(f32({3})), var(Tensor::zeros({3}, DType::f64))), "div",
                       "f32[3]", "f64[3]");
    EXPECT_GOOSE_ERROR(ag::add(var(f32({3})), var(Tensor::zeros({3}, DType::bf16))), "add",
                       "bf16[3]");
    EXPECT_GOOSE_ERROR(ag::add(var(f32({3})), var(Tensor())), "add", "undefined");
    EXPECT_GOOSE_ERROR(ops::binary_backward(BinaryOp::mul, f32({3}), f32({2, 3}), f32({3})),
                       "mul", "gradient f32[3]", "[2, 3]");
    EXPECT_GOOSE_ERROR(ag::scale(var(Tensor::zeros({2}, DType::i64)), 2.0), "scale", "i64[2]");
    EXPECT_GOOSE_ERROR(ag::lerp(var(f32({2, 3})), var(f32({3})), var(f32({2}))), "lerp",
                       "f32[2, 3]", "f32[3]", "f32[2]");
    EXPECT_GOOSE_ERROR(ag::lerp(var(f32({3})), var(f32({3})), var(Tensor::zeros({3}, DType::u8))),
                       "lerp", "u8[3]");
    EXPECT_GOOSE_ERROR(ops::lerp_backward(f32({4}), f32({3}), f32({3}), f32({3})), "lerp",
                       "gradient f32[4]");
}

TEST(SelectErrors, MasksShapesAndDtypes) {
    EXPECT_GOOSE_ERROR(ag::where(f32({3}), var(f32({3})), var(f32({3}))), "where", "cond",
                       "u8", "f32[3]");
    EXPECT_GOOSE_ERROR(ag::where(Tensor::zeros({3}, DType::i32), var(f32({3})), var(f32({3}))),
                       "where", "i32[3]");
    EXPECT_GOOSE_ERROR(ag::where(mask({4}), var(f32({3})), var(f32({3}))), "where", "u8[4]",
                       "f32[3]");
    EXPECT_GOOSE_ERROR(ag::where(mask({3}), var(f32({3})), var(Tensor::zeros({3}, DType::f64))),
                       "where", "f64[3]");
    EXPECT_GOOSE_ERROR(ag::where(mask({3}), var(Tensor::zeros({3}, DType::i32)), var(f32({3}))),
                       "where", "i32[3]");
    EXPECT_GOOSE_ERROR(ops::where_backward(f32({2}), mask({3}), Shape{3}, Shape{3}), "where",
                       "gradient f32[2]");
    EXPECT_GOOSE_ERROR(ag::masked_fill(var(f32({2, 3})), f32({2, 3}), 0.0), "masked_fill",
                       "mask", "u8", "f32[2, 3]");
    EXPECT_GOOSE_ERROR(ag::masked_fill(var(f32({2, 3})), mask({2}), 0.0), "masked_fill",
                       "u8[2]", "f32[2, 3]");
    // The mask broadcasts to x; x does not broadcast to the mask.
    EXPECT_GOOSE_ERROR(ag::masked_fill(var(f32({3})), mask({2, 3}), 0.0), "masked_fill",
                       "u8[2, 3]", "f32[3]");
    EXPECT_GOOSE_ERROR(ag::masked_fill(var(f32({3, 1})), mask({3, 4}), 0.0), "masked_fill",
                       "u8[3, 4]");
    EXPECT_GOOSE_ERROR(ag::masked_fill(var(Tensor::zeros({3}, DType::i32)), mask({3}), 0.0),
                       "masked_fill", "i32[3]");
}

TEST(ReduceErrors, AxesAndDtypes) {
    const Var x = var(f32({2, 3}));
    EXPECT_GOOSE_ERROR(ag::sum(x, {2}), "sum", "axis 2", "f32[2, 3]");
    EXPECT_GOOSE_ERROR(ag::sum(x, {-3}), "sum", "axis -3", "f32[2, 3]");
    EXPECT_GOOSE_ERROR(ag::sum(x, {1, -1}), "sum", "repeated", "[1, -1]", "f32[2, 3]");
    EXPECT_GOOSE_ERROR(ag::mean(x, {0, 0}), "mean", "repeated");
    EXPECT_GOOSE_ERROR(ag::mean(x, {5}, true), "mean", "axis 5");
    EXPECT_GOOSE_ERROR(ag::sum(var(Tensor::zeros({3}, DType::i32))), "sum", "i32[3]");
    EXPECT_GOOSE_ERROR(ag::mean(var(Tensor::zeros({3}, DType::u8))), "mean", "u8[3]");
    EXPECT_GOOSE_ERROR(ag::max(x, 2), "max", "axis 2", "f32[2, 3]");
    EXPECT_GOOSE_ERROR(ag::max(x, -3), "max", "axis -3");
    EXPECT_GOOSE_ERROR(ag::max(var(f32({2, 0})), 1), "max", "empty", "f32[2, 0]");
    EXPECT_GOOSE_ERROR(ag::max(var(Tensor::scalar(1.0)), 0), "max", "axis 0");
    EXPECT_GOOSE_ERROR(ag::max(var(Tensor::zeros({3}, DType::i64)), 0), "max", "i64[3]");
    EXPECT_GOOSE_ERROR(ops::sum_backward(f32({2}), Shape{2, 3}, {0}, false), "sum",
                       "gradient f32[2]", "[3]");
    EXPECT_GOOSE_ERROR(ops::max_backward(f32({2}), Tensor::zeros({2}, DType::f32), Shape{2, 3},
                                         1, false),
                       "max", "f32[2]");
    EXPECT_GOOSE_ERROR(ops::max_backward(f32({2}), Tensor::full({2}, 3, DType::i64), Shape{2, 3},
                                         1, false),
                       "max", "index 3", "size 3");
    EXPECT_GOOSE_ERROR(ops::sum_to_shape(f32({2, 3}), Shape{2}), "sum_to_shape", "[2]",
                       "f32[2, 3]");
}

class BothBackends : public ::testing::TestWithParam<Backend> {};

std::vector<double> values(const Var& v) { return v.value().to_vector(); }
std::vector<double> grad(const Var& v) { return v.grad().to_vector(); }
using V = std::vector<double>;

TEST_P(BothBackends, BinaryKnownValues) {
    BackendScope scope(GetParam());
    Var a(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}), true);
    Var b(Tensor::from({3}, {10, 20, 40}), true);
    Var y = ag::add(ag::mul(a, b), ag::div(a, b));  // a b + a / b
    EXPECT_EQ(y.shape(), (Shape{2, 3}));
    EXPECT_NEAR(values(y)[5], 6 * 40 + 6.0 / 40, 1e-4);
    ag::backward(ag::sum(y));
    // d/da = b + 1/b; d/db = sum over rows of a - a / b^2
    EXPECT_NEAR(grad(a)[1], 20 + 1.0 / 20, 1e-5);
    EXPECT_NEAR(grad(b)[2], (3 + 6) - (3 + 6) / 1600.0, 1e-4);

    Var x(Tensor::from({2, 1}, {1, 2}), true);
    Var mu(Tensor::from({3}, {0, 0.5, 1}), true);
    Var prev(Tensor::from({2, 3}, {3, 3, 3, 5, 5, 5}), true);
    Var z = ag::lerp(x, prev, mu);  // (2, 3)
    EXPECT_EQ(values(z), (V{1, 2, 3, 2, 3.5, 5}));
    ag::backward(ag::sum(z));
    EXPECT_EQ(grad(x), (V{1.5, 1.5}));                   // sum of (1 - mu)
    EXPECT_EQ(grad(mu), (V{2 + 3, 2 + 3, 2 + 3}));       // sum over rows of prev - x
    EXPECT_EQ(grad(prev), (V{0, 0.5, 1, 0, 0.5, 1}));

    Var s = ag::sub(ag::scale(x, 3.0), x);  // 2x, x (2, 1)
    EXPECT_EQ(values(s), (V{2, 4}));
}

TEST_P(BothBackends, SelectKnownValues) {
    BackendScope scope(GetParam());
    const Tensor cond = Tensor::from({2, 1}, {1, 0}).to(DType::u8);
    Var a(Tensor::from({3}, {1, 2, 3}), true);
    Var b(Tensor::scalar(-1.0), true);
    Var y = ag::where(cond, a, b);  // (2, 3)
    EXPECT_EQ(values(y), (V{1, 2, 3, -1, -1, -1}));
    ag::backward(ag::sum(y));
    EXPECT_EQ(grad(a), (V{1, 1, 1}));
    EXPECT_EQ(grad(b), (V{3}));

    Var x(Tensor::from({2, 2}, {1, 2, 3, 4}), true);
    const Tensor m = Tensor::from({2}, {0, 1}).to(DType::u8);
    Var f = ag::masked_fill(x, m, -9);
    EXPECT_EQ(values(f), (V{1, -9, 3, -9}));
    ag::backward(ag::sum(f));
    EXPECT_EQ(grad(x), (V{1, 0, 1, 0}));
}

TEST_P(BothBackends, ReduceKnownValues) {
    BackendScope scope(GetParam());
    Var x(Tensor::from({2, 3}, {1, 5, 5, 7, 0, 2}), true);
    EXPECT_EQ(ag::sum(x).shape(), Shape{});
    EXPECT_DOUBLE_EQ(ag::sum(x).item(), 20);
    EXPECT_EQ(ag::sum(x, {}, true).shape(), (Shape{1, 1}));
    EXPECT_EQ(values(ag::sum(x, {0})), (V{8, 5, 7}));
    EXPECT_EQ(values(ag::sum(x, {-1}, true)), (V{11, 9}));
    EXPECT_EQ(ag::sum(x, {-1}, true).shape(), (Shape{2, 1}));
    EXPECT_EQ(values(ag::mean(x, {1})), (V{11 / 3.0f, 3}));
    ag::backward(ag::sum(ag::mean(x, {0})));
    EXPECT_EQ(grad(x), (V{0.5, 0.5, 0.5, 0.5, 0.5, 0.5}));
    x.zero_grad();

    // Ties: the gradient goes to the first maximum.
    Var mx = ag::max(x, 1, true);
    EXPECT_EQ(mx.shape(), (Shape{2, 1}));
    EXPECT_EQ(values(mx), (V{5, 7}));
    ag::backward(ag::sum(mx));
    EXPECT_EQ(grad(x), (V{0, 1, 0, 1, 0, 0}));
    x.zero_grad();
    ag::backward(ag::sum(ag::max(x, 0)));
    EXPECT_EQ(grad(x), (V{0, 1, 1, 1, 0, 0}));

    // NaN propagates and takes the gradient.
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (int64_t n : {3, 40}) {  // a short row and one longer than the SIMD width
        Tensor t = Tensor::zeros({n});
        t.set({1}, nan);
        t.set({2}, 5);
        const ops::MaxResult r = ops::max_forward(t, 0);
        EXPECT_TRUE(std::isnan(r.values.item()));
        EXPECT_EQ(r.indices.item(), 1);
        Tensor c = Tensor::zeros({n, 2});
        c.set({1, 1}, nan);
        c.set({2, 1}, 5);
        EXPECT_EQ(ops::max_forward(c, 0).indices.to_vector(), (V{0, 1}));
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, BothBackends, ::testing::Values(Backend::ref, Backend::cpu),
                         [](const auto& info) { return std::string(backend_name(info.param)); });

}  // namespace
}  // namespace goose
