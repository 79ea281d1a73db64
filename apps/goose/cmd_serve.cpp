// goose serve: the OpenAI-compatible HTTP server (completions, chat, streaming, batching), and
// goose bench serve (registered under `goose bench`, which add_bench made before).
#include "commands.h"
#include "goose/bench/serve_bench.h"
#include "goose/serve/server.h"

namespace goose::cli {

void add_serve(CLI::App& app) {
    auto c = std::make_shared<serve::ServeConfig>();
    auto* cmd = app.add_subcommand(
        "serve", "OpenAI-compatible HTTP server: /v1/completions, /v1/chat/completions (SSE "
                 "streaming), concurrent requests batched into one decode step");
    cmd->add_option("--model", c->model, "RWKV-7 checkpoint (.pth or .safetensors)")->required();
    cmd->add_option("--host", c->host, "address to listen on")->capture_default_str();
    cmd->add_option("--port", c->port, "port (0: any free port)")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    cmd->add_option("--parallel", c->parallel, "requests decoded together (state slots)")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    cmd->add_option("--name", c->model_name, "model name in the API (default: the file's stem)");
    cmd->add_option("--tokenizer", c->tokenizer, "auto | world | byte")->capture_default_str();
    cmd->add_option("--vocab", c->vocab, "World vocabulary file (default: $GOOSE_VOCAB, then "
                                         "rwkv_vocab_v20230424.txt beside the model)");
    cmd->add_option("--weights", c->weights, "f32 | bf16 | int8")->capture_default_str();
    cmd->add_option("--max-body", c->max_body_bytes, "largest request body in bytes (413 above)")
        ->capture_default_str();
    cmd->add_option("--max-prompt-tokens", c->max_prompt_tokens, "longest prompt in tokens")
        ->capture_default_str();
    cmd->add_option("--max-tokens-limit", c->max_tokens, "largest max_tokens a request may ask")
        ->capture_default_str();
    cmd->add_option("--default-max-tokens", c->default_max_tokens,
                    "max_tokens of a request that gives none")
        ->capture_default_str();
    cmd->add_option("--max-queue", c->max_queue, "requests waiting for a slot (503 above)")
        ->capture_default_str();
    cmd->add_option("--prefill-chunk", c->prefill_chunk, "prompt tokens prefilled per step")
        ->capture_default_str();
    cmd->add_option("--shutdown-grace", c->shutdown_grace_s,
                    "seconds in-flight requests get to finish on SIGTERM/SIGINT")
        ->capture_default_str();
    cmd->add_option("--port-file", c->port_file, "write the bound port to this file");
    cmd->add_flag("--quiet", c->quiet, "no line per request on stderr");
    cmd->callback([c] { serve::run_serve(*c); });

    auto sv = std::make_shared<bench::ServeBenchConfig>();
    auto* b = app.get_subcommand("bench")->add_subcommand(
        "serve", "goose serve total tokens/s: N concurrent streaming clients vs 1 (0.1B shape)");
    b->add_option("--layers", sv->layers)->capture_default_str()->check(CLI::Range(1, 64));
    b->add_option("--dim", sv->dim)->capture_default_str()->check(CLI::Range(1, 8192));
    b->add_option("--head", sv->head)->capture_default_str()->check(CLI::Range(1, 256));
    b->add_option("--vocab", sv->vocab)->capture_default_str()->check(CLI::Range(2, 1 << 20));
    b->add_option("--clients", sv->clients, "concurrent streams (and server slots)")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    b->add_option("--tokens", sv->tokens, "tokens per request")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    b->add_option("--prompt", sv->prompt, "prompt tokens")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    b->add_option("--reps", sv->reps, "runs per setting (the median is shown)")
        ->capture_default_str()
        ->check(CLI::Range(1, 100));
    b->add_option("--weights", sv->weights, "f32 | bf16 | int8")->capture_default_str();
    b->callback([sv] { bench::run_serve_bench(*sv); });
}

}  // namespace goose::cli
