// CUDA embedding (gather; the sorted, deterministic scatter-add backward with many repeated
// ids; the id range check), token_shift with and without prev, sums, means and max at
// training shapes; f32 and bf16.
#include <gtest/gtest.h>

#include "cuda/ops_test_util.h"
#include "goose/core/error.h"
#include "goose/ops/reduce.h"
#include "goose/ops/sequence.h"

namespace goose::test {
namespace {

using namespace cuda_ops;
constexpr DType kDtypes[] = {DType::f32, DType::bf16};

Tensor ids_with_repeats(const Shape& s, int64_t distinct, uint64_t seed) {
    Tensor ids = Tensor::empty(s, DType::i64);
    uint64_t h = seed;
    for (int64_t i = 0; i < ids.numel(); ++i) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        ids.data<int64_t>()[i] = int64_t((h >> 33) % uint64_t(distinct)) * 997 % 65536;
    }
    return ids;
}

TEST(CudaSequence, EmbeddingForwardBackwardDeterministic) {
    GOOSE_REQUIRE_GPU();
    const int64_t V = 65536, C = 768;
    const Tensor ids = ids_with_repeats(Shape{2, 1024}, 50, 1);  // ~40 repeats per id
    for (DType dt : kDtypes) {
        const Tensor w = randn(Shape{V, C}, 70), gy = randn(Shape{2, 1024, C}, 71);
        const Tensor y = ops::embedding_forward(gpu(w, dt), gpu(ids));
        expect_close(y, ops::embedding_forward(as_seen(w, dt), ids), 0, 0, "embedding y");
        const Tensor dw = ops::embedding_backward(gpu(gy, dt), gpu(ids), V);
        const Tensor dr = ops::embedding_backward(as_seen(gy, dt), ids, V);
        // f32: the same sums in the same (position) order as the CPU: exact
        const Tol t = dt == DType::bf16 ? Tol{2e-2, 1.6e-2} : Tol{0, 0};
        expect_close(dw, dr, t.atol, t.rtol, std::string("embedding dw ") + dname(dt));
        const Tensor again = ops::embedding_backward(gpu(gy, dt), gpu(ids), V);
        expect_close(again, host(dw), 0, 0, "embedding dw run to run");
    }
    Tensor bad = ids.clone();
    bad.data<int64_t>()[3] = V;
    EXPECT_THROW(ops::embedding_forward(gpu(randn(Shape{V, 4}, 72), DType::f32), gpu(bad)), Error);
}

TEST(CudaSequence, TokenShift) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kDtypes) {
        const Tensor x = randn(Shape{2, 1024, 768}, 80), prev = randn(Shape{2, 768}, 81);
        const Tensor gy = randn(Shape{2, 1024, 768}, 82);
        expect_close(ops::token_shift_forward(gpu(x, dt), gpu(prev, dt)),
                     ops::token_shift_forward(as_seen(x, dt), as_seen(prev, dt)), 0, 0,
                     "token_shift prev");
        expect_close(ops::token_shift_forward(gpu(x, dt)), ops::token_shift_forward(as_seen(x, dt)),
                     0, 0, "token_shift zeros");
        const auto g = ops::token_shift_backward(gpu(gy, dt), true);
        const auto r = ops::token_shift_backward(as_seen(gy, dt), true);
        expect_close(g.x, r.x, 0, 0, "token_shift dx");
        expect_close(g.prev, r.prev, 0, 0, "token_shift dprev");
    }
}

TEST(CudaReduce, SumMeanMaxAtTrainingShapes) {
    GOOSE_REQUIRE_GPU();
    const Shape s{2, 1024, 768};
    for (DType dt : kDtypes) {
        const Tensor x = randn(s, 90, 0.1, 1);
        const Tensor xh = as_seen(x, dt);
        const bool bf = dt == DType::bf16;
        struct Case {
            std::vector<int> axes;
            bool mean;
            double atol;
        };
        const Case cases[] = {{{0, 1}, false, 2e-3},
                              {{}, false, 5e-2},
                              {{2}, true, 1e-5},
                              {{1}, true, 1e-5},
                              {{0, 2}, false, 2e-3}};
        for (const Case& c : cases) {
            const Tensor y = c.mean ? ops::mean_forward(gpu(x, dt), c.axes)
                                    : ops::sum_forward(gpu(x, dt), c.axes);
            const Tensor r = c.mean ? ops::mean_forward(xh, c.axes) : ops::sum_forward(xh, c.axes);
            expect_close(y, r, bf ? 100 * c.atol : c.atol, bf ? 1.6e-2 : 1e-5,
                         std::string(c.mean ? "mean" : "sum") + " " +
                             std::to_string(c.axes.size()) + " axes " + dname(dt));
            const Tensor gy = randn(r.shape(), 91);
            const Tensor dx = c.mean ? ops::mean_backward(gpu(gy, dt), s, c.axes, false)
                                     : ops::sum_backward(gpu(gy, dt), s, c.axes, false);
            const Tensor dr = c.mean ? ops::mean_backward(as_seen(gy, dt), s, c.axes, false)
                                     : ops::sum_backward(as_seen(gy, dt), s, c.axes, false);
            expect_close(dx, dr, 1e-7, bf ? 1e-2 : 1e-6, "sum/mean backward");
        }
        for (int axis : {1, 2}) {
            const auto m = ops::max_forward(gpu(x, dt), axis);
            const auto mr = ops::max_forward(xh, axis);
            expect_close(m.values, mr.values, 0, 0, "max values");
            expect_close(m.indices.to(Device::cpu()).to(DType::f64), mr.indices.to(DType::f64), 0,
                         0, "max indices");
            const Tensor gy = randn(mr.values.shape(), 92);
            expect_close(ops::max_backward(gpu(gy, dt), m.indices, s, axis, false),
                         ops::max_backward(as_seen(gy, dt), mr.indices, s, axis, false), 0, 0,
                         "max backward");
        }
    }
}

}  // namespace
}  // namespace goose::test
