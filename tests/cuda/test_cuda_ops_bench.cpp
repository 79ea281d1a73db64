// Timings of the CUDA elementwise, reduction, norm, loss and sequence kernels at RWKV-7
// training shapes (B=8, T=1024, C=768), each beside the H100's memory bandwidth: the bytes an
// op must move (inputs read once, outputs written once) over its time. Runs only with
// GOOSE_CUDA_OPS_BENCH=1 (a measurement, not a check); prints a table.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "cuda/ops_test_util.h"
#include "goose/ops/binary.h"
#include "goose/ops/loss.h"
#include "goose/ops/norm.h"
#include "goose/ops/reduce.h"
#include "goose/ops/sequence.h"
#include "goose/ops/softmax.h"
#include "goose/ops/unary.h"

namespace goose::test {
namespace {

using namespace cuda_ops;
constexpr double kPeakGBs = 3350;  // H100 SXM HBM3

// Median-free simple timing: warm-up, then the mean of `iters` runs.
double time_us(const std::function<void()>& f, int iters = 20) {
    f();
    cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) f();
    cuda::synchronize();
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::micro>(t1 - t0).count() / iters;
}

void row(const char* op, DType dt, double bytes, double us) {
    const double gbs = bytes / us * 1e-3;
    std::printf("| %-34s | %-4s | %9.1f | %7.0f | %5.1f%% |\n", op, dname(dt), us, gbs,
                100 * gbs / kPeakGBs);
}

TEST(CudaOpsBench, TrainingShapes) {
    GOOSE_REQUIRE_GPU();
    if (!std::getenv("GOOSE_CUDA_OPS_BENCH")) GTEST_SKIP() << "set GOOSE_CUDA_OPS_BENCH=1";
    const int64_t B = 8, T = 1024, C = 768, V = 65536, N = B * T * C;
    std::printf(
        "| op (B=8 T=1024 C=768) | dtype | us | GB/s | of %.0f GB/s |\n|---|---|---|---|---|\n",
        kPeakGBs);
    for (DType dt : {DType::f32, DType::bf16}) {
        const double e = double(dtype_size(dt));
        const Tensor x = gpu(randn(Shape{B, T, C}, 1), dt), y = gpu(randn(Shape{B, T, C}, 2), dt);
        const Tensor g = gpu(randn(Shape{B, T, C}, 3), dt), w = gpu(randn(Shape{C}, 4), dt);
        const Tensor col = gpu(randn(Shape{B, T, 1}, 5), dt);
        row("add (B,T,C)+(B,T,C)", dt, 3 * N * e,
            time_us([&] { ops::binary_forward(BinaryOp::add, x, y); }));
        row("mul (B,T,C)*(C)", dt, 2 * N * e,
            time_us([&] { ops::binary_forward(BinaryOp::mul, x, w); }));
        row("mul (B,T,C)*(B,T,1)", dt, 2 * N * e,
            time_us([&] { ops::binary_forward(BinaryOp::mul, x, col); }));
        row("mul backward, b (C) (db summed)", dt, 4 * N * e,
            time_us([&] { ops::binary_backward(BinaryOp::mul, g, x, w); }));
        row("lerp x,y,(C)", dt, 3 * N * e, time_us([&] { ops::lerp_forward(x, y, w); }));
        row("tanh", dt, 2 * N * e, time_us([&] { ops::unary_forward(UnaryOp::tanh, x); }));
        row("sigmoid backward", dt, 3 * N * e,
            time_us([&] { ops::unary_backward(UnaryOp::sigmoid, g, x); }));
        row("relu2", dt, 2 * N * e, time_us([&] { ops::unary_forward(UnaryOp::relu2, x); }));
        row("sum axes {0,1} -> (C)", dt, N * e, time_us([&] { ops::sum_forward(x, {0, 1}); }));
        row("sum all", dt, N * e, time_us([&] { ops::sum_forward(x); }));
        row("softmax rows of 768", dt, 2 * N * e, time_us([&] { ops::softmax_forward(x); }));
        const auto ln = ops::layer_norm_forward(x, w, w);
        row("layer_norm forward", dt, 2 * N * e,
            time_us([&] { ops::layer_norm_forward(x, w, w); }));
        row("layer_norm backward (dx, dw, db)", dt, 3 * N * e,
            time_us([&] { ops::layer_norm_backward(g, x, w, ln.mean, ln.rstd, true, true); }));
        const auto gn = ops::group_norm_forward(x, 12, w, w);
        row("group_norm 12 forward", dt, 2 * N * e,
            time_us([&] { ops::group_norm_forward(x, 12, w, w); }));
        row("group_norm 12 backward", dt, 3 * N * e,
            time_us([&] { ops::group_norm_backward(g, x, 12, w, gn.mean, gn.rstd, true, true); }));
        const Tensor heads = x.view(Shape{B, T, 12, 64});
        row("l2_normalize heads of 64", dt, 2 * N * e,
            time_us([&] { ops::l2_normalize_forward(heads); }));
        row("token_shift", dt, 2 * N * e, time_us([&] { ops::token_shift_forward(x); }));
        Tensor ids_h = Tensor::empty(Shape{B, T}, DType::i64);
        for (int64_t i = 0; i < B * T; ++i) ids_h.data<int64_t>()[i] = (i * 7919) % V;
        const Tensor ids = gpu(ids_h);
        const Tensor emb = gpu(randn(Shape{V, C}, 6), dt);
        row("embedding forward (ids checked)", dt, 2 * N * e,
            time_us([&] { ops::embedding_forward(emb, ids); }));
        row("embedding backward (V=65536)", dt, (N + V * C) * e,
            time_us([&] { ops::embedding_backward(g, ids, V); }));
        const int64_t rows = 2048;
        const Tensor logits = gpu(randn(Shape{rows, V}, 7), dt);
        Tensor t_h = Tensor::empty(Shape{rows}, DType::i64);
        for (int64_t i = 0; i < rows; ++i) t_h.data<int64_t>()[i] = (i * 131) % V;
        const Tensor tg = gpu(t_h);
        const auto ce = ops::cross_entropy_forward(logits, tg);
        row("cross_entropy fwd 2048 x 65536", dt, double(rows) * V * e,
            time_us([&] { ops::cross_entropy_forward(logits, tg); }));
        const Tensor one = gpu(Tensor::scalar(1.0), dt);
        row("cross_entropy bwd 2048 x 65536", dt, 2.0 * rows * V * e,
            time_us([&] { ops::cross_entropy_backward(one, logits, tg, ce.lse); }));
    }
}

}  // namespace
}  // namespace goose::test
