// Device memory of the bf16 RWKV-7 training step at the B16 T512 shape (L12 C768
// V65536): the peak stays within the official trainer's 8.7 GiB; prints where it goes
// (parameters + optimizer state, what the forward keeps per layer, the backward's transients).
// And the lean activations (models/recompute.h, on for CUDA training) nested inside activation
// checkpointing give the plain backward's gradients, as do the kept ones (--no-lean).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "cuda_test_util.h"
#include "goose/autograd.h"
#include "goose/core/cuda.h"
#include "goose/models/rwkv7.h"
#include "goose/ops/binary.h"
#include "goose/optim/mixed_precision.h"

namespace goose {
namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024;

TEST(CudaTrainMemory, Bf16StepAtB16T512FitsTheOfficialBudget) {
    GOOSE_REQUIRE_GPU();
    const int64_t layers = 12, batch = 16, ctx = 512, vocab = 65536;
    const auto cfg = models::Rwkv7Config::with_defaults(vocab, layers, 768, 64);
    models::Rwkv7 model(cfg);
    Rng rng(1, "memory");
    for (auto& [name, p] : model.named_parameters())
        p.value_mut().copy_(Tensor::randn(p.shape(), rng, p.dtype(), 0, 0.02));
    model.to(Device::cuda());
    optim::MixedPrecisionAdam opt(models::rwkv7_param_groups(model, 0.001),
                                  {.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8,
                                   .decoupled_weight_decay = true});
    Tensor tok = Tensor::empty(Shape{batch, ctx + 1}, DType::i64);
    for (int64_t i = 0; i < tok.numel(); ++i) tok.data<int64_t>()[i] = rng.randint(0, vocab);
    const Tensor x = tok.slice(1, 0, ctx).contiguous().to(Device::cuda());
    const Tensor y = tok.slice(1, 1, ctx + 1).contiguous().to(Device::cuda());

    size_t steady = 0, after_forward = 0;
    double loss = 0;
    for (int step = 0; step < 2; ++step) {  // the second step: gradients and moments exist
        cuda::synchronize();
        steady = cuda::memory_in_use();
        cuda::reset_peak_memory();
        Var l = model.forward_loss(x, y);
        cuda::synchronize();
        after_forward = cuda::memory_in_use();
        ag::backward(l);
        opt.step();
        model.zero_grad();
        loss = l.value().to(Device::cpu()).to(DType::f64).item();
    }
    cuda::synchronize();
    // The GEMM workspaces sit outside the allocator (the official trainer's come from PyTorch's).
    const double workspaces = static_cast<double>(cuda::gemm_workspace_bytes()) / kGiB;
    const double peak = static_cast<double>(cuda::peak_memory()) / kGiB + workspaces;
    const double kept = static_cast<double>(after_forward - steady);
    std::printf("B%lld T%lld L%lld: parameters + optimizer state %.2f GiB, the forward keeps "
                "%.2f GiB (%.0f MiB per layer = %.1f bf16 (B, T, C) activations), peak %.2f "
                "GiB with %.2f GiB of GEMM workspaces (backward transients %.2f GiB); loss %.3f\n",
                (long long)batch, (long long)ctx, (long long)layers, steady / kGiB, kept / kGiB,
                kept / layers / (1 << 20), kept / layers / (batch * ctx * 768 * 2.0), peak,
                workspaces, peak - workspaces - after_forward / kGiB, loss);
    EXPECT_LE(peak, 8.7) << "the official trainer's peak at this shape";
}

// Every parameter gradient of one f32 forward_loss + backward on CUDA, by name.
std::vector<std::pair<std::string, Tensor>> gradients(bool checkpoint, bool lean = true) {
    const auto cfg = models::Rwkv7Config::with_defaults(97, 3, 128, 32);
    models::Rwkv7 model(cfg);
    Rng init(3, "init");
    model.init_official(init);
    for (auto& [name, p] : model.named_parameters())  // official init zeroes some matrices
        p.value_mut().copy_(ops::binary_forward(
            BinaryOp::add, p.value(), Tensor::randn(p.shape(), init, p.dtype(), 0, 0.05)));
    model.to(Device::cuda());
    model.set_activation_checkpointing(checkpoint);
    model.set_lean_activations(lean);
    Rng data(4, "data");
    Tensor tok = Tensor::empty(Shape{2, 41}, DType::i64);
    for (int64_t i = 0; i < tok.numel(); ++i) tok.data<int64_t>()[i] = data.randint(0, 97);
    const Tensor x = tok.slice(1, 0, 40).contiguous().to(Device::cuda());
    const Tensor y = tok.slice(1, 1, 41).contiguous().to(Device::cuda());
    ag::backward(model.forward_loss(x, y));
    std::vector<std::pair<std::string, Tensor>> g;
    for (auto& [name, p] : model.named_parameters())
        g.emplace_back(name, p.grad().defined() ? p.grad().to(Device::cpu()) : Tensor());
    return g;
}

void expect_same_gradients(const std::vector<std::pair<std::string, Tensor>>& plain,
                           const std::vector<std::pair<std::string, Tensor>>& ckpt) {
    ASSERT_EQ(plain.size(), ckpt.size());
    for (size_t i = 0; i < plain.size(); ++i) {
        ASSERT_EQ(plain[i].second.defined(), ckpt[i].second.defined()) << plain[i].first;
        if (!plain[i].second.defined()) continue;  // layer 0's v1, v2: v_first is its own value
        const auto a = plain[i].second.to_vector(), b = ckpt[i].second.to_vector();
        double worst = 0, scale = 1e-30;
        for (size_t j = 0; j < a.size(); ++j) {
            worst = std::max(worst, std::fabs(a[j] - b[j]));
            scale = std::max(scale, std::fabs(a[j]));
        }
        EXPECT_LE(worst, 1e-5 * scale) << plain[i].first;  // the same kernels on the same data
    }
}

TEST(CudaTrainMemory, LeanActivationsUnderCheckpointingGiveThePlainGradients) {
    GOOSE_REQUIRE_GPU();
    expect_same_gradients(gradients(false), gradients(true));
}

TEST(CudaTrainMemory, KeptActivationsGiveTheLeanGradients) {
    GOOSE_REQUIRE_GPU();
    expect_same_gradients(gradients(false, true), gradients(false, false));
}

}  // namespace
}  // namespace goose
