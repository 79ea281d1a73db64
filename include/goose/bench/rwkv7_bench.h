// RWKV-7 job benchmarks, each beside its peer or the hardware limit, ratio printed last:
//   goose bench rwkv7-train   CPU training tokens/s vs the PyTorch twin on the same machine
//   goose bench rwkv7-decode  RNN decode tokens/s for a 0.1B-shaped random model, fp32 and
//                             bf16 weights, effective bandwidth vs the measured copy bandwidth
#pragma once
#include <string>

namespace goose::bench {

struct Rwkv7TrainBenchConfig {
    int64_t layers = 4, dim = 128, head = 32, vocab = 256, ctx = 256, batch = 8;
    int steps = 3;
    std::string peer_script;  // the twin's timing script; empty: the one in the source tree
    bool no_peer = false;
};

struct Rwkv7DecodeBenchConfig {
    int64_t layers = 12, dim = 768, head = 64, vocab = 65536;
    int tokens = 16;
    bool bf16 = true;  // also time bf16 weights
};

void run_rwkv7_train_bench(const Rwkv7TrainBenchConfig& cfg);
void run_rwkv7_decode_bench(const Rwkv7DecodeBenchConfig& cfg);

}  // namespace goose::bench
