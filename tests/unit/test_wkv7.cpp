// WKV-7 recurrence: argument errors (goose::Error naming the op and the tensors; also of the
// (B, T, C) form wkv7_heads); on both CPU
// backends a hand-computed example and splitting the sequence across calls with the carried
// state; the fast backward after a reference forward.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/expect_error.h"
#include "goose/autograd/wkv7.h"
#include "goose/core/rng.h"
#include "goose/ops/backend.h"

namespace goose {
namespace {

using goose::test::expect_error;

// ---- errors ----

TEST(Wkv7Errors, ShapeMismatchBetweenRAndK) {
    const Var r(Tensor::zeros(Shape{1, 4, 2, 8})), x(Tensor::zeros(Shape{1, 4, 2, 8}));
    const Var k(Tensor::zeros(Shape{1, 4, 2, 7}));
    expect_error([&] { ag::wkv7(r, x, k, x, x, x); },
                 {"wkv7", "k must have r's shape", "[1, 4, 2, 8]", "f32[1, 4, 2, 7]"});
    expect_error(
        [&] {
            ag::wkv7(Var(Tensor::zeros(Shape{4, 2, 8})), x, x, x, x, x);
        },
        {"wkv7", "r (B, T, H, N) must be 4-d", "f32[4, 2, 8]"});
}

TEST(Wkv7Errors, HeadsFormShapes) {
    const Var x(Tensor::zeros(Shape{1, 4, 16})), k(Tensor::zeros(Shape{1, 4, 8}));
    expect_error([&] { ag::wkv7_heads(x, x, x, x, x, x, 5); },
                 {"wkv7_heads", "multiple of head_size 5", "f32[1, 4, 16]"});
    expect_error([&] { ag::wkv7_heads(x, x, k, x, x, x, 8); },
                 {"wkv7_heads", "must have r's shape [1, 4, 16]", "f32[1, 4, 8]"});
    expect_error([&] { ag::wkv7_heads(Var(Tensor::zeros(Shape{1, 4, 2, 8})), x, x, x, x, x, 8); },
                 {"wkv7_heads", "(B, T, C)", "f32[1, 4, 2, 8]"});
    // a (B, H, N, N) state of the wrong size is the op's error
    const Var bad_state(Tensor::zeros(Shape{1, 2, 8, 7}));
    expect_error([&] { ag::wkv7_heads(x, x, x, x, x, x, 8, bad_state); },
                 {"wkv7", "state must be (B, H, N, N) = [1, 2, 8, 8]"});
}

TEST(Wkv7Errors, WrongStateShape) {
    const Var x(Tensor::zeros(Shape{1, 4, 2, 8}));
    expect_error(
        [&] {
            ag::wkv7(x, x, x, x, x, x, Var(Tensor::zeros(Shape{1, 2, 8, 7})));
        },
        {"wkv7", "state must be (B, H, N, N) = [1, 2, 8, 8]", "f32[1, 2, 8, 7]"});
    expect_error(
        [&] {
            ag::wkv7(x, x, x, x, x, x, Var(Tensor::zeros(Shape{2, 8, 8})));
        },
        {"wkv7", "state", "f32[2, 8, 8]"});
    expect_error(
        [&] {
            ag::wkv7(x, x, x, x, x, x, Var(Tensor::zeros(Shape{1, 2, 8, 8}, DType::f64)));
        },
        {"wkv7", "dtypes differ", "f64[1, 2, 8, 8]"});
}

TEST(Wkv7Errors, IntegerAndMixedDtypes) {
    const Var i(Tensor::zeros(Shape{1, 3, 1, 4}, DType::i32));
    expect_error([&] { ag::wkv7(i, i, i, i, i, i); }, {"wkv7", "f32 or f64", "i32[1, 3, 1, 4]"});
    const Var x(Tensor::zeros(Shape{1, 3, 1, 4})), d(Tensor::zeros(Shape{1, 3, 1, 4}, DType::f64));
    expect_error([&] { ag::wkv7(x, x, x, d, x, x); },
                 {"wkv7", "dtypes differ", "f32[1, 3, 1, 4]", "f64[1, 3, 1, 4]"});
}

// ---- known values, on the fast CPU kernels and on the reference ----

class Wkv7KnownValues : public ::testing::TestWithParam<Backend> {};

// B = H = 1, N = 2, T = 2. Raw decays w = (0, -40) at both steps: key 0 decays by
// δ = exp(-exp(-0.5) sigmoid(0)) = exp(-0.30327) = 0.73841, key 1 by exp(-0.6065 * 4e-18) = 1.
// State in S0 = [[1, 0], [0, 2]] (row = value i, column = key j).
//   t = 0: r = (1, 0), k = (1, 0), v = (1, 2), a = (0, 1), b = (1, 0)
//     sa = S0 a = (0, 2)
//     S1[i, j] = S0[i, j] d_j + sa_i b_j + v_i k_j
//        = [[δ + 0 + 1, 0], [0 + 2 + 2, 2 + 0 + 0]] = [[δ + 1, 0], [4, 2]]
//     y0 = S1 r = (δ + 1, 4)
//   t = 1: r = (1, 1), k = (0, 1), v = (3, -1), a = (1, 0), b = (0, 1)
//     sa = S1 a = (δ + 1, 4)
//     S2 = [[(δ + 1) δ, 0 + (δ + 1) + 3], [4 δ, 2 + 4 - 1]] = [[δ² + δ, δ + 4], [4 δ, 5]]
//     y1 = S2 r = (δ² + 2 δ + 4, 4 δ + 5)
// Gradients of L = y1[1] = S2[1, 0] r1[0] + S2[1, 1] r1[1]:
//   dL/dr1 = (S2[1, 0], S2[1, 1]) = (4 δ, 5); dL/dr0 = 0; dL/dv1 = (0, k1[1] r1[1]) = (0, 1).
//   With δ0, δ1 the decays of key 0 at steps 0 and 1: S2[1, 0] = S1[1, 0] δ1 and
//   S2[1, 1] = S1[1, 1] + sa1[1] + v1[1] = S1[1, 1] + S1[1, 0] - 1, so
//   L = S1[1, 0] (δ1 + 1) + S1[1, 1] - 1, where S1[1, 0] = S0[1, 0] δ0 + S0[1, 1] + v0[1] and
//   S1[1, 1] = S0[1, 1]. Hence:
//   dL/dv0 = (0, δ + 1); dL/dS0[1, 0] = δ (δ + 1), dL/dS0[1, 1] = (δ + 1) + 1, row 0 gets 0;
//   dL/dw1[0] = S1[1, 0] dδ/dw = 4 δ (-exp(-0.5)) sigmoid'(0) = -exp(-0.5) δ;
//   dL/dw0[0] = dL/dS1[1, 0] S0[1, 0] dδ/dw = 0 since S0[1, 0] = 0; key 1: sigmoid'(-40) ~ 0.
TEST_P(Wkv7KnownValues, TwoStepsByHand) {
    BackendScope scope(GetParam());
    const double c = kWkv7DecayScale, dl = std::exp(-c * 0.5);
    for (DType dt : {DType::f32, DType::f64}) {
        const double tol = dt == DType::f32 ? 2e-6 : 1e-12;
        auto make = [dt](std::initializer_list<double> v) {
            return Var(Tensor::from(Shape{1, 2, 1, 2}, v, dt), true);
        };
        Var r = make({1, 0, 1, 1}), w = make({0, -40, 0, -40}), k = make({1, 0, 0, 1}),
            v = make({1, 2, 3, -1}), a = make({0, 1, 1, 0}), b = make({1, 0, 0, 1});
        Var s0(Tensor::from(Shape{1, 1, 2, 2}, {1, 0, 0, 2}, dt), true);
        const ag::Wkv7Result res = ag::wkv7(r, w, k, v, a, b, s0);
        const std::vector<double> y = res.y.value().to_vector(), s = res.state.value().to_vector();
        const double y_want[] = {dl + 1, 4, dl * dl + 2 * dl + 4, 4 * dl + 5};
        const double s_want[] = {dl * dl + dl, dl + 4, 4 * dl, 5};
        for (int i = 0; i < 4; ++i) {
            EXPECT_NEAR(y[i], y_want[i], tol) << "y " << i;
            EXPECT_NEAR(s[i], s_want[i], tol) << "state " << i;
        }
        ag::backward(res.y, Tensor::from(Shape{1, 2, 1, 2}, {0, 0, 0, 1}, dt));
        const std::vector<double> gr = r.grad().to_vector(), gw = w.grad().to_vector(),
                                  gv = v.grad().to_vector(), gs = s0.grad().to_vector();
        const double gr_want[] = {0, 0, 4 * dl, 5}, gv_want[] = {0, dl + 1, 0, 1};
        const double gs_want[] = {0, 0, dl * (dl + 1), dl + 2};
        for (int i = 0; i < 4; ++i) {
            EXPECT_NEAR(gr[i], gr_want[i], tol) << "dr " << i;
            EXPECT_NEAR(gv[i], gv_want[i], tol) << "dv " << i;
            EXPECT_NEAR(gs[i], gs_want[i], tol) << "dstate " << i;
        }
        EXPECT_NEAR(gw[0], 0, tol);
        EXPECT_NEAR(gw[2], -c * dl, tol);
        EXPECT_NEAR(gw[1], 0, tol);  // sigmoid'(-40) ~ 4e-18
        EXPECT_NEAR(gw[3], 0, tol);
    }
}

// Running T steps at once equals running T1 then T - T1 steps from the carried state. The split
// falls inside a 16-step chunk; the pieces are strided views of the whole inputs.
TEST_P(Wkv7KnownValues, SplitSequenceCarriesTheState) {
    BackendScope scope(GetParam());
    const int64_t B = 2, T = 37, T1 = 21, H = 3, N = 20;
    for (DType dt : {DType::f32, DType::f64}) {
        const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
        Rng rng(7, "wkv7-split");
        const Shape x{B, T, H, N};
        const double stds[] = {0.5, 2.0, 0.5, 1.0, 0.2, 0.1};
        std::vector<Tensor> in;
        for (double sd : stds) in.push_back(Tensor::randn(x, rng, DType::f64, 0, sd).to(dt));
        const Tensor s0 = Tensor::randn(Shape{B, H, N, N}, rng, DType::f64, 0, 0.5).to(dt);
        auto run = [&](int64_t t0, int64_t t1, const Tensor& s) {
            std::vector<Var> p;
            for (const Tensor& t : in) p.push_back(Var(t.slice(1, t0, t1)));
            return ag::wkv7(p[0], p[1], p[2], p[3], p[4], p[5], Var(s));
        };
        const ag::Wkv7Result whole = run(0, T, s0);
        const ag::Wkv7Result first = run(0, T1, s0.clone());
        const ag::Wkv7Result second = run(T1, T, first.state.value());
        auto expect_close = [tol](const Tensor& got, const Tensor& want, const char* what) {
            const std::vector<double> g = got.to_vector(), w = want.to_vector();
            ASSERT_EQ(g.size(), w.size()) << what;
            for (size_t i = 0; i < g.size(); ++i)
                ASSERT_NEAR(g[i], w[i], tol * (1 + std::abs(w[i]))) << what << " " << i;
        };
        expect_close(first.y.value(), whole.y.value().slice(1, 0, T1), "y of the first piece");
        expect_close(second.y.value(), whole.y.value().slice(1, T1, T), "y of the second piece");
        expect_close(second.state.value(), whole.state.value(), "final state");
    }
}

// The fast backward needs its forward's saved states; given a forward of the reference (none
// saved) it recomputes them, and the gradients are those of an all-fast run.
TEST(Wkv7, FastBackwardAfterReferenceForward) {
    Rng rng(3, "wkv7-mixed");
    const Shape x{1, 19, 2, 12};
    const double stds[] = {0.5, 2.0, 0.5, 1.0, 0.2, 0.1};
    std::vector<Tensor> in;
    for (double sd : stds) in.push_back(Tensor::randn(x, rng, DType::f64, 0, sd));
    const Tensor gy = Tensor::randn(x, rng, DType::f64);
    auto grads = [&](bool ref_forward) {
        std::vector<Var> p;
        for (const Tensor& t : in) p.push_back(Var(t, true));
        ag::Wkv7Result res;
        if (ref_forward) {
            BackendScope scope(Backend::ref);
            res = ag::wkv7(p[0], p[1], p[2], p[3], p[4], p[5]);
        } else {
            res = ag::wkv7(p[0], p[1], p[2], p[3], p[4], p[5]);
        }
        ag::backward(res.y, gy);  // the fast backward either way
        std::vector<std::vector<double>> g;
        for (const Var& v : p) g.push_back(v.grad().to_vector());
        return g;
    };
    const auto mixed = grads(true), fast = grads(false);
    for (size_t i = 0; i < mixed.size(); ++i)
        for (size_t j = 0; j < mixed[i].size(); ++j)
            ASSERT_NEAR(mixed[i][j], fast[i][j], 1e-12 * (1 + std::abs(fast[i][j])))
                << "input " << i << " element " << j;
}

INSTANTIATE_TEST_SUITE_P(Backends, Wkv7KnownValues, ::testing::Values(Backend::ref, Backend::cpu),
                         [](const auto& info) { return std::string(backend_name(info.param)); });

}  // namespace
}  // namespace goose
