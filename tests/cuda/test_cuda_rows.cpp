// CUDA row-wise ops against the fast CPU kernels at training shapes: softmax and log_softmax,
// layer_norm, group_norm (RWKV-7's ln_x: 12 heads of 64), l2_normalize, cross-entropy with
// ignored rows, mse and bce_with_logits; forward and backward, f32 and bf16. Also: the bf16
// statistics are f32, losses stay on the device, and bad targets are a goose::Error.
#include <gtest/gtest.h>

#include "cuda/ops_test_util.h"
#include "goose/core/error.h"
#include "goose/ops/loss.h"
#include "goose/ops/norm.h"
#include "goose/ops/softmax.h"

namespace goose::test {
namespace {

using namespace cuda_ops;
constexpr DType kDtypes[] = {DType::f32, DType::bf16};
const Shape kBTC{2, 1024, 768};

TEST(CudaRows, SoftmaxAndLogSoftmax) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kDtypes) {
        const Tol t = tol_for(dt);
        for (const Shape& s : {kBTC, Shape{16, 65536}, Shape{3, 5}}) {
            const Tensor x = randn(s, 20, 0, 3), gy = randn(s, 21);
            const Tensor xh = as_seen(x, dt), gh = as_seen(gy, dt);
            const std::string what = s.str() + " " + dname(dt);
            const Tensor y = ops::softmax_forward(gpu(x, dt));
            const Tensor yr = ops::softmax_forward(xh);
            expect_close(y, yr, t.atol, t.rtol, "softmax " + what);
            expect_close(ops::softmax_backward(gpu(gy, dt), y),
                         ops::softmax_backward(gh, as_seen(host(y), dt)), t.atol, t.rtol,
                         "softmax dx " + what);
            const Tensor ly = ops::log_softmax_forward(gpu(x, dt));
            expect_close(ly, ops::log_softmax_forward(xh), 4 * t.atol, t.rtol,
                         "log_softmax " + what);
            expect_close(ops::log_softmax_backward(gpu(gy, dt), ly),
                         ops::log_softmax_backward(gh, as_seen(host(ly), dt)), 4 * t.atol, t.rtol,
                         "log_softmax dx " + what);
        }
    }
}

TEST(CudaRows, LayerNormAndGroupNorm) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kDtypes) {
        const Tol t = tol_for(dt, 1e-4, 1e-4);
        for (int groups : {0, 12}) {  // 0: layer_norm
            const Tensor x = randn(kBTC, 30, 0.5, 2), gy = randn(kBTC, 31);
            const Tensor w = randn(Shape{768}, 32, 1, 0.2), b = randn(Shape{768}, 33);
            const Tensor xh = as_seen(x, dt), gh = as_seen(gy, dt), wh = as_seen(w, dt),
                         bh = as_seen(b, dt);
            const std::string what =
                (groups ? "group_norm " : "layer_norm ") + std::string(dname(dt));
            const auto f = groups
                               ? ops::group_norm_forward(gpu(x, dt), groups, gpu(w, dt), gpu(b, dt))
                               : ops::layer_norm_forward(gpu(x, dt), gpu(w, dt), gpu(b, dt));
            const auto fr = groups ? ops::group_norm_forward(xh, groups, wh, bh)
                                   : ops::layer_norm_forward(xh, wh, bh);
            EXPECT_EQ(f.mean.dtype(), DType::f32) << what;  // f32 statistics for bf16 too
            expect_close(f.y, fr.y, t.atol, t.rtol, what + " y");
            expect_close(f.mean, fr.mean, 1e-5, 1e-5, what + " mean");
            expect_close(f.rstd, fr.rstd, 1e-5, 1e-4, what + " rstd");
            const auto g = groups ? ops::group_norm_backward(gpu(gy, dt), gpu(x, dt), groups,
                                                             gpu(w, dt), f.mean, f.rstd, true, true)
                                  : ops::layer_norm_backward(gpu(gy, dt), gpu(x, dt), gpu(w, dt),
                                                             f.mean, f.rstd, true, true);
            const auto r =
                groups ? ops::group_norm_backward(gh, xh, groups, wh, fr.mean, fr.rstd, true, true)
                       : ops::layer_norm_backward(gh, xh, wh, fr.mean, fr.rstd, true, true);
            expect_close(g.dx, r.dx, t.atol, t.rtol, what + " dx");
            // dw, db sum 2048 rows
            expect_close(g.dw, r.dw, 30 * t.atol, t.rtol, what + " dw");
            expect_close(g.db, r.db, 30 * t.atol, t.rtol, what + " db");
        }
    }
}

