// The linear-regression evaluation shifts of §5.2.
#include <gtest/gtest.h>

#include <cmath>

#include "goose/icl/eval_data.h"
#include "goose/icl/sampler.h"
#include "icl_test_util.h"

namespace goose::icl {
namespace {

using testing::expect_error;
using testing::mean_square;

TEST(IclEvalData, RandomQuadrantsShareOneSignPattern) {
    Rng rng(1, "eval");
    const auto [p, q] = random_quadrants(16, 12, 5, rng);
    ASSERT_EQ(p.shape(), (Shape{16, 12, 5}));
    ASSERT_EQ(q.shape(), (Shape{16, 12, 5}));
    int flips = 0;
    for (int64_t b = 0; b < 16; ++b)
        for (int64_t j = 0; j < 5; ++j) {
            const bool pos = p.get({b, 0, j}) > 0;
            for (int64_t i = 0; i < 12; ++i) {
                EXPECT_EQ(p.get({b, i, j}) > 0, pos);
                EXPECT_EQ(std::fabs(p.get({b, i, j})), std::fabs(q.get({b, i, j})));
                flips += (p.get({b, i, j}) != q.get({b, i, j}));
            }
        }
    EXPECT_GT(flips, 0);  // Q keeps its own random orthants
}

TEST(IclEvalData, OrthogonalQueriesKeepNorms) {
    Rng rng(2, "eval");
    const int64_t n = 9, d = 6;
    const auto [p, q] = orthogonal_train_test(8, n, d, rng);
    for (int64_t b = 0; b < 8; ++b)
        for (int64_t i = 0; i < n; ++i) {
            double nq = 0, np = 0;
            for (int64_t j = 0; j < d; ++j) {
                nq += q.get({b, i, j}) * q.get({b, i, j});
                np += p.get({b, i, j}) * p.get({b, i, j});
            }
            if (i >= d) {
                EXPECT_EQ(nq, 0.0);
                continue;
            }
            EXPECT_NEAR(std::sqrt(nq), std::sqrt(np), 1e-4 * std::sqrt(np));
            for (int64_t k = 0; k < i; ++k) {
                double dot = 0;
                for (int64_t j = 0; j < d; ++j) dot += q.get({b, i, j}) * p.get({b, k, j});
                EXPECT_NEAR(dot, 0.0, 1e-4 * std::sqrt(np)) << "b " << b << " i " << i;
            }
        }
    // position 0 is unchanged
    for (int64_t j = 0; j < d; ++j) EXPECT_EQ(q.get({3, 0, j}), p.get({3, 0, j}));
}

TEST(IclEvalData, OverlappingQueriesCopyEarlierPoints) {
    Rng rng(3, "eval");
    const auto [p, q] = overlapping_train_test(4, 10, 3, rng);
    for (int64_t b = 0; b < 4; ++b) {
        EXPECT_EQ(q.select(0, b).select(0, 0).to_vector(), p.select(0, b).select(0, 0).to_vector());
        for (int64_t i = 1; i < 10; ++i) {
            const auto qi = q.select(0, b).select(0, i).to_vector();
            bool found = false;
            for (int64_t k = 0; k < i; ++k)
                found = found || qi == p.select(0, b).select(0, k).to_vector();
            EXPECT_TRUE(found) << "b " << b << " i " << i;
        }
    }
}

TEST(IclEvalData, Transformations) {
    Rng rng(4, "eval"), xr(5, "xs");
    const int64_t d = 10;
    const Tensor half = half_subspace_transformation(d, rng);
    // rank d/2, eigenvalues sqrt(2): t² = sqrt(2)·t
    for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < d; ++j) {
            double t2 = 0;
            for (int64_t k = 0; k < d; ++k) t2 += half.get({i, k}) * half.get({k, j});
            EXPECT_NEAR(t2, std::sqrt(2.0) * half.get({i, j}), 1e-12);
        }
    const Tensor x = sample_xs(4096, 4, d, xr, -1, half);
    EXPECT_NEAR(mean_square(x) * d, 10.0, 0.5);
    const Tensor sk = skewed_transformation(d, rng);
    const Tensor xs = sample_xs(4096, 4, d, xr, -1, sk);
    EXPECT_NEAR(mean_square(xs) * d, 10.0, 0.5);
    const Tensor s3 = scale_x_transformation(d, 3.0);
    Rng a(6, "xs"), b(6, "xs");
    const Tensor x0 = sample_xs(2, 3, d, a), x3 = sample_xs(2, 3, d, b, -1, s3);
    const auto v0 = x0.to_vector(), v3 = x3.to_vector();
    for (size_t i = 0; i < v0.size(); ++i) EXPECT_NEAR(v3[i], 3 * v0[i], 1e-5);
    expect_error([&] { half_subspace_transformation(1, rng); },
                 {"half_subspace_transformation", "n_dims"});
}

}  // namespace
}  // namespace goose::icl
