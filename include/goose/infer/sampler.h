// Sampling the next token from logits: composable steps (penalties, temperature, top-k, top-p,
// top-a, top-p-x) then a draw from the seeded generator. Same seed, same logits, same tokens.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "goose/core/rng.h"

namespace goose::infer {

struct SamplerConfig {
    double temperature = 1.0;  // 0: greedy (argmax)
    int64_t top_k = 0;         // 0: off
    double top_p = 1.0;        // 1: off
    double top_a = 0.0;        // 0: off; keeps p >= top_a * p_max^2
    double top_p_x = 0.0;      // 0: off; the top-p set plus every token with p > top_p_x
    double presence_penalty = 0.0;
    double frequency_penalty = 0.0;
    double penalty_decay = 0.996;  // per generated token, applied to the penalty counts
    uint64_t seed = 0;

    // goose::Error naming the field for NaN, negative or out-of-range values.
    void validate() const;
};

class Sampler {
public:
    Sampler(const SamplerConfig& cfg, int64_t vocab);
    // Picks a token from `logits` (V floats; not modified) after every enabled step.
    int32_t sample(std::span<const float> logits);
    // Records a token the model saw or produced (for the presence/frequency penalties).
    void accept(int32_t token);

private:
    SamplerConfig cfg_;
    Rng rng_;
    std::vector<float> counts_, work_;
};

}  // namespace goose::infer
