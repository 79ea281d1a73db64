// The RWKV-7 inference engine: weights converted once to the chosen format (f32, bf16, int8
// per-channel symmetric), a tape-free parallel prefill and a fused RNN decode step over a batch
// of independent sequences, each with its own models::Rwkv7State (so state files stay one
// format). No allocation per decoded token.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "goose/models/rwkv7.h"

namespace goose::infer {

enum class WeightFormat { f32, bf16, int8 };
// "f32" | "bf16" | "int8"; goose::Error listing the valid names.
WeightFormat parse_weight_format(const std::string& name);
const char* weight_format_name(WeightFormat f);

struct EngineOptions {
    WeightFormat matrices = WeightFormat::f32;  // every block's Linear and LoRA weights
    WeightFormat head = WeightFormat::f32;      // the output head (V x C)
    WeightFormat emb = WeightFormat::f32;       // the embedding rows (f32 after lookup)
};

class Rwkv7Engine {
public:
    Rwkv7Engine(const models::Rwkv7& model, const EngineOptions& opt);
    ~Rwkv7Engine();
    // load_rwkv7 + construct.
    static std::unique_ptr<Rwkv7Engine> load(const std::string& path, const EngineOptions& opt);

    const models::Rwkv7Config& config() const;
    const EngineOptions& options() const;
    models::Rwkv7State new_state() const;  // zeros, batch 1, f32

    // Runs `tokens` (>= 1) through the sequence path from `state`, advances it, and writes the
    // last token's logits (V floats). Ids outside [0, V) are a goose::Error, as is a state
    // that is not f32 batch 1 of this model's shapes. Long prompts run in pieces of 512
    // tokens (same result). Not reentrant either.
    void prefill(std::span<const int32_t> tokens, models::Rwkv7State& state,
                 std::span<float> logits);
    // One RNN step for B independent sequences: tokens[b] advances *states[b]; logits is
    // (B, V) row-major. The states must be distinct (goose::Error when two share memory).
    // Each weight row is read once for all B sequences; buffers grow only when B does.
    // Not reentrant: one call at a time per engine.
    void decode(std::span<const int32_t> tokens, std::span<models::Rwkv7State* const> states,
                std::span<float> logits);

    // Bytes of weights one decode step reads (for B = 1): every matrix in its format (int8:
    // with its scales), every vector, one embedding row.
    int64_t weight_bytes() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace goose::infer
