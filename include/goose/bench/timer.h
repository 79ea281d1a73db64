// Benchmark timing: warm-ups, repetitions, median and spread (house rule 11).
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace goose::bench {

struct Timing {
    double median_s = 0, min_s = 0, max_s = 0;
    int reps = 0;
};

// Runs fn `warmup` times untimed, then until both `min_reps` runs and `min_seconds` of timed
// runs are done (capped at max_reps).
Timing time_fn(const std::function<void()>& fn, int warmup = 2, int min_reps = 5,
               double min_seconds = 0.3, int max_reps = 1000);

// Machine description for benchmark headers: CPU model, cores, SIMD width, commit if known.
std::string machine_summary();

}  // namespace goose::bench
