// Logits of a token sequence, in parallel (sequence) mode or token by token (RNN mode).
#pragma once
#include <string>
#include <vector>

#include "goose/models/rwkv7.h"

namespace goose::infer {

// Parses "1 2 3" (spaces or commas); goose::Error for anything that is not an id in [0, V).
std::vector<int64_t> parse_token_ids(const std::string& text, int64_t vocab);
// (T, V) f32 logits of `tokens` from a zero state.
Tensor sequence_logits(const models::Rwkv7& model, const std::vector<int64_t>& tokens, bool rnn);

struct LogitsConfig {
    std::string model, tokens, out;
    bool rnn = false;
};
// goose logits: load, compute, write a .npy [T, V] float32 (atomically).
void run_logits(const LogitsConfig& cfg);
// goose info: architecture, parameter count, file dtype(s).
void run_info(const std::string& model_path);

}  // namespace goose::infer
