// cuda::run_parallel: branches on side streams give the results of running them in order, eagerly
// and inside a captured CUDA graph; blocks freed in a branch are not handed to another before the
// join; a failing branch rejoins, restores the current stream and rethrows. Weight gradients
// deferred to run beside a later backward entry (ag::DeferWeightGrads) equal the immediate ones.
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <vector>

#include "common/expect_error.h"
#include "cuda_test_util.h"
#include "goose/autograd.h"
#include "goose/core/cuda.h"
#include "goose/core/rng.h"
#include "goose/ops/binary.h"
#include "goose/ops/matmul.h"
#include "models/recompute.h"

namespace goose {
namespace {

using test::expect_error;

// Each branch: a few chained GEMMs and adds with temporaries that die inside it.
struct Work {
    std::vector<Tensor> a, b, out;

    explicit Work(size_t n) {
        Rng rng(11, "parallel");
        for (size_t i = 0; i < n; ++i) {
            a.push_back(Tensor::randn(Shape{384, 256}, rng, DType::bf16).to(Device::cuda()));
            b.push_back(Tensor::randn(Shape{256, 256}, rng, DType::bf16).to(Device::cuda()));
            out.push_back(Tensor::zeros(Shape{384, 256}, DType::bf16, Device::cuda()));
        }
    }

    void branch(size_t i) {
        Tensor h = ops::matmul_forward(a[i], b[i]);
        for (int r = 0; r < 3; ++r) {
            const Tensor t = ops::matmul_forward(h, b[i]);  // a temporary per round
            h = ops::binary_forward(BinaryOp::add, t, a[i]);
        }
        out[i].copy_(h);
    }

    std::vector<std::function<void()>> branches() {
        std::vector<std::function<void()>> br;
        for (size_t i = 0; i < a.size(); ++i) br.emplace_back([this, i] { branch(i); });
        return br;
    }

    std::vector<std::vector<double>> results() const {
        std::vector<std::vector<double>> r;
        for (const Tensor& t : out) r.push_back(t.to(Device::cpu()).to_vector());
        return r;
    }
};

TEST(CudaParallel, BranchesGiveTheResultsOfRunningThemInOrder) {
    GOOSE_REQUIRE_GPU();
    Work w(cuda::kMaxParallelBranches);
    for (size_t i = 0; i < w.a.size(); ++i) w.branch(i);
    const auto in_order = w.results();
    for (Tensor& t : w.out) t.copy_(Tensor::zeros(t.shape(), t.dtype()));
    const void* before = cuda::current_stream();
    const size_t in_use = cuda::memory_in_use();
    cuda::run_parallel(w.branches());
    EXPECT_EQ(cuda::current_stream(), before);
    EXPECT_EQ(cuda::memory_in_use(), in_use);  // the temporaries went back after the join
    EXPECT_EQ(w.results(), in_order);          // same kernels on the same inputs: bit for bit
}

TEST(CudaParallel, ReplayedGraphOfBranchesMatchesTheEagerWork) {
    GOOSE_REQUIRE_GPU();
    Work w(3);
    cuda::Graph g;
    g.capture([&] { cuda::run_parallel(w.branches()); });
    Rng rng(5, "inputs");
    for (Tensor& t : w.a) t.copy_(Tensor::randn(t.shape(), rng, DType::bf16));
    g.replay();
    cuda::synchronize();
    const auto replayed = w.results();
    for (size_t i = 0; i < w.a.size(); ++i) w.branch(i);
    EXPECT_EQ(replayed, w.results());
}

TEST(CudaParallel, BlocksFreedInABranchWaitForTheJoin) {
    GOOSE_REQUIRE_GPU();
    const Shape s{1 << 20};
    cuda::empty_cache();
    const void *freed = nullptr, *taken = nullptr;
    cuda::run_parallel({[&] {
                            Tensor t = Tensor::zeros(s, DType::f32, Device::cuda());
                            freed = t.raw_data();
                        },
                        [&] { taken = Tensor::zeros(s, DType::f32, Device::cuda()).raw_data(); }});
    EXPECT_NE(freed, taken);
    const void* again = Tensor::zeros(s, DType::f32, Device::cuda()).raw_data();
    EXPECT_TRUE(again == freed || again == taken);  // both are back in the cache after the join
}

TEST(CudaParallel, AFailingBranchRejoinsAndRethrows) {
    GOOSE_REQUIRE_GPU();
    Work w(3);
    const void* before = cuda::current_stream();
    auto br = w.branches();
    br[1] = [] { throw std::runtime_error("branch failed"); };
    EXPECT_THROW(cuda::run_parallel(br), std::runtime_error);
    EXPECT_EQ(cuda::current_stream(), before);
    cuda::run_parallel(w.branches());  // still usable
    cuda::synchronize();
    std::vector<std::function<void()>> too_many(cuda::kMaxParallelBranches + 1, [] {});
    expect_error([&] { cuda::run_parallel(too_many); }, "at most");
}

// Two bf16 linear layers (or the channel mix's relu2_mlp and a linear layer) and an entry that
// runs its backward beside the deferred weight gradients (as ag::wkv7 does): the same gradients
// with and without deferral, bit for bit.
std::vector<std::vector<double>> linear_grads(bool defer, bool mlp = false) {
    Rng rng(21, "deferred");
    auto leaf = [&](Shape s) {
        return Var(Tensor::randn(s, rng, DType::bf16).to(Device::cuda()), true);
    };
    Var x = leaf(Shape{4, 96, 128}), w1 = leaf(Shape{256, 128}), w2 = leaf(Shape{128, 256}),
        w3 = leaf(Shape{64, 128});
    Var y;
    {
        const ag::DeferWeightGrads guard(defer);
        Var h = mlp ? models::recompute::relu2_mlp(x, w1, w2) : ag::linear(x, w1);
        h = ag::record("beside", {h}, h.value().clone(), [](GradIO& io) {
            ag::run_beside_deferred([&] { io.set(0, io.gy().clone()); });
        });
        y = ag::sum(ag::linear(h, mlp ? w3 : w2));
    }
    ag::backward(y);
    std::vector<std::vector<double>> g;
    for (const Var* v : {&x, &w1, &w2, &w3})
        g.push_back(v->grad().defined() ? v->grad().to(Device::cpu()).to_vector()
                                        : std::vector<double>{});
    return g;
}

TEST(CudaParallel, DeferredWeightGradientsEqualImmediateOnes) {
    GOOSE_REQUIRE_GPU();
    EXPECT_EQ(linear_grads(true), linear_grads(false));
    EXPECT_EQ(linear_grads(true, true), linear_grads(false, true));  // relu2_mlp
}

}  // namespace
}  // namespace goose
