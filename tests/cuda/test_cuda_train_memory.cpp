// Device memory of the bf16 RWKV-7 training step at the B16 T512 shape (L12 C768
// V65536): the peak stays within the official trainer's 8.7 GiB; prints where it goes
// (parameters + optimizer state, what the forward keeps per layer, the backward's transients).
#include <gtest/gtest.h>

#include <cstdio>

#include "cuda_test_util.h"
#include "goose/autograd.h"
#include "goose/core/cuda.h"
#include "goose/models/rwkv7.h"
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
    const double peak = static_cast<double>(cuda::peak_memory()) / kGiB;
    const double kept = static_cast<double>(after_forward - steady);
    std::printf("B%lld T%lld L%lld: parameters + optimizer state %.2f GiB, the forward keeps "
                "%.2f GiB (%.0f MiB per layer = %.1f bf16 (B, T, C) activations), peak %.2f "
                "GiB (backward transients %.2f GiB); loss %.3f\n",
                (long long)batch, (long long)ctx, (long long)layers, steady / kGiB, kept / kGiB,
                kept / layers / (1 << 20), kept / layers / (batch * ctx * 768 * 2.0), peak,
                peak - after_forward / kGiB, loss);
    EXPECT_LE(peak, 8.7) << "the official trainer's peak at this shape";
}

}  // namespace
}  // namespace goose
