// Generation: prefill, sample/decode loop, UTF-8 streaming and stop strings.
#include "goose/infer/generate.h"

#include <chrono>
#include <limits>

#include "goose/core/error.h"
#include "goose/infer/stop.h"

namespace goose::infer {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool is_valid_utf8(std::string_view s) {
    text::Utf8Stream u;
    return u.push(s) + u.flush() == s;
}

void check_state(const models::Rwkv7State& state, const models::Rwkv7Config& cfg) {
    if (static_cast<int64_t>(state.att_shift.size()) != cfg.n_layer || state.batch() != 1)
        fail("generate: the state must have {} layers and batch 1 (got {} layers, batch {})",
             cfg.n_layer, state.att_shift.size(), state.batch());
    if (state.att_shift[0].dtype() != DType::f32)
        fail("generate: the state must be f32, got {}", dtype_name(state.att_shift[0].dtype()));
}

}  // namespace

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::stop: return "stop";
        case FinishReason::length: return "length";
        case FinishReason::cancelled: return "cancelled";
    }
    return "?";
}

GenerateResult generate(Rwkv7Engine& engine, const text::Tokenizer& tokenizer,
                        models::Rwkv7State& state, std::span<const int32_t> prompt,
                        const GenerateOptions& opt, const TextCallback& on_text) {
    const models::Rwkv7Config& cfg = engine.config();
    const int64_t vocab = cfg.vocab;
    if (prompt.empty()) fail("generate: the prompt is empty (it needs at least one token)");
    for (size_t i = 0; i < prompt.size(); ++i)
        if (prompt[i] < 0 || prompt[i] >= vocab)
            fail("generate: prompt token {} (id {}) is out of range [0, {})", i, prompt[i], vocab);
    if (opt.max_tokens < 0) fail("generate: max_tokens must be >= 0, got {}", opt.max_tokens);
    for (const auto& s : opt.stop)
        if (!is_valid_utf8(s)) fail("generate: stop string '{}' is not valid UTF-8", s);
    check_state(state, cfg);
    Sampler sampler(opt.sampler, vocab);
    StopMatcher stops(opt.stop);
    text::Utf8Stream utf8;
    const int64_t decodable = std::min(vocab, tokenizer.vocab_size());

    GenerateResult r;
    r.prompt_tokens = static_cast<int64_t>(prompt.size());
    bool cancelled = false;
    auto emit = [&](const std::string& piece) {
        if (piece.empty() || cancelled) return;
        r.text += piece;
        if (on_text && !on_text(piece)) cancelled = true;
    };

    std::vector<float> logits(static_cast<size_t>(vocab));
    const auto t0 = Clock::now();
    engine.prefill(prompt, state, logits);
    r.prefill_seconds = seconds_since(t0);

    const auto t1 = Clock::now();
    int32_t pending = -1;  // sampled but not yet fed to the model
    models::Rwkv7State* states[1] = {&state};
    r.finish = FinishReason::length;
    for (int64_t i = 0; i < opt.max_tokens; ++i) {
        if (opt.cancel && opt.cancel->load()) {
            cancelled = true;
            break;
        }
        for (int64_t id = decodable; id < vocab; ++id)
            logits[static_cast<size_t>(id)] = -std::numeric_limits<float>::infinity();
        const int32_t token = sampler.sample(logits);
        sampler.accept(token);
        r.tokens.push_back(token);
        pending = token;
        if (token == 0 && opt.stop_at_end_of_doc) {
            r.finish = FinishReason::stop;
            break;
        }
        emit(stops.push(utf8.push(tokenizer.decode(std::span<const int32_t>(&token, 1)))));
        if (stops.stopped()) {
            r.finish = FinishReason::stop;
            r.stop_sequence = stops.matched();
            break;
        }
        if (cancelled || i + 1 == opt.max_tokens) break;
        const int32_t step[1] = {token};
        engine.decode(step, states, logits);
        pending = -1;
    }
    if (pending >= 0 && opt.absorb_last_token) {
        const int32_t step[1] = {pending};
        engine.decode(step, states, logits);
    }
    r.decode_seconds = seconds_since(t1);
    if (cancelled) {
        r.finish = FinishReason::cancelled;
    } else if (!stops.stopped()) {  // the end of the text: what was held back is text
        emit(stops.push(utf8.flush()));
        if (!stops.stopped()) emit(stops.flush());
        if (stops.stopped()) {
            r.finish = FinishReason::stop;
            r.stop_sequence = stops.matched();
        }
        if (cancelled) r.finish = FinishReason::cancelled;
    }
    r.completion_tokens = static_cast<int64_t>(r.tokens.size());
    return r;
}

GenerateResult generate(Rwkv7Engine& engine, const text::Tokenizer& tokenizer,
                        models::Rwkv7State& state, std::string_view prompt,
                        const GenerateOptions& opt, const TextCallback& on_text) {
    const std::vector<int32_t> ids = tokenizer.encode(prompt);
    if (ids.empty()) fail("generate: the prompt is empty (it needs at least one token)");
    return generate(engine, tokenizer, state, std::span<const int32_t>(ids), opt, on_text);
}

}  // namespace goose::infer
