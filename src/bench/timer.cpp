// Benchmark timing and machine summary.
#include "goose/bench/timer.h"

#include <algorithm>
#include <chrono>
#include <fstream>

#include <fmt/format.h>

#include "goose/core/threads.h"
#include "ops/cpu/simd.h"

namespace goose::bench {

Timing time_fn(const std::function<void()>& fn, int warmup, int min_reps, double min_seconds,
               int max_reps) {
    using clock = std::chrono::steady_clock;
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> t;
    double total = 0;
    while ((static_cast<int>(t.size()) < min_reps || total < min_seconds) &&
           static_cast<int>(t.size()) < max_reps) {
        const auto a = clock::now();
        fn();
        const double s = std::chrono::duration<double>(clock::now() - a).count();
        t.push_back(s);
        total += s;
    }
    std::sort(t.begin(), t.end());
    return {t[t.size() / 2], t.front(), t.back(), static_cast<int>(t.size())};
}

std::string machine_summary() {
    std::string model = "unknown CPU";
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    }
    return fmt::format("{}, {} hardware threads, {} threads used, SIMD {} x f32", model,
                       num_cores(), num_threads(), simd::kLanes);
}

}  // namespace goose::bench
