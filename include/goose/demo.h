// The start-up demonstration (`goose demo`, `make run` until the ICL lab lands): trains a small
// GPT-2-style Transformer on a synthetic language and prints its falling loss.
#pragma once
#include <cstdint>

namespace goose {

struct DemoConfig {
    int64_t steps = 300;
    int64_t batch = 16;
    int64_t seq_len = 32;
    int64_t vocab = 16;
    int64_t n_layer = 2;
    int64_t n_embd = 64;
    int64_t n_head = 4;
    double lr = 3e-3;
    double noise = 0.1;  // probability that a token is uniform instead of following the rule
    uint64_t seed = 1;
    int print_every = 25;
};

struct DemoResult {
    double first_loss = 0, last_loss = 0;  // mean over the first / last 10% of steps
    double floor = 0;                      // entropy of the data: the best possible loss
    double steps_per_s = 0;
};

DemoResult run_demo(const DemoConfig& cfg);

}  // namespace goose
