// goose generate / goose chat: loading, state files, streaming output, the chat loop.
#include "goose/infer/generate_cli.h"

#include <fmt/format.h>

#include <istream>
#include <ostream>

#include "goose/core/error.h"
#include "goose/infer/generate.h"
#include "goose/infer/logits.h"
#include "goose/models/rwkv7_state_io.h"

namespace goose::infer {

namespace {

constexpr const char* kChatCommands = "/save FILE, /load FILE, /reset, /quit, /help";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Tokens of the prompt: ids, text, or (fresh state, nothing given) the document start token 0.
std::vector<int32_t> prompt_ids(const GenerateCliConfig& cfg, const LoadedModel& m) {
    const int64_t vocab = m.engine->config().vocab;
    if (!cfg.prompt_tokens.empty()) {
        if (!cfg.prompt.empty()) fail("give --prompt or --prompt-tokens, not both");
        std::vector<int32_t> ids;
        for (int64_t id : parse_token_ids(cfg.prompt_tokens, vocab))
            ids.push_back(static_cast<int32_t>(id));
        return ids;
    }
    const std::string text = cfg.raw ? cfg.prompt : unescape(cfg.prompt);
    std::vector<int32_t> ids = m.tokenizer->encode(text);
    if (ids.empty()) {
        if (!cfg.state_in.empty())
            fail("--prompt is empty: continuing the state of '{}' needs at least one token of "
                 "prompt", cfg.state_in);
        ids.push_back(0);  // the document start, as the evaluation contexts begin
    }
    return ids;
}

std::vector<std::string> stop_strings(const GenerateCliConfig& cfg) {
    std::vector<std::string> out;
    for (const auto& s : cfg.stop) out.push_back(cfg.raw ? s : unescape(s));
    return out;
}

std::string rate(int64_t tokens, double seconds) {
    return seconds > 0 ? fmt::format("{:.1f} tok/s", static_cast<double>(tokens) / seconds) : "-";
}

}  // namespace

std::string unescape(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\') {
            out += s[i];
            continue;
        }
        if (i + 1 == s.size()) fail("'{}' ends with a lone backslash (write \\\\ for one)", s);
        const char c = s[++i];
        switch (c) {
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case '0': out += '\0'; break;
            case '\\': case '"': case '\'': out += c; break;
            case 'x': {
                const int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
                const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
                if (hi < 0 || lo < 0) fail("'{}': \\x needs two hex digits", s);
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                break;
            }
            default:
                fail("'{}': unknown escape \\{} (valid: \\n \\t \\r \\0 \\\\ \\\" \\' \\xNN)", s, c);
        }
    }
    return out;
}

LoadedModel load_for_generation(const GenerateCliConfig& cfg) {
    cfg.sampler.validate();
    if (cfg.max_tokens < 0) fail("--max-tokens must be >= 0, got {}", cfg.max_tokens);
    if (cfg.tokenizer != "auto" && cfg.tokenizer != "world" && cfg.tokenizer != "byte")
        fail("--tokenizer '{}' is not one of: auto, world, byte", cfg.tokenizer);
    const WeightFormat f = parse_weight_format(cfg.weights);
    LoadedModel m;
    m.engine = Rwkv7Engine::load(cfg.model, EngineOptions{f, f, f});
    const int64_t vocab = m.engine->config().vocab;
    std::string kind = cfg.tokenizer;
    if (kind == "auto") {
        if (vocab == 257)
            kind = "byte";
        else if (vocab >= 65530)
            kind = "world";
        else
            fail("cannot tell the tokenizer of '{}' (vocabulary {}): pass --tokenizer world|byte",
                 cfg.model, vocab);
    }
    m.tokenizer = kind == "byte" ? text::make_byte_tokenizer()
                                 : text::load_world_tokenizer(
                                       text::find_world_vocab(cfg.vocab, cfg.model));
    if (m.tokenizer->vocab_size() > vocab)
        fail("the {} tokenizer has {} ids but the model '{}' only {}", m.tokenizer->name(),
             m.tokenizer->vocab_size(), cfg.model, vocab);
    return m;
}

models::Rwkv7State load_state_for(const Rwkv7Engine& engine, const std::string& path) {
    models::Rwkv7State s = models::load_rwkv7_state(path, engine.config());
    if (s.batch() != 1)
        fail("state file '{}' holds a batch of {} states; generation continues one", path,
             s.batch());
    if (s.att_shift[0].dtype() != DType::f32) {
        for (auto* group : {&s.att_shift, &s.wkv, &s.ffn_shift})
            for (Tensor& t : *group) t = t.to(DType::f32);
    }
    return s;
}

