// Text generation over an Rwkv7Engine: parallel prefill of the prompt, then RNN decoding with the
// sampler, streaming valid UTF-8 pieces through stop strings to a callback. Reentrant (no
// globals, all working memory per call); the engine itself runs one call at a time, so
// concurrent generations need a lock around the engine or an engine each.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "goose/infer/engine.h"
#include "goose/infer/sampler.h"
#include "goose/text/tokenizer.h"

namespace goose::infer {

enum class FinishReason { stop, length, cancelled };
const char* finish_reason_name(FinishReason r);  // "stop" | "length" | "cancelled"

struct GenerateOptions {
    SamplerConfig sampler;
    int64_t max_tokens = 256;        // tokens to sample (>= 0; 0: only the prefill)
    std::vector<std::string> stop;   // stop strings (valid UTF-8, not empty); not in the text
    bool stop_at_end_of_doc = true;  // token 0 (end of document) ends the text
    // Feed the last sampled token too, so that `state` covers every sampled token (one more
    // decode step; what a conversation or --state-out needs).
    bool absorb_last_token = true;
    // Checked before each token; set it (another thread, a signal handler) to stop early.
    const std::atomic<bool>* cancel = nullptr;
};

struct GenerateResult {
    std::string text;             // what was emitted: valid UTF-8, stop strings excluded
    std::vector<int32_t> tokens;  // the sampled tokens
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;  // = tokens.size()
    FinishReason finish = FinishReason::length;
    std::string stop_sequence;  // the stop string that ended the text ("" for token 0 or none)
    double prefill_seconds = 0, decode_seconds = 0;
};

// Receives each piece of text as it is produced (not empty, valid UTF-8); false cancels.
using TextCallback = std::function<bool(std::string_view piece)>;

// Runs `prompt` (>= 1 token, ids in [0, V)) from `state`, then samples up to max_tokens tokens,
// advancing `state` (batch 1, f32). Ids the tokenizer cannot decode (V > its vocabulary) are
// never sampled. goose::Error for an empty prompt, out-of-range ids, bad sampler options or
// stop strings.
GenerateResult generate(Rwkv7Engine& engine, const text::Tokenizer& tokenizer,
                        models::Rwkv7State& state, std::span<const int32_t> prompt,
                        const GenerateOptions& opt, const TextCallback& on_text = {});
// The same with the prompt encoded by `tokenizer`.
GenerateResult generate(Rwkv7Engine& engine, const text::Tokenizer& tokenizer,
                        models::Rwkv7State& state, std::string_view prompt,
                        const GenerateOptions& opt, const TextCallback& on_text = {});

}  // namespace goose::infer
