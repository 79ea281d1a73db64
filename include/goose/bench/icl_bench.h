// `goose bench icl-train`: training steps/s of the ICL lab's default model (and the other
// backbones at its size) beside a PyTorch twin of the same model and data on the same machine.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace goose::bench {

struct IclTrainBenchConfig {
    std::string family = "all";  // rwkv7, transformer, lstm or all
    int steps = 20;              // timed steps per side (after the warm-up)
    int warmup = 3;              // untimed steps per side
    int threads = 0;             // Goose and torch threads; 0: Goose's current count
    std::string peer_script;     // the twin's script; empty: bench/icl_twin_train.py
    bool no_peer = false;        // time Goose only
};

// One row of the table.
struct IclTrainBenchRow {
    std::string family;
    int64_t params = 0;
    double goose_step_s = 0;
    int64_t twin_params = -1;  // -1: no twin figure
    double twin_step_s = -1;
    std::string twin_note;     // why the twin has no figure
};

// Prints the table (family, parameters, Goose s/step, steps/s, twin s/step, ratio) and returns
// its rows. goose::Error for an unknown family, steps < 1 or a twin whose parameter count
// differs from Goose's (the models would not be the same).
std::vector<IclTrainBenchRow> run_icl_train_bench(const IclTrainBenchConfig& cfg);

}  // namespace goose::bench
