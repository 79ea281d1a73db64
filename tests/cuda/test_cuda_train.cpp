// The same short RWKV-7 training run on the CPU and on CUDA: same data, seed and config; the
// loss curves must agree within 1% at every one of 200 steps (f32 on both; bf16 mixed precision
// on the GPU against the f32 CPU run).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "goose/autograd.h"
#include "goose/core/cuda.h"
#include "goose/models/rwkv7.h"
#include "goose/optim/adamw.h"
#include "goose/optim/mixed_precision.h"

namespace goose {
namespace {

// Sequences with structure a small model learns in 200 steps: each row repeats a random
// 8-token motif with occasional noise tokens.
Tensor make_tokens(int64_t batch, int64_t len, int64_t vocab, Rng& rng) {
    Tensor t = Tensor::empty(Shape{batch, len}, DType::i64);
    int64_t* d = t.data<int64_t>();
    for (int64_t b = 0; b < batch; ++b) {
        int64_t motif[8];
        for (int64_t& m : motif) m = rng.randint(0, vocab);
        for (int64_t i = 0; i < len; ++i)
            d[b * len + i] = rng.randint(0, 10) == 0 ? rng.randint(0, vocab) : motif[i % 8];
    }
    return t;
}

// Per-step losses of `steps` AdamW steps of a small RWKV-7 on `dev` (params in `dtype`).
std::vector<double> train_curve(Device dev, DType dtype, int steps) {
    const auto cfg = models::Rwkv7Config::with_defaults(64, 2, 64, 16);
    models::Rwkv7 model(cfg);
    Rng init(7, "init");
    model.init_official(init);
    model.to(dev);
    const optim::AdamConfig acfg{.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8,
                                 .decoupled_weight_decay = true};
    auto groups = models::rwkv7_param_groups(model, 0.001);
    std::unique_ptr<optim::Adam> f32_opt;
    std::unique_ptr<optim::MixedPrecisionAdam> mixed_opt;
    if (dtype == DType::bf16)
        mixed_opt = std::make_unique<optim::MixedPrecisionAdam>(groups, acfg);
    else
        f32_opt = std::make_unique<optim::Adam>(groups, acfg);
    Rng data(11, "data");
    std::vector<double> losses;
    for (int s = 0; s < steps; ++s) {
        const Tensor tok = make_tokens(4, 65, 64, data);
        const Tensor x = tok.slice(1, 0, 64).contiguous().to(dev);
        const Tensor y = tok.slice(1, 1, 65).contiguous().to(dev);
        Var loss = model.forward_loss(x, y);
        ag::backward(loss);
        if (mixed_opt) mixed_opt->step(); else f32_opt->step();
        model.zero_grad();
        losses.push_back(loss.value().to(Device::cpu()).to(DType::f64).item());
    }
    return losses;
}

void expect_curves_agree(const std::vector<double>& cpu, const std::vector<double>& gpu,
                         double rel_tol) {
    ASSERT_EQ(cpu.size(), gpu.size());
    double worst = 0;
    size_t worst_step = 0;
    for (size_t i = 0; i < cpu.size(); ++i) {
        ASSERT_TRUE(std::isfinite(gpu[i])) << "step " << i;
        const double rel = std::abs(gpu[i] - cpu[i]) / std::abs(cpu[i]);
        if (rel > worst) {
            worst = rel;
            worst_step = i;
        }
    }
    EXPECT_LT(worst, rel_tol) << "worst step " << worst_step << ": cpu " << cpu[worst_step]
                              << " gpu " << gpu[worst_step];
    EXPECT_LT(cpu.back(), 0.8 * cpu.front()) << "the run should learn (loss falls)";
    std::printf("loss step 1 / 200: cpu %.4f / %.4f, gpu %.4f / %.4f; worst relative "
                "difference %.2e at step %zu\n",
                cpu.front(), cpu.back(), gpu.front(), gpu.back(), worst, worst_step + 1);
}

TEST(CudaTrain, LossCurveMatchesTheCpuRunF32) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    const auto cpu = train_curve(Device::cpu(), DType::f32, 200);
    const auto gpu = train_curve(Device::cuda(), DType::f32, 200);
    expect_curves_agree(cpu, gpu, 0.01);
}

TEST(CudaTrain, Bf16LossCurveMatchesTheCpuF32Run) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    const auto cpu = train_curve(Device::cpu(), DType::f32, 200);
    const auto gpu = train_curve(Device::cuda(), DType::bf16, 200);
    expect_curves_agree(cpu, gpu, 0.01);
}

}  // namespace
}  // namespace goose