TEST(CudaRows, L2Normalize) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kDtypes) {
        const Tol t = tol_for(dt);
        const Shape s{2, 1024, 12, 64};
        const Tensor x = randn(s, 40), gy = randn(s, 41);
        const Tensor xh = as_seen(x, dt), gh = as_seen(gy, dt);
        expect_close(ops::l2_normalize_forward(gpu(x, dt)), ops::l2_normalize_forward(xh), t.atol,
                     t.rtol, std::string("l2 y ") + dname(dt));
        expect_close(ops::l2_normalize_backward(gpu(gy, dt), gpu(x, dt)),
                     ops::l2_normalize_backward(gh, xh), t.atol, t.rtol,
                     std::string("l2 dx ") + dname(dt));
    }
}

TEST(CudaLoss, CrossEntropyWithIgnoredRows) {
    GOOSE_REQUIRE_GPU();
    const int64_t rows = 1024, v = 8192;
    Tensor targets = Tensor::empty(Shape{2, rows / 2}, DType::i64);
    for (int64_t i = 0; i < rows; ++i)
        targets.data<int64_t>()[i] = i % 17 == 0 ? -100 : (i * 7919) % v;
    for (DType dt : kDtypes) {
        const Tensor x = randn(Shape{2, rows / 2, v}, 50, 0, 2);
        const Tensor xh = as_seen(x, dt);
        const auto f = ops::cross_entropy_forward(gpu(x, dt), gpu(targets));
        const auto fr = ops::cross_entropy_forward(xh, targets);
        EXPECT_TRUE(f.loss.device().is_cuda());
        EXPECT_EQ(f.lse.dtype(), DType::f32);  // f32 for bf16 logits too
        expect_close(f.loss, fr.loss, 1e-5, dt == DType::bf16 ? 8e-3 : 1e-5,
                     std::string("ce loss ") + dname(dt));
        expect_close(f.lse, fr.lse, 1e-4, 1e-5, std::string("ce lse ") + dname(dt));
        const Tensor gy = Tensor::scalar(1.7);
        const Tensor dx = ops::cross_entropy_backward(gpu(gy, dt), gpu(x, dt), gpu(targets), f.lse);
        const Tensor dr = ops::cross_entropy_backward(as_seen(gy, dt), xh, targets, fr.lse);
        // dlogits are O(1 / rows): compare relative to that scale
        expect_close(dx, dr, dt == DType::bf16 ? 2e-5 : 1e-8, dt == DType::bf16 ? 1.6e-2 : 1e-4,
                     std::string("ce dx ") + dname(dt));
    }
    Tensor bad = targets.clone();
    bad.data<int64_t>()[5] = v;
    EXPECT_THROW(
        ops::cross_entropy_forward(gpu(randn(Shape{2, rows / 2, v}, 51), DType::f32), gpu(bad)),
        Error);
}

TEST(CudaLoss, MseAndBceWithLogits) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kDtypes) {
        const Tensor a = randn(kBTC, 60), b = uniform(kBTC, 61, 0, 1);
        const Tensor ah = as_seen(a, dt), bh = as_seen(b, dt);
        const double rt = dt == DType::bf16 ? 8e-3 : 1e-5;
        expect_close(ops::mse_forward(gpu(a, dt), gpu(b, dt)), ops::mse_forward(ah, bh), 1e-6, rt,
                     "mse");
        expect_close(ops::bce_with_logits_forward(gpu(a, dt), gpu(b, dt)),
                     ops::bce_with_logits_forward(ah, bh), 1e-6, rt, "bce");
        const Tensor gy = Tensor::scalar(3.0);
        const auto m = ops::mse_backward(gpu(gy, dt), gpu(a, dt), gpu(b, dt));
        const auto mr = ops::mse_backward(as_seen(gy, dt), ah, bh);
        expect_close(m.first, mr.first, 1e-9, dt == DType::bf16 ? 1.6e-2 : 1e-5, "mse dp");
        const auto c = ops::bce_with_logits_backward(gpu(gy, dt), gpu(a, dt), gpu(b, dt));
        const auto cr = ops::bce_with_logits_backward(as_seen(gy, dt), ah, bh);
        expect_close(c.first, cr.first, 1e-9, dt == DType::bf16 ? 1.6e-2 : 1e-5, "bce dx");
        expect_close(c.second, cr.second, 1e-9, dt == DType::bf16 ? 1.6e-2 : 1e-5, "bce dy");
    }
}

}  // namespace
}  // namespace goose::test
