// The curriculum of the ICL lab (spec §3.1): two step schedules, the active dimension and the
// prompt length, advanced once per training step.
#pragma once
#include <cstdint>

namespace goose::icl {

// value(step) = min(start + inc·floor(step / interval), end): the first increase takes effect
// after `interval` updates.
struct CurriculumSchedule {
    int64_t start = 1;
    int64_t end = 1;
    int64_t inc = 0;
    int64_t interval = 1;
};

class Curriculum {
public:
    // goose::Error (naming the schedule and field) when interval < 1, inc < 0, start < 1 or
    // end < start.
    Curriculum(const CurriculumSchedule& dims, const CurriculumSchedule& points);

    // One training step done: step += 1; each value += inc when step % interval == 0, then
    // clamped to end.
    void update();
    int64_t n_dims() const { return n_dims_; }
    int64_t n_points() const { return n_points_; }
    int64_t step() const { return step_; }
    // The state after `steps` updates from the start (resuming a run); steps >= 0.
    void jump_to(int64_t steps);

    const CurriculumSchedule& dims_schedule() const { return dims_; }
    const CurriculumSchedule& points_schedule() const { return points_; }

private:
    CurriculumSchedule dims_, points_;
    int64_t n_dims_, n_points_;
    int64_t step_ = 0;
};

}  // namespace goose::icl
