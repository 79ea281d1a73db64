// The RWKV-7 time mix's LoRA chains inside recompute::mix_project on CUDA (run on side streams
// beside the (C, C) projections) against the same chains composed from ag:: ops on one stream:
// outputs and every input gradient agree (f32 and bf16), eagerly and as a replayed CUDA graph.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "goose/autograd.h"
#include "goose/core/cuda.h"
#include "goose/core/rng.h"
#include "models/fused.h"
#include "models/recompute.h"

namespace goose::models::recompute {
namespace {

using Fn = std::function<std::vector<Var>(const std::vector<Var>&)>;

constexpr int64_t kB = 2, kT = 48, kC = 128;

// fn on leaves of `inputs` (all need gradients), then backward of Σ_i <out_i, seeds_i>; the
// outputs followed by every input's gradient. No host copies: safe inside graph capture.
std::vector<Tensor> run(const Fn& fn, const std::vector<Tensor>& inputs,
                        const std::vector<Tensor>& seeds) {
    std::vector<Var> vars;
    for (const Tensor& t : inputs) vars.push_back(Var(t, true));
    const std::vector<Var> outs = fn(vars);
    ag::backward(outs, seeds);
    std::vector<Tensor> r;
    for (const Var& o : outs) r.push_back(o.value());
    for (const Var& v : vars) r.push_back(v.grad());
    return r;
}

// x, three mixing vectors, a Linear weight (C, C) on mix 0 and one on mix 2; chains:
// tanh (C, 32) (32, C) on mix 1, none (C, 32) (32, C) on mix 2, sigmoid (C, 64) (64, C) on
// mix 1, none (C, 16) (16, C) on mix 2 (shared with the second Linear, as v with value)
std::vector<Tensor> make_inputs(DType dt) {
    Rng rng(7, "lora chains");
    auto r = [&](const Shape& s, double std) {
        return Tensor::randn(s, rng, DType::f32, 0.0, std).to(dt).to(Device::cuda());
    };
    return {r(Shape{kB, kT, kC}, 1.0), r(Shape{1, 1, kC}, 0.5), r(Shape{1, 1, kC}, 0.5),
            r(Shape{1, 1, kC}, 0.5),   r(Shape{kC, kC}, 0.1),   r(Shape{kC, kC}, 0.1),
            r(Shape{kC, 32}, 0.1),     r(Shape{32, kC}, 0.1),   r(Shape{kC, 32}, 0.1),
            r(Shape{32, kC}, 0.1),     r(Shape{kC, 64}, 0.1),   r(Shape{64, kC}, 0.1),
            r(Shape{kC, 16}, 0.1),     r(Shape{16, kC}, 0.1)};
}

const Fn kLean = [](const std::vector<Var>& v) {
    return mix_project(v[0], Var(), {v[1], v[2], v[3]},
                       {{0, v[4], true},
                        {1, v[6], false, v[7], UnaryOp::tanh},
                        {2, v[5], true},
                        {2, v[8], false, v[9]},
                        {1, v[10], false, v[11], UnaryOp::sigmoid},
                        {2, v[12], false, v[13]}});
};
const Fn kComposed = [](const std::vector<Var>& v) {
    const std::vector<Var> m = fused::token_mix(v[0], Var(), {v[1], v[2], v[3]});
    return std::vector<Var>{ag::linear(m[0], v[4]),
                            ag::matmul(ag::tanh(ag::matmul(m[1], v[6])), v[7]),
                            ag::linear(m[2], v[5]),
                            ag::matmul(ag::matmul(m[2], v[8]), v[9]),
                            ag::matmul(ag::sigmoid(ag::matmul(m[1], v[10])), v[11]),
                            ag::matmul(ag::matmul(m[2], v[12]), v[13])};
};

std::vector<Tensor> make_seeds(const std::vector<Tensor>& inputs, DType dt) {
    const std::vector<Tensor> outs = [&] {
        ag::NoGradGuard no_grad;
        std::vector<Var> v;
        for (const Tensor& t : inputs) v.push_back(Var(t));
        std::vector<Tensor> r;
        for (const Var& o : kComposed(v)) r.push_back(o.value());
        return r;
    }();
    Rng rng(8, "seeds");
    std::vector<Tensor> seeds;
    for (const Tensor& o : outs)
        seeds.push_back(Tensor::randn(o.shape(), rng, DType::f32).to(dt).to(Device::cuda()));
    return seeds;
}

void expect_close(const std::vector<Tensor>& a, const std::vector<Tensor>& b, double tol,
                  const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_TRUE(a[i].defined() && b[i].defined()) << what << " item " << i;
        ASSERT_EQ(a[i].shape(), b[i].shape()) << what << " item " << i;
        const auto x = a[i].to(Device::cpu()).to_vector(), y = b[i].to(Device::cpu()).to_vector();
        double worst = 0, scale = 1e-30;
        for (size_t j = 0; j < x.size(); ++j) {
            worst = std::max(worst, std::fabs(x[j] - y[j]));
            scale = std::max(scale, std::fabs(y[j]));
        }
        EXPECT_LE(worst, tol * scale) << what << " item " << i << " (outputs, then gradients)";
    }
}

double tolerance(DType dt) {
    return dt == DType::bf16 ? 1e-2 : 1e-5;
}

TEST(CudaLoraChains, MatchTheComposedOps) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : {DType::f32, DType::bf16}) {
        const std::vector<Tensor> in = make_inputs(dt), seeds = make_seeds(in, dt);
        const std::vector<Tensor> lean = run(kLean, in, seeds), ref = run(kComposed, in, seeds);
        cuda::synchronize();
        expect_close(lean, ref, tolerance(dt), "chains " + std::string(dtype_name(dt)));
    }
}

TEST(CudaLoraChains, ReplayedGraphMatchesEager) {
    GOOSE_REQUIRE_GPU();
    const DType dt = DType::bf16;
    const std::vector<Tensor> in = make_inputs(dt), seeds = make_seeds(in, dt);
    const std::vector<Tensor> eager = run(kLean, in, seeds);
    std::vector<Tensor> replayed;
    cuda::Graph g;
    g.capture([&] { replayed = run(kLean, in, seeds); });
    g.replay();
    g.replay();
    cuda::synchronize();
    expect_close(replayed, eager, 0.0, "graph replay vs eager");  // same kernels, same inputs
}

}  // namespace
}  // namespace goose::models::recompute
