// CUDA binary, unary and select ops against the fast CPU kernels at training shapes
// (B=2, T=1024, C=768), with the broadcast patterns of RWKV-7 ((C) and (B, 1, C) against
// (B, T, C), a (B, T, 1) column), forward and backward, f32 and bf16.
#include <gtest/gtest.h>

#include "cuda/ops_test_util.h"
#include "goose/ops/binary.h"
#include "goose/ops/select.h"
#include "goose/ops/unary.h"

namespace goose::test {
namespace {

using namespace cuda_ops;
constexpr DType kDtypes[] = {DType::f32, DType::bf16};
const Shape kBTC{2, 1024, 768};

TEST(CudaBinary, BroadcastPatternsForwardAndBackward) {
    GOOSE_REQUIRE_GPU();
    const Shape others[] = {kBTC, Shape{768}, Shape{2, 1, 768}, Shape{2, 1024, 1}};
    for (DType dt : kDtypes) {
        const Tol t = tol_for(dt);
        for (const Shape& sb : others) {
            for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div}) {
                const Tensor a = randn(kBTC, 1);
                const Tensor b = op == BinaryOp::div ? uniform(sb, 2, 0.5, 2.0) : randn(sb, 2);
                const Tensor gy = randn(kBTC, 3);
                const std::string what =
                    std::string(binary_name(op)) + " " + sb.str() + " " + dname(dt);
                const Tensor ah = as_seen(a, dt), bh = as_seen(b, dt), gh = as_seen(gy, dt);
                expect_close(ops::binary_forward(op, gpu(a, dt), gpu(b, dt)),
                             ops::binary_forward(op, ah, bh), t.atol, t.rtol, what + " y");
                const auto g = ops::binary_backward(op, gpu(gy, dt), gpu(a, dt), gpu(b, dt));
                const auto r = ops::binary_backward(op, gh, ah, bh);
                // the broadcast gradient sums up to 2048 terms: scale the tolerance with it
                expect_close(g[0], r[0], t.atol, t.rtol, what + " da");
                expect_close(g[1], r[1], 20 * t.atol, t.rtol, what + " db");
            }
        }
    }
}

TEST(CudaBinary, LerpWithChannelMixAndScale) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kDtypes) {
        const Tol t = tol_for(dt);
        const Tensor a = randn(kBTC, 4), b = randn(kBTC, 5), w = uniform(Shape{768}, 6, 0, 1);
        const Tensor gy = randn(kBTC, 7);
        const Tensor ah = as_seen(a, dt), bh = as_seen(b, dt), wh = as_seen(w, dt),
                     gh = as_seen(gy, dt);
        expect_close(ops::lerp_forward(gpu(a, dt), gpu(b, dt), gpu(w, dt)),
                     ops::lerp_forward(ah, bh, wh), t.atol, t.rtol,
                     std::string("lerp y ") + dname(dt));
        const auto g = ops::lerp_backward(gpu(gy, dt), gpu(a, dt), gpu(b, dt), gpu(w, dt));
        const auto r = ops::lerp_backward(gh, ah, bh, wh);
        expect_close(g[0], r[0], t.atol, t.rtol, "lerp da");
        expect_close(g[1], r[1], t.atol, t.rtol, "lerp db");
        expect_close(g[2], r[2], 50 * t.atol, t.rtol, "lerp dw");
        expect_close(ops::scale_forward(gpu(a, dt), -0.37), ops::scale_forward(ah, -0.37), t.atol,
                     t.rtol, "scale");
    }
}

TEST(CudaUnary, EveryOpForwardAndBackward) {
    GOOSE_REQUIRE_GPU();
    const UnaryOp all[] = {UnaryOp::exp,      UnaryOp::log,  UnaryOp::tanh,  UnaryOp::sigmoid,
                           UnaryOp::softplus, UnaryOp::relu, UnaryOp::relu2, UnaryOp::gelu_tanh,
                           UnaryOp::silu,     UnaryOp::neg,  UnaryOp::sqrt,  UnaryOp::square};
    for (DType dt : kDtypes) {
        const Tol t = tol_for(dt);
        for (UnaryOp op : all) {
            const bool positive = op == UnaryOp::log || op == UnaryOp::sqrt;
            const Tensor x = positive ? uniform(kBTC, 8, 0.5, 2.0) : randn(kBTC, 8, 0, 2);
            const Tensor gy = randn(kBTC, 9);
            const Tensor xh = as_seen(x, dt), gh = as_seen(gy, dt);
            const std::string what = std::string(unary_name(op)) + " " + dname(dt);
            expect_close(ops::unary_forward(op, gpu(x, dt)), ops::unary_forward(op, xh), t.atol,
                         t.rtol, what + " y");
            expect_close(ops::unary_backward(op, gpu(gy, dt), gpu(x, dt)),
                         ops::unary_backward(op, gh, xh), t.atol, t.rtol, what + " dx");
        }
    }
}

TEST(CudaUnary, BackwardFromTheOutput) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kDtypes) {
        const Tol t = tol_for(dt);
        for (UnaryOp op : {UnaryOp::exp, UnaryOp::tanh, UnaryOp::sigmoid, UnaryOp::relu,
                           UnaryOp::relu2}) {
            const Tensor y = ops::unary_forward(op, randn(kBTC, 13, 0, 2));  // CPU, f32
            const Tensor gy = randn(kBTC, 14);
            const std::string what = std::string(unary_name(op)) + " from y " + dname(dt);
            expect_close(ops::unary_backward_from_output(op, gpu(gy, dt), gpu(y, dt)),
                         ops::unary_backward_from_output(op, as_seen(gy, dt), as_seen(y, dt)),
                         t.atol, t.rtol, what);
        }
    }
}

TEST(CudaSelect, WhereAndMaskedFillBroadcast) {
    GOOSE_REQUIRE_GPU();
    Tensor cond = Tensor::empty(Shape{1024, 1}, DType::u8);
    for (int64_t i = 0; i < 1024; ++i) cond.data<uint8_t>()[i] = (i * 7) % 3 == 0;
    for (DType dt : kDtypes) {
        const Tol t = tol_for(dt);
        const Tensor a = randn(kBTC, 10), b = randn(Shape{768}, 11), gy = randn(kBTC, 12);
        const Tensor ah = as_seen(a, dt), bh = as_seen(b, dt), gh = as_seen(gy, dt);
        expect_close(ops::where_forward(gpu(cond), gpu(a, dt), gpu(b, dt)),
                     ops::where_forward(cond, ah, bh), t.atol, t.rtol, "where y");
        const auto g = ops::where_backward(gpu(gy, dt), gpu(cond), a.shape(), b.shape());
        const auto r = ops::where_backward(gh, cond, a.shape(), b.shape());
        expect_close(g[0], r[0], t.atol, t.rtol, "where da");
        expect_close(g[1], r[1], 20 * t.atol, t.rtol, "where db");
        expect_close(ops::masked_fill_forward(gpu(a, dt), gpu(cond), -1e4),
                     ops::masked_fill_forward(ah, cond, -1e4), t.atol, t.rtol, "masked_fill");
    }
}

}  // namespace
}  // namespace goose::test
