// The memory-lean functions of src/models/recompute.h against the same functions composed from
// ag:: ops: values and every input gradient agree to rounding (f64), with and without prev, a
// mix feeding two projections, both projection layouts, LoRA chains (down, tanh / sigmoid /
// none, up), inputs that need no gradient; token_mix's backward from a list of gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "goose/autograd.h"
#include "goose/core/rng.h"
#include "goose/ops/backend.h"
#include "models/fused.h"
#include "models/recompute.h"

namespace goose::models::recompute {
namespace {

using Fn = std::function<std::vector<Var>(const std::vector<Var>&)>;

// fn on fresh f64 leaves (requires_grad as given), then backward of Σ_i <out_i, seed_i>;
// returns the outputs followed by every input's gradient (undefined where none).
std::vector<Tensor> run(const Fn& fn, const std::vector<Tensor>& inputs,
                        const std::vector<bool>& needs) {
    std::vector<Var> vars;
    for (size_t i = 0; i < inputs.size(); ++i)
        vars.push_back(inputs[i].defined() ? Var(inputs[i], needs[i]) : Var());
    const std::vector<Var> outs = fn(vars);
    Rng rng(5, "seed");
    Var total;
    std::vector<Tensor> r;
    for (const Var& o : outs) {
        r.push_back(o.value());
        const Var term = ag::sum(ag::mul(o, Var(Tensor::randn(o.shape(), rng, DType::f64))), {},
                                 false);
        total = total.defined() ? ag::add(total, term) : term;
    }
    ag::backward(total);
    for (const Var& v : vars) r.push_back(v.defined() ? v.grad() : Tensor());
    return r;
}

void expect_same(const Fn& lean, const Fn& composed, const std::vector<Tensor>& inputs,
                 const std::vector<bool>& needs, const std::string& what) {
    const std::vector<Tensor> a = run(lean, inputs, needs), b = run(composed, inputs, needs);
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].defined(), b[i].defined()) << what << " item " << i;
        if (!a[i].defined()) continue;
        ASSERT_EQ(a[i].shape(), b[i].shape()) << what << " item " << i;
        const auto x = a[i].to_vector(), y = b[i].to_vector();
        double worst = 0, scale = 1e-300;
        for (size_t j = 0; j < x.size(); ++j) {
            worst = std::max(worst, std::fabs(x[j] - y[j]));
            scale = std::max(scale, std::fabs(y[j]));
        }
        EXPECT_LE(worst, 1e-12 * scale) << what << " item " << i << " (outputs, then gradients)";
    }
}

Tensor randn(const Shape& s, Rng& rng, double std = 1.0) {
    return Tensor::randn(s, rng, DType::f64, 0.0, std);
}

TEST(Recompute, MixProjectMatchesTokenMixThenProducts) {
    Rng rng(1, "mix_project");
    const int64_t b = 2, t = 5, c = 8;
    for (bool with_prev : {false, true})
        for (bool mixes_need_grad : {true, false}) {
            // x, prev, three mixing vectors, then a Linear weight (6, C), a LoRA matrix (C, 3),
            // a Linear weight (4, C) that reads the same mix as the first
            std::vector<Tensor> in{randn(Shape{b, t, c}, rng),
                                   with_prev ? randn(Shape{b, c}, rng) : Tensor(),
                                   randn(Shape{1, 1, c}, rng, 0.5), randn(Shape{1, 1, c}, rng, 0.5),
                                   randn(Shape{1, 1, c}, rng, 0.5), randn(Shape{6, c}, rng),
                                   randn(Shape{c, 3}, rng),         randn(Shape{4, c}, rng)};
            const std::vector<bool> needs{mixes_need_grad, mixes_need_grad, mixes_need_grad,
                                          false,           mixes_need_grad, true,
                                          true,            true};
            const Fn lean = [](const std::vector<Var>& v) {
                return mix_project(v[0], v[1], {v[2], v[3], v[4]},
                                   {{0, v[5], true}, {2, v[6], false}, {0, v[7], true}});
            };
            const Fn composed = [](const std::vector<Var>& v) {
                const std::vector<Var> m = fused::token_mix(v[0], v[1], {v[2], v[3], v[4]});
                return std::vector<Var>{ag::linear(m[0], v[5]), ag::matmul(m[2], v[6]),
                                        ag::linear(m[0], v[7])};
            };
            expect_same(lean, composed, in, needs,
                        std::string("mix_project") + (with_prev ? " prev" : "") +
                            (mixes_need_grad ? "" : " weights only"));
        }
}