void run_generate(const GenerateCliConfig& cfg, std::ostream& out, std::ostream& err) {
    LoadedModel m = load_for_generation(cfg);
    models::Rwkv7State state =
        cfg.state_in.empty() ? m.engine->new_state() : load_state_for(*m.engine, cfg.state_in);
    const std::vector<int32_t> ids = prompt_ids(cfg, m);
    GenerateOptions opt;
    opt.sampler = cfg.sampler;
    opt.max_tokens = cfg.max_tokens;
    opt.stop = stop_strings(cfg);
    const GenerateResult r = generate(*m.engine, *m.tokenizer, state, ids, opt,
                                      [&](std::string_view piece) {
                                          out.write(piece.data(),
                                                    static_cast<std::streamsize>(piece.size()));
                                          out.flush();
                                          return out.good();
                                      });
    if (!cfg.state_out.empty())
        models::save_rwkv7_state(cfg.state_out, state, m.engine->config());
    if (cfg.quiet) return;
    err << fmt::format(
        "\n[goose generate: {} prompt tokens in {:.3f} s ({}), {} generated in {:.3f} s ({}), "
        "finish: {}{}{}]\n",
        r.prompt_tokens, r.prefill_seconds, rate(r.prompt_tokens, r.prefill_seconds),
        r.completion_tokens, r.decode_seconds, rate(r.completion_tokens, r.decode_seconds),
        finish_reason_name(r.finish), r.stop_sequence.empty() ? "" : " (stop string)",
        cfg.state_out.empty() ? "" : ", state saved to " + cfg.state_out);
    err.flush();
}

void run_chat(const GenerateCliConfig& cfg, std::istream& in, std::ostream& out,
              std::ostream& err, bool interactive, ChatSignals signals) {
    LoadedModel m = load_for_generation(cfg);
    Rwkv7Engine& engine = *m.engine;
    const text::Tokenizer& tok = *m.tokenizer;
    const models::Rwkv7State initial =
        cfg.state_in.empty() ? engine.new_state() : load_state_for(engine, cfg.state_in);
    models::Rwkv7State state = initial.clone();
    std::vector<float> logits(static_cast<size_t>(engine.config().vocab));
    auto feed = [&](std::string_view text) {
        const std::vector<int32_t> ids = tok.encode(text);
        if (!ids.empty()) engine.prefill(ids, state, logits);
    };
    GenerateOptions base;
    base.sampler = cfg.sampler;
    base.max_tokens = cfg.max_tokens;
    base.stop = {"\n\n"};
    for (auto& s : stop_strings(cfg)) base.stop.push_back(s);
    base.cancel = signals.interrupt;
    if (interactive)
        err << fmt::format("goose chat: {} ({} weights). Commands: {}. Ctrl-C stops a reply.\n",
                           cfg.model, cfg.weights, kChatCommands);

    uint64_t turn = 0;
    std::string line;
    while (true) {
        if (interactive) out << "User: " << std::flush;
        if (!std::getline(in, line)) break;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        try {
            if (line[0] == '/') {
                const size_t space = line.find(' ');
                const std::string cmd = line.substr(0, space);
                std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
                while (!arg.empty() && arg.front() == ' ') arg.erase(0, 1);
                while (!arg.empty() && arg.back() == ' ') arg.pop_back();
                if (cmd == "/quit" || cmd == "/exit") break;
                if (cmd == "/reset") {
                    state = initial.clone();
                    err << "[conversation reset]\n";
                } else if (cmd == "/save" || cmd == "/load") {
                    if (arg.empty()) fail("{} needs a file name: {} FILE", cmd, cmd);
                    if (cmd == "/save") {
                        models::save_rwkv7_state(arg, state, engine.config());
                        err << "[conversation state saved to " << arg << "]\n";
                    } else {
                        state = load_state_for(engine, arg);
                        err << "[conversation state loaded from " << arg << "]\n";
                    }
                } else if (cmd == "/help") {
                    err << "commands: " << kChatCommands << "\n";
                } else {
                    fail("unknown command '{}' (commands: {})", cmd, kChatCommands);
                }
                continue;
            }
            GenerateOptions opt = base;
            opt.sampler.seed = cfg.sampler.seed + turn++;
            if (signals.interrupt) signals.interrupt->store(false);
            if (signals.replying) signals.replying->store(true);
            out << "Assistant:" << std::flush;
            GenerateResult r;
            try {
                r = generate(engine, tok, state, "User: " + line + "\n\nAssistant:", opt,
                             [&](std::string_view piece) {
                                 out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
                                 out.flush();
                                 return true;
                             });
            } catch (...) {
                if (signals.replying) signals.replying->store(false);
                throw;
            }
            if (signals.replying) signals.replying->store(false);
            out << "\n" << (interactive ? "\n" : "") << std::flush;
            // Every turn ends the state with the separator the template expects.
            if (r.stop_sequence != "\n\n") feed("\n\n");
            if (r.finish == FinishReason::cancelled)
                err << "[reply stopped; the conversation goes on]\n";
        } catch (const Error& e) {
            err << "goose: error: " << e.what() << "\n";
        }
        err.flush();
    }
}

}  // namespace goose::infer
