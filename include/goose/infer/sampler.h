// Sampling the next token from logits: composable steps (penalties, temperature, top-k, top-p,
// top-a, top-p-x) then a draw from the seeded generator. Same seed, same logits, same tokens.
//
// The order is the official RWKV one (spec rwkv7 §6, `sample_logits`): penalties on the logits,
// p = softmax(logits); every filter (top-k, top-p / top-p-x, top-a) decides on that same p and a
// token survives only if every enabled filter keeps it (so the filters commute); the draw is from
// p^(1/T) renormalised over the survivors (= softmax(logits / T) over them). T = 0 is greedy.
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
    double presence_penalty = 0.0;   // subtracted from the logit of every token seen (count > 0)
    double frequency_penalty = 0.0;  // times the token's (decayed) count, subtracted
    double penalty_decay = 0.996;  // per generated token, applied to the penalty counts
    uint64_t seed = 0;

    // goose::Error naming the field for NaN, negative or out-of-range values: temperature,
    // top_a >= 0 and finite; top_k >= 0; top_p in (0, 1]; top_p_x, penalty_decay in [0, 1];
    // the penalties finite (negative ones, which favour repeats, are allowed as in OpenAI's API).
    void validate() const;
};

// The steps, usable alone. `probs` is always the softmax of the (penalised) logits; a filter
// clears keep[i] for the tokens it removes and never clears the most probable token. Every step
// is O(V) (the top-k and top-p cutoffs come from a radix selection on the probabilities' float
// bits, no sort), so sampling a 65536-token vocabulary costs a fraction of a decode step.
namespace sampling {

// logits[i] -= presence * (counts[i] > 0) + frequency * counts[i]
void apply_penalties(std::span<float> logits, std::span<const float> counts, double presence,
                     double frequency);
// Softmax in f32 (vectorised exp, about 1 ulp); -inf logits get exactly 0.
void softmax(std::span<const float> logits, std::span<float> probs);
// Keeps the k most probable tokens (ties: the lower id first), exactly k when k < V.
void filter_top_k(std::span<const float> probs, int64_t k, std::span<uint8_t> keep,
                  std::vector<int32_t>& scratch);
// Top-p: the most probable tokens until their total reaches top_p, plus any token tied with the
// last of them (the official cutoff `probs < cutoff -> 0`). top_p_x > 0 also keeps every token
// with p > top_p_x (top-p-x). top_p >= 1 keeps everything.
void filter_top_p(std::span<const float> probs, double top_p, double top_p_x,
                  std::span<uint8_t> keep, std::vector<int32_t>& scratch);
// Top-a: removes every token with p < top_a * p_max^2.
void filter_top_a(std::span<const float> probs, double top_a, std::span<uint8_t> keep);
// The distribution drawn from: softmax(logits / T) over the kept tokens (T > 0), 0 elsewhere.
void tempered(std::span<const float> logits, std::span<const uint8_t> keep, double temperature,
              std::span<float> out);
// The lowest id among the largest logits.
int32_t argmax(std::span<const float> logits);
// Inverse CDF in id order with one uniform draw; `dist` sums to 1 (up to rounding).
int32_t draw(std::span<const float> dist, Rng& rng);

}  // namespace sampling

class Sampler {
public:
    // Validates cfg; vocab >= 1. The generator is Rng(cfg.seed, "sampler").
    Sampler(const SamplerConfig& cfg, int64_t vocab);
    // Picks a token from `logits` (V floats; not modified) after every enabled step. NaN logits
    // or all tokens at -inf are a goose::Error.
    int32_t sample(std::span<const float> logits);
    // The distribution sample() would draw from (V values summing to 1; one-hot at T = 0).
    // Valid until the next call. Uses no random numbers.
    std::span<const float> distribution(std::span<const float> logits);
    // Records a token the model saw or produced (for the presence/frequency penalties): every
    // count is multiplied by penalty_decay, then the token's count grows by 1.
    void accept(int32_t token);
    // Forgets the recorded tokens (the generator keeps its position).
    void reset_penalties();

    const SamplerConfig& config() const { return cfg_; }
    int64_t vocab() const { return static_cast<int64_t>(counts_.size()); }

private:
    // Penalised logits into work_, the filters into keep_, the distribution into dist_ (and, when
    // few tokens survive, their ids in id order into kept_); the greedy pick at T = 0, else -1.
    int32_t prepare(std::span<const float> logits);

    SamplerConfig cfg_;
    Rng rng_;
    std::vector<float> counts_, work_, probs_, dist_;
    std::vector<int32_t> seen_;  // ids with count > 0 (penalties and decay touch only these)
    std::vector<uint8_t> keep_;
    std::vector<int32_t> scratch_, kept_;
    bool sparse_ = false;  // dist_ is nonzero only on kept_
};

}  // namespace goose::infer
