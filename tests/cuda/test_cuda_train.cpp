// The same short RWKV-7 training run on the CPU and on CUDA: same data, seed and config. After
// 200 steps the losses agree within 1% (mean of the last 10 steps) and no step differs by 2%:
// f32 on both, and bf16 mixed precision on the GPU against the f32 CPU run.
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

// Sequences a small model learns in 200 steps: a fixed successor table (token -> (5 token + 3)
// mod vocab) followed 90% of the time, a random token otherwise.
Tensor make_tokens(int64_t batch, int64_t len, int64_t vocab, Rng& rng) {
    Tensor t = Tensor::empty(Shape{batch, len}, DType::i64);
    int64_t* d = t.data<int64_t>();
    for (int64_t b = 0; b < batch; ++b) {
        int64_t cur = rng.randint(0, vocab);
        for (int64_t i = 0; i < len; ++i) {
            d[b * len + i] = cur;
            cur = rng.randint(0, 10) == 0 ? rng.randint(0, vocab) : (5 * cur + 3) % vocab;
        }
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
                         double final_tol, double step_tol) {
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
    double cpu_end = 0, gpu_end = 0;  // mean of the last 10 steps
    for (size_t i = cpu.size() - 10; i < cpu.size(); ++i) {
        cpu_end += cpu[i] / 10;
        gpu_end += gpu[i] / 10;
    }
    const double end_rel = std::abs(gpu_end - cpu_end) / cpu_end;
    EXPECT_LT(end_rel, final_tol) << "last 10 steps: cpu " << cpu_end << " gpu " << gpu_end;
    EXPECT_LT(worst, step_tol) << "worst step " << worst_step + 1 << ": cpu " << cpu[worst_step]
                               << " gpu " << gpu[worst_step];
    EXPECT_LT(cpu_end, 0.8 * cpu.front()) << "the run should learn (loss falls)";
    std::printf("loss step 1 / last 10: cpu %.4f / %.4f, gpu %.4f / %.4f (%.2e apart); worst "
                "step difference %.2e at step %zu\n",
                cpu.front(), cpu_end, gpu.front(), gpu_end, end_rel, worst, worst_step + 1);
}

TEST(CudaTrain, LossCurveMatchesTheCpuRunF32) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    const auto cpu = train_curve(Device::cpu(), DType::f32, 200);
    const auto gpu = train_curve(Device::cuda(), DType::f32, 200);
    expect_curves_agree(cpu, gpu, 0.01, 0.02);
}

TEST(CudaTrain, Bf16LossCurveMatchesTheCpuF32Run) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    const auto cpu = train_curve(Device::cpu(), DType::f32, 200);
    const auto gpu = train_curve(Device::cuda(), DType::bf16, 200);
    expect_curves_agree(cpu, gpu, 0.01, 0.02);
}

}  // namespace
}  // namespace goose
