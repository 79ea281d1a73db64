// The two-schedule curriculum (dims, points) of §3.1, with validation and replay for resume.
#include "goose/icl/curriculum.h"

#include <algorithm>

#include "goose/core/error.h"

namespace goose::icl {
namespace {

void check(const char* which, const CurriculumSchedule& s) {
    if (s.interval < 1)
        fail("Curriculum: {}.interval must be >= 1, got {}", which, s.interval);
    if (s.inc < 0) fail("Curriculum: {}.inc must be >= 0, got {}", which, s.inc);
    if (s.start < 1) fail("Curriculum: {}.start must be >= 1, got {}", which, s.start);
    if (s.end < s.start)
        fail("Curriculum: {}.end ({}) must be >= {}.start ({})", which, s.end, which, s.start);
}

int64_t value_at(const CurriculumSchedule& s, int64_t steps) {
    // Closed form of the update loop; valid since inc >= 0 (min then commutes with +inc).
    if (s.inc == 0) return s.start;
    const int64_t incs = steps / s.interval;
    const int64_t to_end = (s.end - s.start + s.inc - 1) / s.inc;  // increments to reach end
    return incs >= to_end ? s.end : s.start + incs * s.inc;  // no overflow for huge steps
}

}  // namespace

Curriculum::Curriculum(const CurriculumSchedule& dims, const CurriculumSchedule& points)
    : dims_(dims), points_(points), n_dims_(dims.start), n_points_(points.start) {
    check("dims", dims);
    check("points", points);
}

void Curriculum::update() {
    ++step_;
    if (step_ % dims_.interval == 0) n_dims_ += dims_.inc;
    n_dims_ = std::min(n_dims_, dims_.end);
    if (step_ % points_.interval == 0) n_points_ += points_.inc;
    n_points_ = std::min(n_points_, points_.end);
}

void Curriculum::jump_to(int64_t steps) {
    if (steps < 0) fail("Curriculum::jump_to: steps must be >= 0, got {}", steps);
    step_ = steps;
    n_dims_ = value_at(dims_, steps);
    n_points_ = value_at(points_, steps);
}

}  // namespace goose::icl
