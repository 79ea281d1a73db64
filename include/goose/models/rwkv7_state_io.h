// RWKV-7 state files: the whole recurrent state (every layer's att shift, WKV state and ffn
// shift) in a versioned little-endian binary format, written atomically.
//
//   offset 0   char[16]  "GOOSE-RWKV7-STATE" truncated to 16 bytes: "GOOSE-RWKV7-STAT"
//          16  u32       format version (1)
//          20  u32       dtype code (0 f32, 1 f64)
//          24  u64       fingerprint of the model config (V, L, C, N, LoRA ranks, F)
//          32  i64 x 5   L, C, H, N, B
//          72  payload   for each layer: att_shift (B, C), wkv (B, H, N, N), ffn_shift (B, C)
//
// Loading checks every header field against the model and names the first mismatch.
#pragma once
#include <string>

#include "goose/models/rwkv7.h"

namespace goose::models {

uint64_t rwkv7_fingerprint(const Rwkv7Config& cfg);
void save_rwkv7_state(const std::string& path, const Rwkv7State& state, const Rwkv7Config& cfg);
Rwkv7State load_rwkv7_state(const std::string& path, const Rwkv7Config& cfg);

}  // namespace goose::models
