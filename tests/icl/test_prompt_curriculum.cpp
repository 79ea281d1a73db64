// Prompt interleaving/read-back and the curriculum schedules.
#include <gtest/gtest.h>

#include "goose/icl/curriculum.h"
#include "goose/icl/prompt.h"
#include "goose/icl/sampler.h"
#include "icl_test_util.h"

namespace goose::icl {
namespace {

using testing::expect_error;

TEST(IclPrompt, InterleaveLayout) {
    Rng rng(1, "xs");
    const Tensor xs = sample_xs(2, 3, 4, rng);
    const Tensor ys = Tensor::from(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
    const Tensor z = interleave(xs, ys);
    ASSERT_EQ(z.shape(), (Shape{2, 6, 4}));
    for (int64_t b = 0; b < 2; ++b)
        for (int64_t i = 0; i < 3; ++i) {
            for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(z.get({b, 2 * i, j}), xs.get({b, i, j}));
            EXPECT_EQ(z.get({b, 2 * i + 1, 0}), ys.get({b, i}));
            for (int64_t j = 1; j < 4; ++j) EXPECT_EQ(z.get({b, 2 * i + 1, j}), 0.0);
        }
}

TEST(IclPrompt, PredictionsRoundTrip) {
    // Coordinate 0 of the tokens read back at the even positions gives x's coordinate 0; at the
    // odd positions (shifted by one) the ys.
    Rng rng(2, "xs");
    const Tensor xs = sample_xs(3, 5, 2, rng);
    const Tensor ys = Tensor::from(Shape{3, 5}, std::vector<double>(15, 0.25));
    const Tensor z = interleave(xs, ys).select(2, 0);  // (B, 2n)
    EXPECT_EQ(predictions_at_x(z).to_vector(), xs.select(2, 0).contiguous().to_vector());
    // a strided input: (2n, B) transposed
    EXPECT_EQ(predictions_at_x(z.contiguous().transpose(0, 1).contiguous().transpose(0, 1))
                  .to_vector(),
              xs.select(2, 0).contiguous().to_vector());
    const Tensor out = Tensor::from(Shape{1, 4, 1}, {7, 8, 9, 10});
    EXPECT_EQ(predictions_at_x(out).to_vector(), (std::vector<double>{7, 9}));
    const Tensor odd_y = interleave(xs, ys).select(2, 0).slice(1, 1, 10, 2);
    for (double v : odd_y.to_vector()) EXPECT_EQ(v, 0.25);
}

TEST(IclPrompt, Errors) {
    expect_error([] { interleave(Tensor::zeros(Shape{2, 3, 4}), Tensor::zeros(Shape{2, 4})); },
                 {"interleave", "[2, 3, 4]", "[2, 4]"});
    expect_error([] { predictions_at_x(Tensor::zeros(Shape{2, 5})); },
                 {"predictions_at_x", "[2, 5]"});
}

TEST(IclCurriculum, ScheduleValues) {
    // the original's linear-regression curriculum: dims 5 -> 20 by 1, points 11 -> 41 by 2,
    // every 2000 steps
    Curriculum c({5, 20, 1, 2000}, {11, 41, 2, 2000});
    EXPECT_EQ(c.step(), 0);
    EXPECT_EQ(c.n_dims(), 5);
    EXPECT_EQ(c.n_points(), 11);
    for (int i = 0; i < 1999; ++i) c.update();
    EXPECT_EQ(c.step(), 1999);
    EXPECT_EQ(c.n_dims(), 5);
    EXPECT_EQ(c.n_points(), 11);
    c.update();
    EXPECT_EQ(c.step(), 2000);
    EXPECT_EQ(c.n_dims(), 6);
    EXPECT_EQ(c.n_points(), 13);
    for (int i = 0; i < 100000; ++i) c.update();
    EXPECT_EQ(c.n_dims(), 20);
    EXPECT_EQ(c.n_points(), 41);
}

TEST(IclCurriculum, JumpToMatchesReplay) {
    const CurriculumSchedule dims{3, 10, 3, 7}, points{2, 9, 0, 5};  // overshooting inc, fixed
    Curriculum loop(dims, points);
    for (int64_t s = 0; s <= 100; ++s) {
        Curriculum j(dims, points);
        j.jump_to(s);
        EXPECT_EQ(j.step(), loop.step());
        EXPECT_EQ(j.n_dims(), loop.n_dims()) << "step " << s;
        EXPECT_EQ(j.n_points(), loop.n_points()) << "step " << s;
        loop.update();
    }
    Curriculum big(dims, points);
    big.jump_to(int64_t{1} << 60);
    EXPECT_EQ(big.n_dims(), 10);
}

TEST(IclCurriculum, Errors) {
    expect_error([] { Curriculum({5, 20, 1, 0}, {11, 41, 2, 2000}); }, {"dims.interval", "0"});
    expect_error([] { Curriculum({5, 20, 1, 100}, {11, 41, 2, -3}); }, {"points.interval"});
    expect_error([] { Curriculum({5, 4, 1, 100}, {11, 41, 2, 100}); }, {"dims.end", "dims.start"});
    expect_error([] { Curriculum({5, 20, 1, 100}, {0, 41, 2, 100}); }, {"points.start", "0"});
    expect_error([] { Curriculum({5, 20, -1, 100}, {1, 41, 2, 100}); }, {"dims.inc"});
    Curriculum c({5, 20, 1, 100}, {1, 41, 2, 100});
    expect_error([&] { c.jump_to(-1); }, {"jump_to", "-1"});
}

}  // namespace
}  // namespace goose::icl
