// `goose bench ops`: GFLOP/s of the matmul shapes the models use, beside the machine's FMA
// peak (one core and all threads) and copy bandwidth measured in the same run.
#pragma once
#include <string>

namespace goose::bench {

struct OpsBenchConfig {
    int threads = 0;         // 0: the current thread setting
    bool quick = false;      // fewer repetitions (for tests)
    std::string json_out;    // also write the results as JSON here (atomically), if set
};

void run_ops_bench(const OpsBenchConfig& cfg);

}  // namespace goose::bench