TEST(Recompute, MixProjectLoraChainsMatchComposed) {
    Rng rng(6, "mix_project chains");
    const int64_t b = 2, t = 5, c = 8;
    for (bool with_prev : {false, true}) {
        // x, prev, two mixing vectors, a Linear weight (6, C); chains: tanh (C, 3) (3, 5),
        // sigmoid (C, 4) (4, 6), none (C, 2) (2, 7) reading the Linear's mix
        std::vector<Tensor> in{randn(Shape{b, t, c}, rng),
                               with_prev ? randn(Shape{b, c}, rng) : Tensor(),
                               randn(Shape{1, 1, c}, rng, 0.5), randn(Shape{1, 1, c}, rng, 0.5),
                               randn(Shape{6, c}, rng),
                               randn(Shape{c, 3}, rng), randn(Shape{3, 5}, rng),
                               randn(Shape{c, 4}, rng), randn(Shape{4, 6}, rng),
                               randn(Shape{c, 2}, rng), randn(Shape{2, 7}, rng)};
        const std::vector<bool> needs(in.size(), true);
        const Fn lean = [](const std::vector<Var>& v) {
            return mix_project(v[0], v[1], {v[2], v[3]},
                               {{0, v[4], true},
                                {1, v[5], false, v[6], UnaryOp::tanh},
                                {1, v[7], false, v[8], UnaryOp::sigmoid},
                                {0, v[9], false, v[10]}});
        };
        const Fn composed = [](const std::vector<Var>& v) {
            const std::vector<Var> m = fused::token_mix(v[0], v[1], {v[2], v[3]});
            return std::vector<Var>{ag::linear(m[0], v[4]),
                                    ag::matmul(ag::tanh(ag::matmul(m[1], v[5])), v[6]),
                                    ag::matmul(ag::sigmoid(ag::matmul(m[1], v[7])), v[8]),
                                    ag::matmul(ag::matmul(m[0], v[9]), v[10])};
        };
        expect_same(lean, composed, in, needs,
                    std::string("mix_project chains") + (with_prev ? " prev" : ""));
        std::vector<bool> weights_only(in.size(), true);
        for (size_t i = 0; i < 4; ++i) weights_only[i] = false;
        expect_same(lean, composed, in, weights_only, "mix_project chains, weights only");
    }
}

// fused::token_mix_backward from a list of (mix, gradient) pairs against the composed ops'
// backward of Σ_k <token_shift + lerp output of mix_k, g_k>: several gradients of one mix, a mix
// with none, prev or not, T = 1, C of the vector kernel (8) and not (7), dx not wanted; on the
// fast CPU kernels and on the reference backend.
TEST(Recompute, TokenMixBackwardFromGradientListMatchesComposed) {
    Rng rng(9, "token_mix_backward");
    struct Size {
        int64_t b, t, c;
    };
    for (const Size sz : {Size{2, 5, 8}, Size{3, 1, 8}, Size{2, 4, 7}})
        for (bool with_prev : {false, true})
            for (bool need_x : {true, false})
                for (Backend be : {Backend::cpu, Backend::ref}) {
                    const BackendScope scope(be);
                    const Shape xs{sz.b, sz.t, sz.c};
                    const Tensor x = randn(xs, rng);
                    const Tensor prev = with_prev ? randn(Shape{sz.b, sz.c}, rng) : Tensor();
                    const std::vector<Tensor> mu{randn(Shape{1, 1, sz.c}, rng, 0.5),
                                                 randn(Shape{1, 1, sz.c}, rng, 0.5),
                                                 randn(Shape{1, 1, sz.c}, rng, 0.5)};
                    // mix 1 has none; mixes 0 and 2 have two and three
                    const std::vector<size_t> mix_of{0, 2, 0, 2, 2};
                    std::vector<fused::MixGrad> grads;
                    for (size_t m : mix_of) grads.push_back({m, randn(xs, rng)});
                    const fused::TokenMixGrads got =
                        fused::token_mix_backward(x, prev, mu, grads, need_x);
                    // the composed ops: Σ_k <mix_k, g_k>, backward
                    const Var xv(x, true), pv = with_prev ? Var(prev, true) : Var();
                    std::vector<Var> muv;
                    for (const Tensor& m : mu) muv.emplace_back(m, true);
                    const Var shifted = ag::token_shift(xv, pv);
                    Var total;
                    for (const fused::MixGrad& q : grads) {
                        const Var term = ag::sum(
                            ag::mul(ag::lerp(xv, shifted, muv[q.mix]), Var(q.g)), {}, false);
                        total = total.defined() ? ag::add(total, term) : term;
                    }
                    ag::backward(total);
                    const std::string what = "token_mix_backward b" + std::to_string(sz.b) +
                                             " t" + std::to_string(sz.t) + " c" +
                                             std::to_string(sz.c) + (with_prev ? " prev" : "") +
                                             (need_x ? "" : " no dx") + " " + backend_name(be);
                    std::vector<std::pair<Tensor, Tensor>> pairs;
                    ASSERT_EQ(got.dx.defined(), need_x) << what;
                    if (need_x) pairs.emplace_back(got.dx, xv.grad());
                    ASSERT_EQ(got.dprev.defined(), with_prev) << what;
                    if (with_prev) pairs.emplace_back(got.dprev, pv.grad());
                    ASSERT_EQ(got.dmu.size(), mu.size()) << what;
                    for (size_t m = 0; m < mu.size(); ++m)
                        pairs.emplace_back(got.dmu[m], muv[m].grad());
                    for (size_t i = 0; i < pairs.size(); ++i) {
                        if (!pairs[i].second.defined())  // mu[1]: unused by the composed ops
                            pairs[i].second = Tensor::zeros(pairs[i].first.shape(), DType::f64);
                        ASSERT_EQ(pairs[i].first.shape(), pairs[i].second.shape()) << what << i;
                        const auto a = pairs[i].first.to_vector(), b = pairs[i].second.to_vector();
                        double worst = 0, scale = 1e-300;
                        for (size_t j = 0; j < a.size(); ++j) {
                            worst = std::max(worst, std::fabs(a[j] - b[j]));
                            scale = std::max(scale, std::fabs(b[j]));
                        }
                        EXPECT_LE(worst, 1e-12 * scale) << what << " gradient " << i;
                    }
                }
    const Tensor x = randn(Shape{1, 2, 4}, rng);
    try {
        (void)fused::token_mix_backward(x, Tensor(), {randn(Shape{1, 1, 4}, rng)},
                                        {{1, randn(Shape{1, 2, 4}, rng)}});
        FAIL() << "a gradient of a missing mix must fail";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("gradient of mix 1 but only 1"), std::string::npos)
            << e.what();
    }
}

