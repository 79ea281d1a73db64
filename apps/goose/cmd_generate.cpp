// goose generate / goose chat: text generation with streaming output and RNN state files.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <iostream>

#include "commands.h"
#include "goose/infer/generate_cli.h"

namespace goose::cli {

namespace {

std::atomic<bool> g_interrupt{false}, g_replying{false};

// Ctrl-C during a reply stops that reply; otherwise it ends the program as usual.
extern "C" void on_sigint(int) {
    if (g_replying.load()) {
        g_interrupt.store(true);
    } else {
        std::signal(SIGINT, SIG_DFL);
        std::raise(SIGINT);
    }
}

void add_options(CLI::App* cmd, infer::GenerateCliConfig& c, bool chat) {
    cmd->add_option("--model", c.model, "RWKV-7 checkpoint (.pth or .safetensors)")->required();
    if (!chat) {
        cmd->add_option("--prompt", c.prompt, "prompt text (\\n, \\t, \\xNN escapes unless --raw)");
        cmd->add_option("--prompt-tokens", c.prompt_tokens, "prompt as token ids, e.g. \"1 2 3\"");
    }
    cmd->add_option("--max-tokens", c.max_tokens, chat ? "tokens per reply" : "tokens to generate")
        ->capture_default_str();
    auto& s = c.sampler;
    cmd->add_option("--temperature", s.temperature, "0 = greedy")->capture_default_str();
    cmd->add_option("--top-k", s.top_k, "keep the k most probable tokens (0 = off)")
        ->capture_default_str();
    cmd->add_option("--top-p", s.top_p, "nucleus: smallest set reaching p (1 = off)")
        ->capture_default_str();
    cmd->add_option("--top-a", s.top_a, "remove tokens with p < a * p_max^2 (0 = off)")
        ->capture_default_str();
    cmd->add_option("--top-p-x", s.top_p_x, "top-p also keeps every token with p > x (0 = off)")
        ->capture_default_str();
    cmd->add_option("--presence-penalty", s.presence_penalty, "subtracted once a token appeared")
        ->capture_default_str();
    cmd->add_option("--frequency-penalty", s.frequency_penalty, "times the token's decayed count")
        ->capture_default_str();
    cmd->add_option("--penalty-decay", s.penalty_decay, "count decay per generated token")
        ->capture_default_str();
    cmd->add_option("--seed", s.seed, chat ? "sampling seed (turn i uses seed + i)" : "sampling seed")
        ->capture_default_str();
    cmd->add_option("--stop", c.stop, "stop string, not printed (repeat for several)")
        ->allow_extra_args(false);
    cmd->add_flag("--raw", c.raw, "no escape processing in --prompt and --stop");
    cmd->add_option("--tokenizer", c.tokenizer, "auto | world | byte")->capture_default_str();
    cmd->add_option("--vocab", c.vocab, "World vocabulary file (default: $GOOSE_VOCAB, then "
                                        "rwkv_vocab_v20230424.txt beside the model)");
    cmd->add_option("--weights", c.weights, "f32 | bf16 | int8")->capture_default_str();
    cmd->add_option("--state-in", c.state_in, "start from this RNN state file");
    if (!chat) {
        cmd->add_option("--state-out", c.state_out, "save the final RNN state to this file");
        cmd->add_flag("--quiet", c.quiet, "no summary on stderr");
    }
}

}  // namespace

void add_generate(CLI::App& app) {
    auto gen = std::make_shared<infer::GenerateCliConfig>();
    auto* g = app.add_subcommand("generate", "generate text from a prompt, streamed to stdout");
    add_options(g, *gen, false);
    g->callback([gen] { infer::run_generate(*gen, std::cout, std::cerr); });

    // Chat defaults: the sampling of the official chat demos.
    auto chat = std::make_shared<infer::GenerateCliConfig>();
    chat->max_tokens = 500;
    chat->sampler.top_p = 0.3;
    chat->sampler.presence_penalty = 0.5;
    chat->sampler.frequency_penalty = 0.5;
    auto* c = app.add_subcommand("chat", "multi-turn chat on stdin (\"User: ...\\n\\nAssistant:\")");
    add_options(c, *chat, true);
    c->callback([chat] {
        std::signal(SIGINT, on_sigint);
        infer::run_chat(*chat, std::cin, std::cout, std::cerr, isatty(STDIN_FILENO) != 0,
                        {&g_interrupt, &g_replying});
        std::signal(SIGINT, SIG_DFL);
    });
}

}  // namespace goose::cli
