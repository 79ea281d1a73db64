// fused::rwkv7_prep_wkv7 on CUDA (the prep backward as the epilogue of the WKV-7 backward's last
// kernel) against the unfused composition rwkv7_prep + ag::wkv7_heads on the same device and
// dtype: outputs and every input gradient, with and without the v gate, T not a multiple of 16,
// a state in, and gradients that r, v_raw / v_first and the outputs k, v gather elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "goose/autograd.h"
#include "goose/core/cuda.h"
#include "goose/core/rng.h"
#include "models/cuda/fused_cuda.h"
#include "models/fused.h"

namespace goose::models::fused {
namespace {

constexpr int64_t kHead = 64;

// Inputs: 0 r, 1 w_lora, 2 k_raw, 3 v_raw, 4 a_lora, 5 v_lora, 6 v_first, 7 w0, 8 a0, 9 v0,
// 10 k_k, 11 k_a, 12 state_in (f32 on the CPU; undefined where absent).
std::vector<Tensor> make_inputs(int64_t B, int64_t T, int64_t H, bool gate, bool state,
                                Rng& rng) {
    const int64_t C = H * kHead;
    const Shape rows{B, T, C}, vec{1, 1, C};
    auto rnd = [&](const Shape& s, double sd, double mean = 0) {
        return Tensor::randn(s, rng, DType::f32, mean, sd);
    };
    std::vector<Tensor> in(13);
    in[0] = rnd(rows, 0.5);
    in[1] = rnd(rows, 0.5);
    in[2] = rnd(rows, 0.5);
    in[3] = rnd(rows, 0.5);
    in[4] = rnd(rows, 0.5);
    if (gate) in[5] = rnd(rows, 0.5), in[6] = rnd(rows, 0.5), in[9] = rnd(vec, 0.5);
    in[7] = rnd(vec, 0.5, -0.5);
    in[8] = rnd(vec, 0.5);
    in[10] = rnd(vec, 0.2, 1.0);
    in[11] = rnd(vec, 0.2, 1.0);
    if (state) in[12] = rnd(Shape{B, H, kHead, kHead}, 0.3);
    return in;
}

struct Result {
    std::vector<Tensor> outputs, grads;  // f64 on the CPU
};

// The fused record (asserted taken) or the composition on leaves holding `inputs` (dt on CUDA;
// the state in f32), then the backward of Σ <out_i, seed_i>; with `priors`, r, v_raw and v_first
// are intermediates also used by ops recorded later, whose gradients the backward folds in.
Result run(bool fused, const std::vector<Tensor>& inputs, DType dt, bool priors) {
    std::vector<Var> leaves, v(13);
    for (size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& t = inputs[i];
        leaves.push_back(t.defined()
                             ? Var(t.to(i == 12 ? DType::f32 : dt).to(Device::cuda()), true)
                             : Var());
        v[i] = leaves.back();
    }
    const Var one(Tensor::scalar(1.0, dt).to(Device::cuda()));
    if (priors)
        for (int i : {0, 3, 6})
            if (v[i].defined()) v[i] = ag::mul(v[i], one);  // not leaves: priors reach them
    std::vector<Var> outs;
    if (fused) {
        const Rwkv7PrepWkv f = rwkv7_prep_wkv7_cuda(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                                                    v[8], v[9], v[10], v[11], kHead, v[12]);
        EXPECT_TRUE(f.y.defined()) << "the fused record was not taken";
        if (!f.y.defined()) return {};
        outs = {f.y, f.state, f.k, f.v};
    } else {
        const Rwkv7Prep p = rwkv7_prep(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10],
                                       v[11], kHead);
        const ag::Wkv7Result w = ag::wkv7_heads(v[0], p.w, p.k, p.v, p.a, p.b, kHead, v[12]);
        outs = {w.y, w.state, p.k, p.v};
    }
    if (priors)  // later uses of r, v_raw, v_first (as rwkv7_out and the later layers)
        for (int i : {0, 3, 6})
            if (v[i].defined()) outs.push_back(ag::mul(v[i], v[i]));
    Rng rng(7, "seed");
    Var total;
    Result r;
    for (const Var& o : outs) {
        r.outputs.push_back(o.value().to(Device::cpu()).to(DType::f64));
        const Var seed(Tensor::randn(o.shape(), rng, DType::f64).to(o.dtype()).to(Device::cuda()));
        const Var term = ag::cast(ag::sum(ag::mul(o, seed), {}, false), DType::f32);
        total = total.defined() ? ag::add(total, term) : term;
    }
    ag::backward(total);
    for (const Var& l : leaves)
        r.grads.push_back(l.defined() && l.grad().defined()
                              ? l.grad().to(Device::cpu()).to(DType::f64)
                              : Tensor());
    return r;
}

// ||got - want|| / ||want|| (relative norm of the error); fails on a non-finite got.
double rel_error(const Tensor& got, const Tensor& want, const std::string& what) {
    EXPECT_EQ(got.defined(), want.defined()) << what;
    if (!want.defined() || !got.defined()) return 0;
    EXPECT_EQ(got.shape(), want.shape()) << what;
    if (got.shape() != want.shape()) return 1;
    const auto g = got.to_vector(), w = want.to_vector();
    double num = 0, den = 0;
    for (size_t i = 0; i < w.size(); ++i) {
        if (!std::isfinite(g[i])) {
            ADD_FAILURE() << what << "[" << i << "] is " << g[i];
            return 1;
        }
        num += (g[i] - w[i]) * (g[i] - w[i]);
        den += w[i] * w[i];
    }
    return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

Result run_or_fail(bool fused, const std::vector<Tensor>& in, DType dt, bool priors,
                   const std::string& tag) {
    try {
        return run(fused, in, dt, priors);
    } catch (const std::exception& e) {
        ADD_FAILURE() << tag << (fused ? " fused" : " composed") << ": " << e.what();
        return {};
    }
}

// f32: fused against composed, 1e-5 relative. bf16: outputs equal to the composition's (same
// forward kernels); gradients against the f32 composition within 1e-2 relative, or no worse
// than 1.25 x the bf16 composition's own error (the fused path keeps the recurrence's
// gradients in f32 where the composition rounds them to bf16, so its sums differ).
void check_case(int64_t B, int64_t T, int64_t H, bool gate, bool state, bool priors) {
    Rng rng(static_cast<uint64_t>(B * 1000 + T + 7 * gate + 11 * state + 13 * priors), "pw");
    std::vector<Tensor> in = make_inputs(B, T, H, gate, state, rng);
    for (Tensor& t : in)  // exact in bf16, so both dtypes see the same inputs
        if (t.defined()) t = t.to(DType::bf16).to(DType::f32);
    const std::string tag = "B" + std::to_string(B) + " T" + std::to_string(T) + " H" +
                            std::to_string(H) + (gate ? " gate" : " no gate") +
                            (state ? " state" : "") + (priors ? " priors" : "");
    const Result ref = run_or_fail(false, in, DType::f32, priors, tag + " f32");
    const Result f32 = run_or_fail(true, in, DType::f32, priors, tag + " f32");
    const Result c16 = run_or_fail(false, in, DType::bf16, priors, tag + " bf16");
    const Result f16 = run_or_fail(true, in, DType::bf16, priors, tag + " bf16");
    for (const Result* r : {&f32, &c16, &f16}) {
        ASSERT_EQ(r->outputs.size(), ref.outputs.size()) << tag;
        ASSERT_EQ(r->grads.size(), ref.grads.size()) << tag;
    }
    for (size_t i = 0; i < ref.outputs.size(); ++i) {
        const std::string what = tag + " output " + std::to_string(i);
        EXPECT_LE(rel_error(f32.outputs[i], ref.outputs[i], what + " f32"), 1e-7) << what;
        EXPECT_LE(rel_error(f16.outputs[i], c16.outputs[i], what + " bf16"), 1e-7) << what;
    }
    double worst32 = 0, worst16 = 0, worst_c16 = 0;
    for (size_t i = 0; i < ref.grads.size(); ++i) {
        const std::string what = tag + " grad of input " + std::to_string(i);
        const double e32 = rel_error(f32.grads[i], ref.grads[i], what + " f32");
        EXPECT_LE(e32, 1e-5) << what << " f32";
        const double e16 = rel_error(f16.grads[i], ref.grads[i], what + " bf16 fused");
        const double c = rel_error(c16.grads[i], ref.grads[i], what + " bf16 composed");
        EXPECT_LE(e16, std::max(1e-2, 1.25 * c))
            << what << " bf16: fused " << e16 << ", composed " << c << " (against f32)";
        worst32 = std::max(worst32, e32), worst16 = std::max(worst16, e16);
        worst_c16 = std::max(worst_c16, c);
    }
    std::printf("%s: worst gradient error f32 fused %.2e; bf16 fused %.2e, composed %.2e\n",
                tag.c_str(), worst32, worst16, worst_c16);
}

TEST(CudaPrepWkv7, MatchesComposition) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    for (bool gate : {false, true}) {
        check_case(2, 520, 2, gate, false, false);  // T not a multiple of 16
        check_case(1, 512, 3, gate, true, true);    // state in, gradients gathered elsewhere
    }
    check_case(2, 530, 2, true, true, true);
}

// Shapes the fused backward does not take: the CUDA record declines, the public function
// composes.
TEST(CudaPrepWkv7, DeclinesOtherShapes) {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device";
    Rng rng(3, "decline");
    const std::vector<Tensor> in = make_inputs(1, 64, 2, true, false, rng);
    std::vector<Var> v;
    for (const Tensor& t : in) v.push_back(t.defined() ? Var(t.to(Device::cuda())) : Var());
    EXPECT_FALSE(rwkv7_prep_wkv7_cuda(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9],
                                      v[10], v[11], kHead, v[12])
                     .y.defined());
    const Rwkv7PrepWkv f = rwkv7_prep_wkv7(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8],
                                           v[9], v[10], v[11], kHead, v[12]);
    ASSERT_TRUE(f.y.defined());
    EXPECT_EQ(f.y.value().shape(), (Shape{1, 64, 2, kHead}));
}

}  // namespace
}  // namespace goose::models::fused