TEST(Recompute, Relu2MlpMatchesComposed) {
    Rng rng(2, "relu2_mlp");
    std::vector<Tensor> in{randn(Shape{3, 4, 10}, rng), randn(Shape{7, 10}, rng),
                           randn(Shape{5, 7}, rng)};
    const Fn lean = [](const std::vector<Var>& v) {
        return std::vector<Var>{relu2_mlp(v[0], v[1], v[2])};
    };
    const Fn composed = [](const std::vector<Var>& v) {
        return std::vector<Var>{ag::linear(ag::relu2(ag::linear(v[0], v[1])), v[2])};
    };
    expect_same(lean, composed, in, {true, true, true}, "relu2_mlp");
    expect_same(lean, composed, in, {false, true, true}, "relu2_mlp weights only");
    expect_same(lean, composed, in, {false, false, true}, "relu2_mlp second weight only");
    expect_same(lean, composed, in, {true, false, false}, "relu2_mlp x only");
}

TEST(Recompute, BadProjectionsAreNamed) {
    Rng rng(3, "bad");
    const Var x(randn(Shape{1, 2, 4}, rng)), mu(randn(Shape{1, 1, 4}, rng));
    try {
        (void)mix_project(x, Var(), {mu}, {{1, Var(randn(Shape{3, 4}, rng)), true}});
        FAIL() << "a projection of a missing mix must fail";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("projection of mix 1 but only 1"), std::string::npos)
            << e.what();
    }
    try {
        (void)mix_project(x, Var(), {mu}, {{0, Var(randn(Shape{4, 2}, rng)), false, Var(),
                                            UnaryOp::tanh}});
        FAIL() << "an activation without an up matrix must fail";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("activation without an up"), std::string::npos)
            << e.what();
    }
}

TEST(Autograd, BackwardFromSeveralRootsSumsTheirSeeds) {
    Rng rng(4, "roots");
    const Var x(randn(Shape{3}, rng), true);
    const Var a = ag::mul(x, x), b = ag::exp(x);
    const Tensor sa = randn(Shape{3}, rng), sb = randn(Shape{3}, rng);
    ag::backward({a, b}, {sa, sb});
    const auto g = x.grad().to_vector(), xv = x.value().to_vector(), va = sa.to_vector(),
               vb = sb.to_vector();
    for (size_t i = 0; i < 3; ++i)
        EXPECT_NEAR(g[i], 2 * xv[i] * va[i] + std::exp(xv[i]) * vb[i], 1e-12);
    EXPECT_THROW(ag::backward(std::vector<Var>{a}, std::vector<Tensor>{}), Error);
}

}  // namespace
}  // namespace goose::models::recompute
