// goose generate / goose chat: load a model and a tokenizer, generate with streaming output,
// save and restore RNN states, and the multi-turn "User: …\n\nAssistant:" chat loop.
#pragma once
#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "goose/infer/engine.h"
#include "goose/infer/sampler.h"
#include "goose/text/tokenizer.h"

namespace goose::infer {

struct GenerateCliConfig {
    std::string model;
    std::string prompt;         // text (C escapes \n \t \r \\ \" \' \0 unless raw)
    std::string prompt_tokens;  // or token ids "1 2 3" / "1,2,3"
    int64_t max_tokens = 200;
    SamplerConfig sampler;
    std::vector<std::string> stop;
    bool raw = false;                  // no escape processing in prompt and stop strings
    std::string tokenizer = "auto";    // auto | world | byte
    std::string vocab;                 // World vocabulary file (else $GOOSE_VOCAB, model folder)
    std::string weights = "f32";       // f32 | bf16 | int8
    std::string state_in, state_out;   // RNN state files
    bool quiet = false;                // no summary on stderr
};

// Decodes \n \t \r \\ \" \' \0 and \xNN; goose::Error naming a bad escape.
std::string unescape(const std::string& s);

// The model, its tokenizer and the engine, as the options name them.
struct LoadedModel {
    std::unique_ptr<Rwkv7Engine> engine;
    std::unique_ptr<text::Tokenizer> tokenizer;
};
LoadedModel load_for_generation(const GenerateCliConfig& cfg);
// A state file for `engine`'s model (batch 1, converted to f32); goose::Error naming the file for
// another model's state.
models::Rwkv7State load_state_for(const Rwkv7Engine& engine, const std::string& path);

// goose generate: streams the text to `out`, a summary to `err` (unless quiet).
void run_generate(const GenerateCliConfig& cfg, std::ostream& out, std::ostream& err);

// goose chat: one user message per line of `in`; /save FILE, /load FILE, /reset, /quit, /help.
// `interrupt` (set by a SIGINT handler) stops the reply in progress; `replying` is true while a
// reply is generated (so the handler knows whether to cancel or to exit). EOF ends the chat.
struct ChatSignals {
    std::atomic<bool>* interrupt = nullptr;
    std::atomic<bool>* replying = nullptr;
};
void run_chat(const GenerateCliConfig& cfg, std::istream& in, std::ostream& out,
              std::ostream& err, bool interactive, ChatSignals signals = {});

}  // namespace goose::infer
