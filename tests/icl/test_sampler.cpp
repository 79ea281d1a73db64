// The x sampler: shapes, moments, truncation, scale/bias, seeded mode, transformations.
#include <gtest/gtest.h>

#include <cmath>

#include "goose/icl/sampler.h"
#include "icl_test_util.h"

namespace goose::icl {
namespace {

using testing::expect_error;
using testing::mean_square;

TEST(IclSampler, ShapeAndMoments) {
    Rng rng(1, "xs");
    const Tensor x = sample_xs(256, 16, 7, rng);
    EXPECT_EQ(x.shape(), (Shape{256, 16, 7}));
    EXPECT_EQ(x.dtype(), DType::f32);
    const auto v = x.to_vector();
    double mean = 0;
    for (double e : v) mean += e;
    mean /= static_cast<double>(v.size());
    EXPECT_NEAR(mean, 0.0, 0.02);
    EXPECT_NEAR(mean_square(x), 1.0, 0.03);
}

TEST(IclSampler, TruncationZeroesTheTail) {
    Rng rng(2, "xs");
    const Tensor x = sample_xs(8, 5, 10, rng, 3);
    for (int64_t b = 0; b < 8; ++b)
        for (int64_t i = 0; i < 5; ++i) {
            for (int64_t j = 0; j < 3; ++j) EXPECT_NE(x.get({b, i, j}), 0.0);
            for (int64_t j = 3; j < 10; ++j) EXPECT_EQ(x.get({b, i, j}), 0.0);
        }
}

TEST(IclSampler, ScaleAndBias) {
    const int64_t d = 3;
    const Tensor scale = Tensor::from(Shape{d, d}, {2, 0, 0, 1, 1, 0, 0, 0, -1});
    const Tensor bias = Tensor::from(Shape{d}, {10, 20, 30});
    Rng r1(3, "xs"), r2(3, "xs");
    const Tensor z = sample_xs(4, 6, d, r1);
    const Tensor x = sample_xs(4, 6, d, r2, -1, scale, bias);
    for (int64_t b = 0; b < 4; ++b)
        for (int64_t i = 0; i < 6; ++i) {
            const double z0 = z.get({b, i, 0}), z1 = z.get({b, i, 1}), z2 = z.get({b, i, 2});
            EXPECT_NEAR(x.get({b, i, 0}), 2 * z0 + z1 + 10, 1e-5);
            EXPECT_NEAR(x.get({b, i, 1}), z1 + 20, 1e-5);
            EXPECT_NEAR(x.get({b, i, 2}), -z2 + 30, 1e-5);
        }
}

TEST(IclSampler, SeededIsReproducibleAndPromptIndependent) {
    const Tensor a = sample_xs_seeded({11, 22, 33}, 5, 4);
    const Tensor b = sample_xs_seeded({99, 22}, 5, 4);
    const Tensor c = sample_xs_seeded({11, 22, 33}, 5, 4);
    EXPECT_EQ(a.to_vector(), c.to_vector());
    // prompt with seed 22 is the same whatever its position and neighbours
    EXPECT_EQ(a.select(0, 1).to_vector(), b.select(0, 1).to_vector());
    EXPECT_NE(a.select(0, 0).to_vector(), b.select(0, 0).to_vector());
    // and equals a direct draw from Rng(22, "xs")
    Rng r(22, "xs");
    const Tensor one = sample_xs(1, 5, 4, r);
    EXPECT_EQ(one.select(0, 0).to_vector(), a.select(0, 1).to_vector());
    const Tensor t = sample_xs_seeded({11, 22, 33}, 5, 4, 2);
    EXPECT_EQ(t.get({2, 4, 3}), 0.0);
    EXPECT_EQ(t.get({2, 4, 1}), a.get({2, 4, 1}));
}

TEST(IclSampler, RandomOrthogonalAndTransformation) {
    Rng rng(4, "t");
    const int64_t d = 6;
    const Tensor u = random_orthogonal(d, rng);
    for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < d; ++j) {
            double dot = 0;
            for (int64_t k = 0; k < d; ++k) dot += u.get({i, k}) * u.get({j, k});
            EXPECT_NEAR(dot, i == j ? 1.0 : 0.0, 1e-12);
        }
    const std::vector<double> eig = {3, 2, 1, 1, 0.5, 0};
    const Tensor t = sample_transformation(d, eig, false, rng);
    // symmetric, trace = Σ eig, Frobenius² = Σ eig²
    double tr = 0, fro = 0;
    for (int64_t i = 0; i < d; ++i) {
        tr += t.get({i, i});
        for (int64_t j = 0; j < d; ++j) {
            EXPECT_NEAR(t.get({i, j}), t.get({j, i}), 1e-12);
            fro += t.get({i, j}) * t.get({i, j});
        }
    }
    EXPECT_NEAR(tr, 7.5, 1e-10);
    EXPECT_NEAR(fro, 15.25, 1e-10);
    // normalised: Frobenius² = d, so E‖z·t‖² = d
    const Tensor tn = sample_transformation(d, eig, true, rng);
    double fn = 0;
    for (double e : tn.to_vector()) fn += e * e;
    EXPECT_NEAR(fn, static_cast<double>(d), 1e-10);
    Rng xr(5, "xs");
    const Tensor x = sample_xs(4096, 4, d, xr, -1, tn);
    EXPECT_NEAR(mean_square(x) * d, static_cast<double>(d), 0.05 * d);
}

TEST(IclSampler, Errors) {
    Rng rng(6, "xs");
    expect_error([&] { sample_xs(0, 3, 4, rng); }, {"sample_xs", "batch"});
    expect_error([&] { sample_xs(2, 0, 4, rng); }, {"sample_xs", "n_points"});
    expect_error([&] { sample_xs(2, 3, 0, rng); }, {"sample_xs", "n_dims"});
    expect_error([&] { sample_xs(2, 3, 4, rng, 5); }, {"sample_xs", "n_dims_truncated", "5"});
    expect_error([&] { sample_xs(2, 3, 4, rng, -1, Tensor::zeros(Shape{3, 4})); },
                 {"sample_xs", "scale", "[3, 4]"});
    expect_error([&] { sample_xs(2, 3, 4, rng, -1, {}, Tensor::zeros(Shape{3})); },
                 {"sample_xs", "bias", "[3]"});
    expect_error([&] { sample_xs_seeded({}, 3, 4); }, {"sample_xs_seeded", "seeds"});
    expect_error([&] { sample_transformation(3, {1, 2}, true, rng); },
                 {"sample_transformation", "eigenvalues", "3"});
    expect_error([&] { sample_transformation(2, {0, 0}, true, rng); },
                 {"sample_transformation", "normalize"});
}

}  // namespace
}  // namespace goose::icl
