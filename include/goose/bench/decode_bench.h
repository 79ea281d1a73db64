// `goose bench decode`: the inference engine's decode tokens/s (batch 1 and batched), prefill
// tokens/s at several prompt lengths, the effective bandwidth (weight bytes per token / time)
// beside the copy bandwidth measured in the same run and their ratio, and, per format, the
// logit difference and arg-max agreement with f32 on a fixed prompt.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace goose::bench {

struct DecodeBenchConfig {
    std::string model;  // checkpoint; empty: random weights of the shape below
    int64_t layers = 12, dim = 768, head = 64, vocab = 65536;  // "0.1B" L12 C768 V65536
    std::vector<std::string> formats = {"f32", "bf16", "int8"};  // block matrices (and LoRAs)
    std::string head_format, emb_format;  // empty: the same as the matrices
    std::vector<int64_t> prompt_lengths = {16, 128, 512};
    std::vector<int64_t> batches = {1, 4};
    int tokens = 32;           // timed decode steps per measurement (at least)
    int accuracy_tokens = 64;  // fixed prompt decoded by every format and by f32
    int threads = 0;           // 0: the current thread setting
};

void run_decode_bench(const DecodeBenchConfig& cfg);

}  // namespace goose::bench
