// The models' fused functions (src/models/fused.h) against the same functions composed from
// ag:: ops on the reference backend: values and every input gradient, f64 (tight) and f32.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "goose/autograd.h"
#include "goose/core/rng.h"
#include "goose/ops/backend.h"
#include "goose/models/rwkv7.h"
#include "common/fused_cases.h"
#include "models/fused.h"

namespace goose::models::fused {
namespace {

using Fn = std::function<std::vector<Var>(const std::vector<Var>&)>;

struct Result {
    std::vector<Tensor> outputs, grads;  // grads: one per input (undefined where none)
};

// Runs fn on fresh leaves holding `inputs` (undefined stays undefined), then backward of
// Σ_i <out_i, seed_i> with fixed random seeds.
Result run(const Fn& fn, const std::vector<Tensor>& inputs, DType dt, Backend backend) {
    BackendScope scope(backend);
    std::vector<Var> vars;
    for (const Tensor& t : inputs) vars.push_back(t.defined() ? Var(t.to(dt), true) : Var());
    const std::vector<Var> outs = fn(vars);
    Rng rng(7, "seed");
    Var total;
    Result r;
    for (const Var& o : outs) {
        r.outputs.push_back(o.value().to(DType::f64));
        const Var seed(Tensor::randn(o.shape(), rng, DType::f64).to(dt));
        const Var term = ag::sum(ag::mul(o, seed), {}, false);
        total = total.defined() ? ag::add(total, term) : term;
    }
    ag::backward(total);
    for (const Var& v : vars)
        r.grads.push_back(v.defined() && v.grad().defined() ? v.grad().to(DType::f64) : Tensor());
    return r;
}

void expect_close(const Tensor& got, const Tensor& want, double atol, double rtol,
                  const std::string& what) {
    ASSERT_EQ(got.defined(), want.defined()) << what;
    if (!want.defined()) return;
    ASSERT_EQ(got.shape(), want.shape()) << what;
    const auto g = got.to_vector(), w = want.to_vector();
    int bad = 0;
    for (size_t i = 0; i < w.size(); ++i)
        if (!(std::fabs(g[i] - w[i]) <= atol + rtol * std::fabs(w[i])) && bad++ < 3)
            ADD_FAILURE() << what << "[" << i << "]: fused " << g[i] << ", composed " << w[i];
}

// The fused (fast CPU) result against the composed one (reference backend) in f64 and f32.
void check(const std::string& name, const Fn& fn, const std::vector<Tensor>& inputs) {
    for (DType dt : {DType::f64, DType::f32}) {
        const double atol = dt == DType::f64 ? 1e-12 : 2e-5, rtol = dt == DType::f64 ? 1e-10 : 1e-4;
        const Result fast = run(fn, inputs, dt, Backend::cpu);
        const Result ref = run(fn, inputs, dt, Backend::ref);
        const std::string tag = name + " " + std::string(dtype_name(dt));
        ASSERT_EQ(fast.outputs.size(), ref.outputs.size()) << tag;
        for (size_t i = 0; i < ref.outputs.size(); ++i)
            expect_close(fast.outputs[i], ref.outputs[i], atol, rtol,
                         tag + " output " + std::to_string(i));
        for (size_t i = 0; i < ref.grads.size(); ++i)
            expect_close(fast.grads[i], ref.grads[i], atol, rtol,
                         tag + " grad of input " + std::to_string(i));
    }
}

TEST(Fused, TokenMixMatchesComposed) {
    Rng rng(1, "mix");
    for (bool with_prev : {false, true})
        for (auto [b, t, c, m] : {std::array<int64_t, 4>{2, 5, 7, 6}, {3, 1, 16, 1},
                                  {1, 9, 3, 2}, {5, 4, 20, 6}}) {
            const test_cases::Case k = test_cases::token_mix_case(b, t, c, m, with_prev, rng);
            check(k.name, k.fn, k.inputs);
        }
}

// On the CPU add_layer_norm_mix is add_layer_norm then token_mix: the same function on both
// backends (the fused token_mix on the fast one).
TEST(Fused, AddLayerNormMixMatchesComposed) {
    Rng rng(5, "ln mix");
    for (bool with_prev : {false, true})
        for (auto [b, t, c] : {std::array<int64_t, 3>{2, 5, 8}, {3, 1, 16}, {1, 9, 3}}) {
            const test_cases::Case k = test_cases::ln_mix_case(b, t, c, with_prev, rng);
            check(k.name, k.fn, k.inputs);
        }
}

TEST(Fused, Rwkv7PrepMatchesComposed) {
    Rng rng(2, "prep");
    for (bool gate : {false, true})
        for (auto [b, t, h, n] : {std::array<int64_t, 4>{2, 3, 2, 4}, {1, 5, 3, 5},
                                  {3, 2, 1, 16}}) {
            const test_cases::Case k = test_cases::prep_case(b, t, h, n, gate, rng);
            check(k.name, k.fn, k.inputs);
        }
}

TEST(Fused, Rwkv7OutMatchesComposed) {
    Rng rng(3, "out");
    for (auto [b, t, h, n] : {std::array<int64_t, 4>{2, 3, 2, 4}, {1, 5, 3, 5}, {3, 2, 4, 16}}) {
        const test_cases::Case k = test_cases::out_case(b, t, h, n, rng);
        check(k.name, k.fn, k.inputs);
    }
}

TEST(Fused, LstmCellMatchesComposed) {
    Rng rng(4, "lstm");
    for (auto [b, c] : {std::array<int64_t, 2>{3, 5}, {2, 16}, {1, 1}}) {
        std::vector<Tensor> in{test_cases::randn(Shape{b, 4 * c}, rng, 2.0),
                               test_cases::randn(Shape{b, c}, rng)};
        const Fn fn = [](const std::vector<Var>& v) {
            const LstmCell r = lstm_cell(v[0], v[1]);
            return std::vector<Var>{r.h, r.c};
        };
        check("lstm_cell B" + std::to_string(b) + " C" + std::to_string(c), fn, in);
    }
}

}  // namespace
}  // namespace goose::models::fused

