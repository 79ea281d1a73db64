// RWKV-7 training benchmark beside its peer, ratio printed last:
//   goose bench rwkv7-train   CPU training tokens/s vs the PyTorch twin on the same machine
// (decode speed: goose bench decode, include/goose/bench/decode_bench.h)
#pragma once
#include <string>

namespace goose::bench {

struct Rwkv7TrainBenchConfig {
    int64_t layers = 4, dim = 128, head = 32, vocab = 256, ctx = 256, batch = 8;
    int steps = 3;
    std::string peer_script;  // the twin's timing script; empty: the one in the source tree
    bool no_peer = false;
};

void run_rwkv7_train_bench(const Rwkv7TrainBenchConfig& cfg);

}  // namespace goose::bench
