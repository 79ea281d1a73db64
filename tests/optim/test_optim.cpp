// Optimizers: Adam/AdamW against hand-computed updates, parameter groups, gradient clipping,
// learning-rate schedules and the checkpoint state round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common/expect_error.h"
#include "goose/optim/adamw.h"
#include "goose/optim/clip.h"
#include "goose/optim/schedule.h"

namespace goose::optim {
namespace {

Var param(std::initializer_list<double> v, DType dt = DType::f64) {
    return Var(Tensor::from(Shape{static_cast<int64_t>(v.size())}, v, dt), true);
}

void set_grad(Var p, std::initializer_list<double> g) {
    p.grad_mut() = Tensor::from(p.shape(), g, p.dtype());
}

using goose::test::expect_error;

// Two AdamW steps on [1, -2], each update written out by hand in double.
TEST(AdamW, TwoStepsMatchHandComputation) {
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
    const double grads[2][2] = {{0.1, -0.3}, {0.2, 0.4}};
    for (DType dt : {DType::f64, DType::f32}) {
        Var p = param({1.0, -2.0}, dt);
        Adam opt = make_adamw({{.params = {p}, .weight_decay = wd}},
                              {.lr = lr, .beta1 = b1, .beta2 = b2, .eps = eps});
        double x[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
        for (int t = 1; t <= 2; ++t) {
            set_grad(p, {grads[t - 1][0], grads[t - 1][1]});
            opt.step();
            for (int i = 0; i < 2; ++i) {
                const double g = grads[t - 1][i];
                x[i] = x[i] - lr * wd * x[i];  // decoupled decay first
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                const double m_hat = m[i] / (1 - std::pow(b1, t));
                const double v_hat = v[i] / (1 - std::pow(b2, t));
                x[i] = x[i] - lr * m_hat / (std::sqrt(v_hat) + eps);
            }
            if (t == 1) {
                // The first step moves by lr * g / (|g| + eps): about lr against the gradient.
                EXPECT_NEAR(x[0], 1.0 * (1 - 0.001) - 0.01 * 0.1 / (0.1 + 1e-8), 1e-15);
                EXPECT_NEAR(x[1], -2.0 * (1 - 0.001) + 0.01 * 0.3 / (0.3 + 1e-8), 1e-15);
            }
            const double tol = dt == DType::f64 ? 1e-7 : 1e-6;
            EXPECT_NEAR(p.value().get({0}), x[0], tol) << "step " << t;
            EXPECT_NEAR(p.value().get({1}), x[1], tol) << "step " << t;
        }
        EXPECT_EQ(opt.steps(), 2);
    }
}

// Adam with L2 weight decay: g' = g + wd * p enters the moments; one step moves lr * sign(g').
TEST(Adam, CoupledWeightDecayOneStep) {
    const double lr = 0.05, wd = 0.5, eps = 1e-8;
    Var p = param({0.5, -1.5});
    Adam opt = make_adam({{.params = {p}, .weight_decay = wd}}, {.lr = lr, .eps = eps});
    EXPECT_FALSE(opt.config().decoupled_weight_decay);
    set_grad(p, {0.2, 0.1});
    opt.step();
    const double g0 = 0.2 + wd * 0.5, g1 = 0.1 + wd * -1.5;  // 0.45, -0.65
    // m_hat = g', v_hat = g'^2 after one step.
    EXPECT_NEAR(p.value().get({0}), 0.5 - lr * g0 / (std::abs(g0) + eps), 1e-7);
    EXPECT_NEAR(p.value().get({1}), -1.5 - lr * g1 / (std::abs(g1) + eps), 1e-7);
    EXPECT_NEAR(p.value().get({1}), -1.5 + 0.05, 1e-7);
}

TEST(Adam, LrScaleGroupsMoveProportionally) {
    Var a = param({1.0, 2.0}), b = param({1.0, 2.0});
    Adam opt =
        make_adamw({{.params = {a}, .name = "a"}, {.params = {b}, .lr_scale = 2.0, .name = "b"}},
                   {.lr = 0.01});
    set_grad(a, {0.3, -0.7});
    set_grad(b, {0.3, -0.7});
    opt.step();
    for (int64_t i = 0; i < 2; ++i) {
        const double da = a.value().get({i}) - (i == 0 ? 1.0 : 2.0);
        const double db = b.value().get({i}) - (i == 0 ? 1.0 : 2.0);
        EXPECT_NEAR(db, 2 * da, 1e-12);
        EXPECT_NEAR(std::abs(da), 0.01, 1e-8);  // the first Adam step is +-lr
    }
    opt.set_lr(0.02);
    EXPECT_DOUBLE_EQ(opt.lr(), 0.02);
}

TEST(Adam, ParametersWithoutGradientAreUntouched) {
    Var a = param({1.0, 2.0}), b = param({3.0, 4.0});
    Adam opt = make_adamw({{.params = {a, b}, .weight_decay = 0.1}}, {.lr = 0.1});
    set_grad(a, {1.0, 1.0});
    opt.step();
    EXPECT_EQ(b.value().to_vector(), (std::vector<double>{3.0, 4.0}));
    EXPECT_NE(a.value().get({0}), 1.0);
    opt.zero_grad();
    EXPECT_FALSE(a.grad().defined());
    const std::vector<double> before = a.value().to_vector();
    opt.step();  // no gradients at all: nothing moves
    EXPECT_EQ(a.value().to_vector(), before);
    EXPECT_EQ(b.value().to_vector(), (std::vector<double>{3.0, 4.0}));
}

TEST(Adam, ArgumentErrors) {
    expect_error([] { Adam({{.params = {Var(Tensor::zeros(Shape{2}, DType::i64))}}}, {}); },
                 "i64[2]");
    Var p = param({1.0});
    expect_error([&] { Adam({{.params = {p}}, {.params = {p}}}, {}); }, "twice");
    expect_error([&] { Adam({{.params = {p}, .name = "x"}, {.name = "x"}}, {}); }, "'x'");
    expect_error([&] { Adam({{.params = {p}}}, {.beta1 = 1.0}); }, "beta1");
    Adam opt({{.params = {p}}}, {});
    p.grad_mut() = Tensor::zeros(Shape{3}, DType::f64);
    expect_error([&] { opt.step(); }, "f64[3]");
    EXPECT_EQ(opt.steps(), 0);  // a failed step changes nothing
}

// AdamConfig::max_grad_norm: the step clips first, exactly as clip_grad_norm then a plain step;
// last_grad_norm is the norm before clipping (NaN without clipping); a bad bound is refused.
TEST(Adam, ClipsGradientsByTheirGlobalNorm) {
    Var a = param({0.5, -1.0}), b = param({2.0});
    Var a2 = param({0.5, -1.0}), b2 = param({2.0});
    Adam clipped({{.params = {a, b}, .weight_decay = 0.1}}, {.lr = 0.1, .max_grad_norm = 1.0});
    Adam plain({{.params = {a2, b2}, .weight_decay = 0.1}}, {.lr = 0.1});
    EXPECT_TRUE(std::isnan(clipped.last_grad_norm()));
    for (int t = 0; t < 2; ++t) {
        set_grad(a, {3, 4});
        set_grad(b, {12});
        set_grad(a2, {3, 4});
        set_grad(b2, {12});
        clipped.step();
        EXPECT_NEAR(clip_grad_norm({a2, b2}, 1.0), 13.0, 1e-12);
        plain.step();
        EXPECT_NEAR(clipped.last_grad_norm(), 13.0, 1e-12);
        EXPECT_TRUE(std::isnan(plain.last_grad_norm()));
    }
    EXPECT_EQ(a.value().to_vector(), a2.value().to_vector());
    EXPECT_EQ(b.value().to_vector(), b2.value().to_vector());
    expect_error([&] { Adam({{.params = {a}}}, {.max_grad_norm = -1}); }, "max_grad_norm");
}

TEST(ClipGradNorm, ScalesToMaxNorm) {
    Var a = param({0, 0}, DType::f32), b = param({0}), c = param({5});
    set_grad(a, {3, 4});
    set_grad(b, {12});
    // c has no gradient and is ignored.
    EXPECT_NEAR(clip_grad_norm({a, b, c}, 20.0), 13.0, 1e-12);  // below max: unchanged
    EXPECT_EQ(a.grad().to_vector(), (std::vector<double>{3, 4}));
    const double norm = clip_grad_norm({a, b, c}, 1.0);
    EXPECT_NEAR(norm, 13.0, 1e-12);
    const double k = 1.0 / (13.0 + 1e-6);
    EXPECT_NEAR(a.grad().get({0}), 3 * k, 1e-7);
    EXPECT_NEAR(a.grad().get({1}), 4 * k, 1e-7);
    EXPECT_NEAR(b.grad().get({0}), 12 * k, 1e-12);
    EXPECT_NEAR(grad_norm({a, b, c}), 13.0 * k, 1e-7);
    EXPECT_FALSE(c.grad().defined());
    expect_error([&] { clip_grad_norm({a}, -1.0); }, "max_norm");
}

TEST(LrSchedule, ValuesAtKnownSteps) {
    using K = LrSchedule::Kind;
    const LrSchedule constant{.kind = K::constant, .base_lr = 3e-4, .warmup_steps = 10};
    EXPECT_DOUBLE_EQ(constant.lr(0), 3e-4);
    EXPECT_DOUBLE_EQ(constant.lr(1000), 3e-4);

    const LrSchedule warm{.kind = K::linear_warmup, .base_lr = 1e-3, .warmup_steps = 10};
    EXPECT_DOUBLE_EQ(warm.lr(0), 1e-4);
    EXPECT_DOUBLE_EQ(warm.lr(4), 5e-4);  // midpoint of the warmup
    EXPECT_DOUBLE_EQ(warm.lr(9), 1e-3);
    EXPECT_DOUBLE_EQ(warm.lr(500), 1e-3);
    EXPECT_DOUBLE_EQ((LrSchedule{.kind = K::linear_warmup, .base_lr = 2.0}.lr(0)), 2.0);

    const LrSchedule cos{
        .kind = K::cosine, .base_lr = 1.0, .warmup_steps = 10, .total_steps = 110, .final_lr = 0.1};
    EXPECT_DOUBLE_EQ(cos.lr(4), 0.5);
    EXPECT_DOUBLE_EQ(cos.lr(10), 1.0);
    EXPECT_NEAR(cos.lr(60), (1.0 + 0.1) / 2, 1e-15);  // cosine midpoint
    EXPECT_NEAR(cos.lr(35), 0.1 + 0.9 * 0.5 * (1 + std::cos(3.141592653589793 * 0.25)), 1e-15);
    EXPECT_DOUBLE_EQ(cos.lr(110), 0.1);
    EXPECT_DOUBLE_EQ(cos.lr(1000), 0.1);

    const LrSchedule ex{.kind = K::exponential, .base_lr = 1.0, .warmup_steps = 5, .gamma = 0.9};
    EXPECT_DOUBLE_EQ(ex.lr(2), 0.6);
    EXPECT_DOUBLE_EQ(ex.lr(5), 1.0);
    EXPECT_NEAR(ex.lr(7), 0.81, 1e-15);

    expect_error([&] { warm.lr(-1); }, "step");
    expect_error(
        [] {
            LrSchedule{.kind = K::cosine, .base_lr = 1, .warmup_steps = 10, .total_steps = 5}.lr(0);
        },
        "total_steps");
    expect_error(
        [] { LrSchedule{.kind = K::linear_warmup, .base_lr = 1, .warmup_steps = -1}.lr(0); },
        "warmup_steps");
    expect_error([] { LrSchedule{.kind = K::exponential, .base_lr = 1, .gamma = 0}.lr(0); },
                 "gamma");
}

// A run interrupted after two steps (state saved, a fresh optimizer loads it) ends bit for bit
// where an uninterrupted run does.
TEST(Adam, StateRoundTrip) {
    const double g[3][3] = {{0.1, -0.2, 0.3}, {-0.5, 0.4, 0.05}, {0.2, 0.2, -0.1}};
    auto groups = [](Var& a, Var& b) {
        return std::vector<ParamGroup>{{.params = {a}, .weight_decay = 0.1, .name = "body"},
                                       {.params = {b}, .lr_scale = 0.5}};
    };
    auto grads = [&](Var& a, Var& b, int t) {
        set_grad(a, {g[t][0], g[t][1]});
        set_grad(b, {g[t][2]});
    };
    const AdamConfig cfg{.lr = 0.03};

    Var a1 = param({1.0, -1.0}), b1 = param({0.5});
    Adam full = make_adamw(groups(a1, b1), cfg);
    for (int t = 0; t < 3; ++t) {
        grads(a1, b1, t);
        full.step();
    }

    Var a2 = param({1.0, -1.0}), b2 = param({0.5});
    Adam first = make_adamw(groups(a2, b2), cfg);
    for (int t = 0; t < 2; ++t) {
        grads(a2, b2, t);
        first.step();
    }
    const auto saved = first.state();
    std::vector<std::string> names;
    for (const auto& [n, t] : saved) names.push_back(n);
    EXPECT_EQ(names, (std::vector<std::string>{"step", "body.0.exp_avg", "body.0.exp_avg_sq",
                                               "1.0.exp_avg", "1.0.exp_avg_sq"}));
    grads(a2, b2, 2);
    first.step();  // the saved state is a copy: later steps leave it alone

    Var a3 = param({0, 0}), b3 = param({0});
    {
        // Parameters as they were after step 2: replay steps 1-2 on a copy.
        Var ar = param({1.0, -1.0}), br = param({0.5});
        Adam replay = make_adamw(groups(ar, br), cfg);
        for (int t = 0; t < 2; ++t) {
            grads(ar, br, t);
            replay.step();
        }
        a3.value_mut().copy_(ar.value());
        b3.value_mut().copy_(br.value());
    }
    Adam resumed = make_adamw(groups(a3, b3), cfg);
    resumed.load_state(saved);
    EXPECT_EQ(resumed.steps(), 2);
    grads(a3, b3, 2);
    resumed.step();
    EXPECT_EQ(a3.value().to_vector(), a1.value().to_vector());
    EXPECT_EQ(b3.value().to_vector(), b1.value().to_vector());
    EXPECT_EQ(a2.value().to_vector(), a1.value().to_vector());

    // Mismatches name the entry.
    auto missing = saved;
    missing.pop_back();
    expect_error([&] { resumed.load_state(missing); }, "1.0.exp_avg_sq");
    auto wrong = saved;
    wrong[1].second = Tensor::zeros(Shape{3}, DType::f64);
    expect_error([&] { resumed.load_state(wrong); }, "body.0.exp_avg");
    auto extra = saved;
    extra.emplace_back("head.0.exp_avg", Tensor::zeros(Shape{1}));
    expect_error([&] { resumed.load_state(extra); }, "head.0.exp_avg");
}

}  // namespace
}  // namespace goose::optim
