// goose bench serve: total completion tokens/s of `goose serve` (in process, on 127.0.0.1) with
// N concurrent streaming clients against one client, on a random model of the 0.1B shape; the
// ratio shows what continuous batching buys (target >= 3x at 8 clients).
#pragma once
#include <cstdint>
#include <string>

namespace goose::bench {

struct ServeBenchConfig {
    int64_t layers = 12, dim = 768, head = 64, vocab = 65536;
    int clients = 8;           // concurrent streams of the batched run (= the server's slots)
    int tokens = 64;           // max_tokens of every request (end of document is masked)
    int prompt = 16;           // prompt bytes (byte tokenizer: tokens)
    int reps = 5;              // runs of each setting (alternating); the median is reported
    std::string weights = "f32";  // f32 | bf16 | int8
};

void run_serve_bench(const ServeBenchConfig& cfg);

}  // namespace goose::bench
