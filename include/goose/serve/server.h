// `goose serve`: an OpenAI-compatible HTTP server (GET /health, GET /v1/models,
// POST /v1/completions, POST /v1/chat/completions, streaming through server-sent events) over
// one RWKV-7 engine, with concurrent requests batched into one decode step per token
// (continuous batching over --parallel state slots), request limits, and a graceful stop.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace goose::infer {
class Rwkv7Engine;
}
namespace goose::text {
class Tokenizer;
}

namespace goose::serve {

struct ServeConfig {
    std::string model;                // RWKV-7 checkpoint (.pth or .safetensors)
    std::string model_name;           // the name clients see ("" = the file's stem)
    std::string host = "127.0.0.1";
    int port = 8080;                  // 0: any free port (see port_file and the startup line)
    int parallel = 4;                 // state slots: requests decoded together
    std::string tokenizer = "auto";   // auto (byte for V = 257, world for V >= 65530) | world | byte
    std::string vocab;                // World vocabulary (else $GOOSE_VOCAB, else beside the model)
    std::string weights = "f32";      // f32 | bf16 | int8
    int64_t max_body_bytes = 1 << 20;     // larger bodies: 413
    int64_t max_prompt_tokens = 8192;     // longer prompts: 400
    int64_t max_tokens = 4096;            // the largest max_tokens a request may ask for
    int64_t default_max_tokens = 256;     // max_tokens of a request that gives none
    int64_t max_queue = 64;               // requests waiting for a slot; more: 503
    int64_t prefill_chunk = 512;          // prompt tokens prefilled per step
    double shutdown_grace_s = 10;         // on SIGTERM: time in-flight requests get to finish
    std::string port_file;                // "" or a file to write the bound port to
    bool quiet = false;                   // no line per request on stderr

    // goose::Error naming the option for out-of-range values.
    void validate() const;
};

// Counters since the start (what /health and the final summary report).
struct ServeSummary {
    int64_t completed = 0, cancelled = 0, failed = 0, rejected = 0;
    int64_t prompt_tokens = 0, completion_tokens = 0;
    int64_t decode_steps = 0, decoded_rows = 0;  // batched decode calls, rows over all of them
    double mean_batch = 0;  // decoded rows per batched decode step
    double seconds = 0;
};

class Server {
public:
    // Loads the model and tokenizer and binds the port (goose::Error naming what failed).
    explicit Server(const ServeConfig& cfg);
    // Serves an engine and tokenizer made elsewhere (benchmarks); cfg.model only names the
    // model (model_name defaults to its stem) and cfg.tokenizer / vocab / weights are unused.
    Server(const ServeConfig& cfg, std::unique_ptr<infer::Rwkv7Engine> engine,
           std::unique_ptr<text::Tokenizer> tokenizer);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    int port() const;  // the bound port
    const std::string& model_name() const;
    // Serves until stop(); returns once the server has shut down.
    void run();
    // Graceful stop, callable from any thread (not from a signal handler): new requests get 503,
    // in-flight ones get up to shutdown_grace_s to finish, the rest end with an error event, the
    // listening socket closes. Blocks until done; idempotent.
    void stop();
    ServeSummary summary() const;

private:
    void start(std::unique_ptr<infer::Rwkv7Engine> engine,
               std::unique_ptr<text::Tokenizer> tokenizer);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// goose serve: Server with SIGTERM/SIGINT as a graceful stop; prints the address when ready and
// a summary table at the end.
void run_serve(const ServeConfig& cfg);

}  // namespace goose::serve
