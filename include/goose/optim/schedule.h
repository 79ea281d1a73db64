// Learning-rate schedules: constant, linear warmup, warmup + cosine decay, warmup + exponential.
#pragma once
#include <cstdint>

namespace goose::optim {

struct LrSchedule {
    enum class Kind { constant, linear_warmup, cosine, exponential } kind = Kind::constant;
    double base_lr = 0;
    int64_t warmup_steps = 0;  // linear_warmup, cosine, exponential: base * (step + 1) / warmup
    int64_t total_steps = 0;   // cosine: reaches final_lr at total_steps (>= warmup_steps)
    double final_lr = 0;       // cosine
    double gamma = 1.0;        // exponential: base * gamma^(step - warmup) after warmup

    // The learning rate of step (0-based). Throws goose::Error on invalid settings or step < 0.
    double lr(int64_t step) const;
    void validate() const;  // throws goose::Error naming the bad field
};

const char* schedule_kind_name(LrSchedule::Kind k);

}  // namespace goose::optim
