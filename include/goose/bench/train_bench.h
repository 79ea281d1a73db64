// Training benchmark beside its peer, ratio printed last:
//   goose bench train --device cpu    RWKV-7 CPU training tokens/s vs the PyTorch twin, same run
//   goose bench train --device cuda   RWKV-7 GPU training tokens/s, MFU, peak memory, beside the
//                                     official RWKV-LM x070 trainer's H100 figures
// (decode speed: goose bench decode, include/goose/bench/decode_bench.h)
#pragma once
#include <string>

namespace goose::models {
class Rwkv7;
}

namespace goose::bench {

struct TrainBenchConfig {
    std::string model = "rwkv7";
    int64_t layers = 4, dim = 128, head = 32, vocab = 256, ctx = 256, batch = 8;
    int steps = 3;
    std::string device = "cpu";  // cpu | cuda
    std::string dtype;           // f32 | bf16; empty: f32 on the CPU, bf16 on CUDA
    std::string peer_script;     // the CPU twin's timing script; empty: the one in the source tree
    bool no_peer = false;
    bool checkpoint = false;     // CUDA: activation checkpointing of every block
    bool no_lean = false;        // CUDA: keep the time mix's token mixes (faster, more memory)
    bool no_graph = false;       // CUDA: time eager steps, not replays of a CUDA graph of one
    bool compare_eager = false;  // CUDA: time eager steps too, beside the graph, and AdamW alone
    bool gemm_tune = false;      // CUDA: autotune the cuBLASLt GEMMs (cuda::set_gemm_autotune)
    double grad_clip = 1.0;      // CUDA: gradients clipped to this global L2 norm (0: off)
};

void run_train_bench(const TrainBenchConfig& cfg);

// Model FLOPs per trained token (forward + backward): 6 x the parameters that multiply (every
// matrix but the embedding, whose forward is a lookup) plus the WKV-7 recurrence, about
// 3 x 8 H N^2 (forward: decay, S a, (S a) b^T, v k^T, S r; backward twice that).
double rwkv7_train_flops_per_token(const models::Rwkv7& m);

}  // namespace goose::bench