namespace goose::models {
namespace {

// RWKV-7 with LoRA ranks of at least half the width, where the a LoRA (and here the v LoRA)
// runs as x (m1 m2): the gradients of a1, a2, v1, v2 against central differences in f64.
TEST(Rwkv7LoraProduct, GradientMatchesFiniteDifferences) {
    Rwkv7Config cfg;
    cfg.vocab = 7;
    cfg.n_layer = 2;
    cfg.n_embd = 8;
    cfg.head_size = 4;
    cfg.d_decay = 3;
    cfg.d_aaa = 4;  // 2 * 4 >= 8: the product form
    cfg.d_mv = 5;
    cfg.d_gate = 3;
    cfg.dim_ffn = 12;
    Rwkv7 m(cfg, DType::f64);
    Rng rng(5, "lora");
    m.init_official(rng);
    for (auto& [name, p] : m.named_parameters())
        p.value_mut().copy_(ops::binary_forward(
            BinaryOp::add, p.value(), Tensor::randn(p.shape(), rng, DType::f64, 0.0, 0.3)));
    std::vector<double> idv(12);
    for (auto& x : idv) x = static_cast<double>(rng.randint(0, cfg.vocab));
    const Tensor ids = Tensor::from(Shape{2, 6}, idv, DType::i64);
    auto loss_of = [&] { return ag::sum(ag::square(m.forward(ids)), {}, false); };
    m.zero_grad();
    ag::backward(loss_of());
    const double h = 1e-6;
    for (auto& [name, p] : m.named_parameters()) {
        const bool lora = name == "blocks.1.att.a1" || name == "blocks.1.att.a2" ||
                          name == "blocks.1.att.v1" || name == "blocks.1.att.v2" ||
                          name == "blocks.0.att.a1";
        if (!lora) continue;
        const Tensor grad = p.grad().contiguous();
        double* data = p.value_mut().data<double>();
        for (int64_t i : {int64_t(0), p.numel() / 2, p.numel() - 1}) {
            const double orig = data[i];
            double lp, lm;
            {
                ag::NoGradGuard ng;
                data[i] = orig + h;
                lp = loss_of().item();
                data[i] = orig - h;
                lm = loss_of().item();
                data[i] = orig;
            }
            const double num = (lp - lm) / (2 * h);
            EXPECT_NEAR(grad.data<double>()[i], num, 1e-6 + 1e-5 * std::fabs(num))
                << name << "[" << i << "]";
        }
    }
}

}  // namespace
}  // namespace goose::models
