// CUDA causal attention (the simple materialised-softmax kernels) against the fast CPU kernel:
// forward, log-sum-exp and the three gradients, f32 and bf16.
#include <gtest/gtest.h>

#include "cuda/ops_test_util.h"
#include "goose/ops/attention.h"

namespace goose::test {
namespace {

using namespace cuda_ops;

TEST(CudaAttention, CausalForwardBackward) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : {DType::f32, DType::bf16}) {
        const Tol t = tol_for(dt, 1e-4, 1e-4);
        for (const Shape& s : {Shape{2, 3, 200, 64}, Shape{1, 1, 7, 5}}) {
            const Tensor q = randn(s, 100), k = randn(s, 101), v = randn(s, 102),
                         gy = randn(s, 103);
            const Tensor qh = as_seen(q, dt), kh = as_seen(k, dt), vh = as_seen(v, dt),
                         gh = as_seen(gy, dt);
            const std::string what = s.str() + " " + dname(dt);
            const auto f = ops::attention_forward(gpu(q, dt), gpu(k, dt), gpu(v, dt));
            const auto fr = ops::attention_forward(qh, kh, vh);
            expect_close(f.y, fr.y, t.atol, t.rtol, "attention y " + what);
            expect_close(f.lse, fr.lse, 1e-4, 1e-4, "attention lse " + what);
            const auto g = ops::attention_backward(gpu(gy, dt), gpu(q, dt), gpu(k, dt), gpu(v, dt),
                                                   f.y, f.lse);
            const auto r = ops::attention_backward(gh, qh, kh, vh, fr.y, fr.lse);
            expect_close(g.q, r.q, 4 * t.atol, t.rtol, "attention dq " + what);
            expect_close(g.k, r.k, 4 * t.atol, t.rtol, "attention dk " + what);
            expect_close(g.v, r.v, 4 * t.atol, t.rtol, "attention dv " + what);
        }
    }
}

}  // namespace
}  // namespace goose::test
