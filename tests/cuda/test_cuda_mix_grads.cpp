// token_mix's backward from a list of (mix, gradient) pairs on CUDA (fused::token_mix_backward:
// gradients of one mix summed inside the kernel as it reads them) against the same function on
// the CPU in f64 from the same values: f32 and bf16, the RWKV-7 time mix's six mixes with seven
// gradients (two on v) or six, prev or not, T = 1, row counts that fill no block evenly, the
// generic kernel (three mixes, one without gradients), the per-channel kernel (C = 100), more
// gradients than one launch takes, dx not wanted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "goose/core/cuda.h"
#include "goose/core/rng.h"
#include "models/fused.h"

namespace goose::models::fused {
namespace {

struct Case {
    int64_t b, t, c;
    int mixes;
    std::vector<size_t> mix_of;  // the mix of each gradient
    bool prev, need_x;
};

std::string name_of(const Case& k, DType dt) {
    std::string s = std::string(dtype_name(dt)) + " b" + std::to_string(k.b) + " t" +
                    std::to_string(k.t) + " c" + std::to_string(k.c) + " M" +
                    std::to_string(k.mixes) + " G" + std::to_string(k.mix_of.size());
    return s + (k.prev ? " prev" : "") + (k.need_x ? "" : " no dx");
}

// Worst |a - b| over the largest |b|: both on the CPU as f64.
double rel_error(const Tensor& a, const Tensor& b) {
    const auto x = a.to(Device::cpu()).to(DType::f64).to_vector(), y = b.to_vector();
    double worst = 0, scale = 1e-30;
    for (size_t j = 0; j < x.size(); ++j) {
        worst = std::max(worst, std::fabs(x[j] - y[j]));
        scale = std::max(scale, std::fabs(y[j]));
    }
    return worst / scale;
}

void check(const Case& k, DType dt, uint64_t seed) {
    const std::string what = name_of(k, dt);
    Rng rng(seed, "mix grads");
    // values rounded to dt first, so that both sides read the same numbers
    auto make = [&](const Shape& s, double std) {
        const Tensor t = Tensor::randn(s, rng, DType::f32, 0.0, std).to(dt);
        return std::pair{t.to(Device::cuda()), t.to(DType::f64)};
    };
    const Shape xs{k.b, k.t, k.c};
    const auto [x, x64] = make(xs, 1.0);
    Tensor prev, prev64;
    if (k.prev) std::tie(prev, prev64) = make(Shape{k.b, k.c}, 1.0);
    std::vector<Tensor> mu, mu64;
    for (int m = 0; m < k.mixes; ++m) {
        auto [d, h] = make(Shape{1, 1, k.c}, 0.5);
        mu.push_back(d);
        mu64.push_back(h);
    }
    std::vector<MixGrad> grads, grads64;
    for (size_t m : k.mix_of) {
        auto [d, h] = make(xs, 1.0);
        grads.push_back({m, d});
        grads64.push_back({m, h});
    }
    const TokenMixGrads got = token_mix_backward(x, prev, mu, grads, k.need_x);
    const TokenMixGrads want = token_mix_backward(x64, prev64, mu64, grads64, k.need_x);
    cuda::synchronize();
    // bf16: each output rounded to 8 bits of mantissa (and sums of several gradients)
    const double tol = dt == DType::bf16 ? 1e-2 : 2e-5;
    ASSERT_EQ(got.dx.defined(), k.need_x) << what;
    if (k.need_x) {
        EXPECT_EQ(got.dx.device(), x.device()) << what;
        EXPECT_EQ(got.dx.dtype(), dt) << what;
        EXPECT_LE(rel_error(got.dx, want.dx), tol) << what << " dx";
    }
    ASSERT_EQ(got.dprev.defined(), k.prev) << what;
    if (k.prev) {
        EXPECT_LE(rel_error(got.dprev, want.dprev), tol) << what << " dprev";
    }
    ASSERT_EQ(got.dmu.size(), mu.size()) << what;
    for (size_t m = 0; m < mu.size(); ++m) {
        const bool any = std::find(k.mix_of.begin(), k.mix_of.end(), m) != k.mix_of.end();
        if (!any) {  // no gradient: exactly zero
            const auto v = got.dmu[m].to(Device::cpu()).to(DType::f64).to_vector();
            EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](double e) { return e == 0.0; }))
                << what << " dmu " << m << " of a mix without gradients";
        } else {
            EXPECT_LE(rel_error(got.dmu[m], want.dmu[m]), tol) << what << " dmu " << m;
        }
    }
}

const std::vector<size_t> kTimeMix{0, 1, 2, 3, 4, 5, 3};  // layers > 0: v twice

TEST(CudaMixGrads, TimeMixSevenGradientsMatchReference) {
    GOOSE_REQUIRE_GPU();
    const std::vector<size_t> six{0, 1, 2, 3, 4, 5};
    uint64_t seed = 1;
    for (DType dt : {DType::f32, DType::bf16})
        for (bool prev : {false, true}) {
            check({2, 48, 768, 6, kTimeMix, prev, true}, dt, seed++);
            check({2, 48, 768, 6, six, prev, true}, dt, seed++);
            check({3, 37, 768, 6, kTimeMix, prev, true}, dt, seed++);  // 111 rows
            check({5, 1, 768, 6, kTimeMix, prev, true}, dt, seed++);   // T = 1
            check({1, 300, 256, 6, kTimeMix, prev, false}, dt, seed++);
        }
}

TEST(CudaMixGrads, AnyMixesAndGradientsMatchReference) {
    GOOSE_REQUIRE_GPU();
    // gradients given out of mix order; mix 1 has none
    const std::vector<size_t> scattered{2, 0, 2, 0, 2};
    std::vector<size_t> many;  // 12 gradients: over one launch's kMaxMixGrads (10)
    for (size_t m = 0; m < 6; ++m) many.insert(many.end(), {m, m});
    uint64_t seed = 100;
    for (DType dt : {DType::f32, DType::bf16})
        for (bool prev : {false, true}) {
            check({2, 21, 128, 3, scattered, prev, true}, dt, seed++);
            check({3, 7, 100, 3, scattered, prev, true}, dt, seed++);  // per-channel kernel
            check({2, 9, 128, 6, many, prev, true}, dt, seed++);
            check({2, 9, 128, 1, {0, 0}, prev, true}, dt, seed++);
            check({2, 9, 128, 1, {0}, prev, false}, dt, seed++);
            check({4, 1, 100, 2, {1, 1}, prev, true}, dt, seed++);
        }
}

}  // namespace
}  // namespace goose::models::fused
