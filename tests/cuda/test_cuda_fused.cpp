// The fused RWKV-7 functions (src/models/fused.h) on CUDA, f32 and bf16, against the same
// functions composed from ag:: ops on the f64 reference backend: values and every input
// gradient (f32: elementwise tolerance; bf16: relative norm of the error).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "goose/autograd.h"
#include "goose/core/cuda.h"
#include "goose/core/rng.h"
#include "goose/ops/backend.h"
#include "common/fused_cases.h"
#include "models/fused.h"

namespace goose::models::fused {
namespace {

using Fn = std::function<std::vector<Var>(const std::vector<Var>&)>;

struct Result {
    std::vector<Tensor> outputs, grads;  // f64 on the CPU; grads one per input
};

// fn on leaves holding `inputs` (converted to dt, moved to dev), then the backward of
// Σ_i <out_i, seed_i> with fixed random seeds.
Result run(const Fn& fn, const std::vector<Tensor>& inputs, DType dt, Device dev, Backend cpu) {
    BackendScope scope(cpu);
    std::vector<Var> vars;
    for (const Tensor& t : inputs)
        vars.push_back(t.defined() ? Var(t.to(dt).to(dev), true) : Var());
    const std::vector<Var> outs = fn(vars);
    Rng rng(7, "seed");
    Var total;
    Result r;
    for (const Var& o : outs) {
        r.outputs.push_back(o.value().to(Device::cpu()).to(DType::f64));
        const Var seed(Tensor::randn(o.shape(), rng, DType::f64).to(dt).to(dev));
        const Var term = ag::sum(ag::mul(o, seed), {}, false);
        total = total.defined() ? ag::add(total, term) : term;
    }
    ag::backward(total);
    for (const Var& v : vars)
        r.grads.push_back(v.defined() && v.grad().defined()
                              ? v.grad().to(Device::cpu()).to(DType::f64)
                              : Tensor());
    return r;
}

void expect_close(const Tensor& got, const Tensor& want, DType dt, const std::string& what) {
    ASSERT_EQ(got.defined(), want.defined()) << what;
    if (!want.defined()) return;
    ASSERT_EQ(got.shape(), want.shape()) << what;
    const auto g = got.to_vector(), w = want.to_vector();
    if (dt == DType::f32) {
        int bad = 0;
        for (size_t i = 0; i < w.size(); ++i)
            if (!(std::fabs(g[i] - w[i]) <= 1e-4 + 1e-3 * std::fabs(w[i])) && bad++ < 3)
                ADD_FAILURE() << what << "[" << i << "]: cuda " << g[i] << ", reference " << w[i];
        return;
    }
    double num = 0, den = 0;
    for (size_t i = 0; i < w.size(); ++i) {
        ASSERT_TRUE(std::isfinite(g[i])) << what << "[" << i << "]";
        num += (g[i] - w[i]) * (g[i] - w[i]);
        den += w[i] * w[i];
    }
    EXPECT_LE(std::sqrt(num), 3e-2 * std::sqrt(den) + 1e-6) << what << " (bf16 relative error)";
}

void check(const std::string& name, const Fn& fn, const std::vector<Tensor>& inputs) {
    const Result ref = run(fn, inputs, DType::f64, Device::cpu(), Backend::ref);
    for (DType dt : {DType::f32, DType::bf16}) {
        const Result got = run(fn, inputs, dt, Device::cuda(), Backend::cpu);
        const std::string tag = name + " " + std::string(dtype_name(dt));
        ASSERT_EQ(got.outputs.size(), ref.outputs.size()) << tag;
        for (size_t i = 0; i < ref.outputs.size(); ++i)
            expect_close(got.outputs[i], ref.outputs[i], dt, tag + " output " + std::to_string(i));
        for (size_t i = 0; i < ref.grads.size(); ++i)
            expect_close(got.grads[i], ref.grads[i], dt, tag + " grad of input " + std::to_string(i));
    }
}

TEST(CudaFused, TokenMixMatchesReference) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    Rng rng(1, "mix");
    for (bool with_prev : {false, true})
        for (auto [b, t, c, m] : {std::array<int64_t, 4>{2, 5, 7, 6}, {3, 1, 16, 1},
                                  {2, 37, 768, 6}, {1, 20, 1100, 2}}) {
            const test_cases::Case k = test_cases::token_mix_case(b, t, c, m, with_prev, rng);
            check(k.name, k.fn, k.inputs);
        }
}

// The fused kernels (bf16 at every width here; f32 up to C 512, composed beyond) with and
// without prev, sequences of one token and several sequences per warp's run of rows.
TEST(CudaFused, AddLayerNormMixMatchesReference) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    Rng rng(5, "ln mix");
    for (bool with_prev : {false, true})
        for (auto [b, t, c] : {std::array<int64_t, 3>{2, 5, 8}, {3, 1, 16}, {2, 37, 768},
                               {1, 20, 256}, {2, 3, 12}, {400, 3, 64}}) {
            const test_cases::Case k = test_cases::ln_mix_case(b, t, c, with_prev, rng);
            check(k.name, k.fn, k.inputs);
        }
}

TEST(CudaFused, Rwkv7PrepMatchesReference) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    Rng rng(2, "prep");
    for (bool gate : {false, true})
        for (auto [b, t, h, n] : {std::array<int64_t, 4>{2, 3, 2, 4}, {1, 5, 3, 16},
                                  {2, 19, 12, 64}, {1, 4, 2, 32}}) {
            const test_cases::Case k = test_cases::prep_case(b, t, h, n, gate, rng);
            check(k.name, k.fn, k.inputs);
        }
}

// v_first (not a leaf) feeding the gated prep of three layers: the earlier layers' backwards add
// the gradient it already has (GradIO::prior) inside the kernel.
TEST(CudaFused, Rwkv7PrepFoldsVFirstGradient) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    Rng rng(4, "prep fan-out");
    const test_cases::Case k = test_cases::prep_case(2, 19, 12, 64, true, rng);
    const Fn three_layers = [&k](const std::vector<Var>& v) {
        std::vector<Var> in = v;
        in[5] = ag::mul(v[5], v[5]);  // v_first as an intermediate
        std::vector<Var> outs;
        for (int layer = 0; layer < 3; ++layer) {
            in[2] = ag::add(v[2], in[5]);  // a different v_raw per layer
            for (const Var& o : k.fn(in)) outs.push_back(o);
        }
        return outs;
    };
    check("rwkv7_prep x3 sharing v_first", three_layers, k.inputs);
}

TEST(CudaFused, Rwkv7OutMatchesReference) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    Rng rng(3, "out");
    for (auto [b, t, h, n] : {std::array<int64_t, 4>{2, 3, 2, 4}, {1, 5, 3, 16}, {2, 21, 12, 64}}) {
        const test_cases::Case k = test_cases::out_case(b, t, h, n, rng);
        check(k.name, k.fn, k.inputs);
    }
}

}  // namespace
}  // namespace goose::models::fused
