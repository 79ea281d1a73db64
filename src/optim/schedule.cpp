// Learning-rate schedules.
#include "goose/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "goose/core/error.h"

namespace goose::optim {

const char* schedule_kind_name(LrSchedule::Kind k) {
    switch (k) {
        case LrSchedule::Kind::constant:
            return "constant";
        case LrSchedule::Kind::linear_warmup:
            return "linear_warmup";
        case LrSchedule::Kind::cosine:
            return "cosine";
        case LrSchedule::Kind::exponential:
            return "exponential";
    }
    return "?";
}

void LrSchedule::validate() const {
    const char* k = schedule_kind_name(kind);
    if (!(base_lr >= 0) || !std::isfinite(base_lr))
        fail("lr schedule ({}): base_lr must be >= 0, got {}", k, base_lr);
    if (warmup_steps < 0)
        fail("lr schedule ({}): warmup_steps must be >= 0, got {}", k, warmup_steps);
    if (total_steps < 0) fail("lr schedule ({}): total_steps must be >= 0, got {}", k, total_steps);
    if (kind == Kind::cosine) {
        if (total_steps < warmup_steps)
            fail("lr schedule (cosine): total_steps {} is less than warmup_steps {}", total_steps,
                 warmup_steps);
        if (!(final_lr >= 0) || !std::isfinite(final_lr))
            fail("lr schedule (cosine): final_lr must be >= 0, got {}", final_lr);
    }
    if (kind == Kind::exponential && (!(gamma > 0) || !std::isfinite(gamma)))
        fail("lr schedule (exponential): gamma must be > 0, got {}", gamma);
}

double LrSchedule::lr(int64_t step) const {
    validate();
    if (step < 0)
        fail("lr schedule ({}): step must be >= 0, got {}", schedule_kind_name(kind), step);
    if (kind == Kind::constant) return base_lr;
    if (step < warmup_steps)
        return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    switch (kind) {
        case Kind::constant:
        case Kind::linear_warmup:
            return base_lr;
        case Kind::cosine: {
            if (step >= total_steps) return final_lr;
            const double progress = static_cast<double>(step - warmup_steps) /
                                    static_cast<double>(total_steps - warmup_steps);
            return final_lr +
                   (base_lr - final_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
        }
        case Kind::exponential:
            return base_lr * std::pow(gamma, static_cast<double>(step - warmup_steps));
    }
    return base_lr;
}

}  // namespace goose::optim
