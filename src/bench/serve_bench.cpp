// goose bench serve: N concurrent streaming clients vs one, through the real HTTP server.
#include "goose/bench/serve_bench.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "goose/bench/timer.h"
#include "goose/core/error.h"
#include "goose/core/rng.h"
#include "goose/core/threads.h"
#include "goose/infer/engine.h"
#include "goose/models/rwkv7.h"
#include "goose/serve/server.h"
#include "goose/text/tokenizer.h"

namespace goose::bench {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct StreamResult {
    std::string error;         // "" = a complete stream
    int64_t tokens = 0;        // completion tokens (from the usage chunk)
    double first_token_s = 0;  // time to the first event
};

// One streamed completion over HTTP, read event by event.
StreamResult stream_completion(int port, const std::string& body) {
    StreamResult r;
    httplib::Client cli("127.0.0.1", port);
    cli.set_read_timeout(600);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.set_header("Content-Type", "application/json");
    req.body = body;
    std::string pending;
    bool done = false;
    const Clock::time_point t0 = Clock::now();
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        if (r.first_token_s == 0) r.first_token_s = since(t0);
        pending.append(data, n);
        for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
            const std::string event = pending.substr(0, end);
            pending.erase(0, end + 2);
            if (event == "data: [DONE]") {
                done = true;
                continue;
            }
            if (event.rfind("data: ", 0) != 0) {
                r.error = "not an SSE event: " + event;
                continue;
            }
            const json j = json::parse(event.substr(6), nullptr, false);
            if (j.is_discarded())
                r.error = "event is not JSON: " + event;
            else if (j.contains("error"))
                r.error = j["error"].value("message", "error");
            else if (j.contains("usage"))
                r.tokens = j["usage"]["completion_tokens"].get<int64_t>();
        }
        return true;
    };
    const httplib::Result res = cli.send(req);
    if (!res)
        r.error = "HTTP error " + httplib::to_string(res.error());
    else if (res->status != 200)
        r.error = fmt::format("HTTP {}", res->status);
    else if (!done && r.error.empty())
        r.error = "the stream ended without [DONE]";
    return r;
}

struct RunResult {
    double wall_s = 0, tokens_per_s = 0, first_token_s = 0;
    int64_t tokens = 0;
    int errors = 0;
    std::string first_error;
};

// `clients` streams at once; tokens/s = all completion tokens / wall time.
RunResult run_clients(int port, int clients, const ServeBenchConfig& cfg, int rep) {
    std::vector<StreamResult> results(static_cast<size_t>(clients));
    std::vector<std::thread> threads;
    const Clock::time_point t0 = Clock::now();
    for (int c = 0; c < clients; ++c)
        threads.emplace_back([&, c] {
            std::string prompt;
            for (int i = 0; i < cfg.prompt; ++i) prompt += static_cast<char>('a' + (c + i) % 26);
            const json body = {{"prompt", prompt},
                               {"max_tokens", cfg.tokens},
                               {"temperature", 1.0},
                               {"seed", 1000 * rep + c},
                               {"ignore_eos", true},
                               {"stream", true},
                               {"stream_options", {{"include_usage", true}}}};
            results[static_cast<size_t>(c)] = stream_completion(port, body.dump());
        });
    for (auto& t : threads) t.join();
    RunResult r;
    r.wall_s = since(t0);
    for (const StreamResult& s : results) {
        r.tokens += s.tokens;
        r.first_token_s += s.first_token_s / clients;
        if (!s.error.empty()) {
            if (r.errors++ == 0) r.first_error = s.error;
        }
    }
    r.tokens_per_s = static_cast<double>(r.tokens) / r.wall_s;
    return r;
}

}  // namespace

void run_serve_bench(const ServeBenchConfig& cfg) {
    const auto mc = models::Rwkv7Config::with_defaults(cfg.vocab, cfg.layers, cfg.dim, cfg.head);
    mc.validate();
    if (cfg.clients < 1 || cfg.tokens < 1 || cfg.prompt < 1 || cfg.reps < 1)
        fail("bench serve: --clients, --tokens, --prompt and --reps must be >= 1");
    const infer::WeightFormat f = infer::parse_weight_format(cfg.weights);
    fmt::print("goose bench serve: {}\n", machine_summary());
    fmt::print("RWKV-7 L{} C{} head {} V{} ({} parameters), random weights, {} weights, byte "
               "tokenizer; {}-token prompts, {} tokens per request, streamed (SSE) over "
               "127.0.0.1\n",
               cfg.layers, cfg.dim, cfg.head, cfg.vocab, mc.num_parameters(), cfg.weights,
               cfg.prompt, cfg.tokens);
    std::fflush(stdout);

    std::unique_ptr<infer::Rwkv7Engine> engine;
    {
        models::Rwkv7 model(mc);
        Rng rng(0, "bench");
        // Random N(0, 0.02) values: speed does not depend on them (the official init's QR of
        // a 65536-row head would dominate the start-up).
        for (auto& [name, p] : model.named_parameters())
            p.value_mut().copy_(Tensor::randn(p.shape(), rng, p.dtype(), 0, 0.02));
        engine = std::make_unique<infer::Rwkv7Engine>(model, infer::EngineOptions{f, f, f});
    }
    serve::ServeConfig sc;
    sc.model = "bench-random";
    sc.port = 0;
    sc.parallel = cfg.clients;
    sc.max_tokens = std::max(cfg.tokens, 1);
    sc.max_prompt_tokens = std::max(cfg.prompt, 1);
    sc.quiet = true;
    serve::Server server(sc, std::move(engine), text::make_byte_tokenizer());
    std::thread http([&] { server.run(); });

    ServeBenchConfig warm = cfg;  // warm-up: short requests at both batch sizes
    warm.tokens = std::min(cfg.tokens, 4);
    run_clients(server.port(), 1, warm, 0);
    run_clients(server.port(), cfg.clients, warm, 0);
    // The settings alternate (1, N, 1, N, ...) so that a change in the machine's load during the
    // benchmark falls on both alike.
    std::vector<int> settings = {1};
    if (cfg.clients > 1) settings.push_back(cfg.clients);
    std::vector<std::vector<RunResult>> runs(settings.size());
    std::vector<int64_t> steps(settings.size(), 0), rows(settings.size(), 0);
    int errors = 0;
    for (int rep = 0; rep < cfg.reps; ++rep)
        for (size_t i = 0; i < settings.size(); ++i) {
            const serve::ServeSummary before = server.summary();
            runs[i].push_back(run_clients(server.port(), settings[i], cfg, rep));
            const serve::ServeSummary after = server.summary();
            steps[i] += after.decode_steps - before.decode_steps;
            rows[i] += after.decoded_rows - before.decoded_rows;
            const RunResult& r = runs[i].back();
            errors += r.errors;
            fmt::print("  run {}/{}, {} client{}: {:.1f} tokens/s{}\n", rep + 1, cfg.reps,
                       settings[i], settings[i] > 1 ? "s" : "", r.tokens_per_s,
                       r.errors ? fmt::format(", {} errors (first: {})", r.errors, r.first_error)
                                : "");
            std::fflush(stdout);
        }
    server.stop();
    http.join();

    // Each N-client run against the 1-client run just before it (close in time, so under about
    // the same load from anything else on the machine).
    std::vector<double> pair_ratio;
    if (settings.size() == 2)
        for (int rep = 0; rep < cfg.reps; ++rep)
            pair_ratio.push_back(runs[1][static_cast<size_t>(rep)].tokens_per_s /
                                 runs[0][static_cast<size_t>(rep)].tokens_per_s);
    std::sort(pair_ratio.begin(), pair_ratio.end());

    fmt::print("{:>8} {:>8} {:>9} {:>12} {:>15} {:>13} {:>12} {:>11}\n", "clients", "tokens",
               "wall s", "tok/s total", "(min - max)", "tok/s/client", "1st event ms",
               "mean batch");
    std::vector<double> rate;
    for (size_t i = 0; i < settings.size(); ++i) {
        std::vector<RunResult>& v = runs[i];
        std::sort(v.begin(), v.end(), [](const RunResult& a, const RunResult& b) {
            return a.tokens_per_s < b.tokens_per_s;
        });
        const RunResult& med = v[v.size() / 2];
        fmt::print("{:>8} {:>8} {:>9.2f} {:>12.1f} {:>15} {:>13.1f} {:>12.0f} {:>11.2f}\n",
                   settings[i], med.tokens, med.wall_s, med.tokens_per_s,
                   fmt::format("({:.1f} - {:.1f})", v.front().tokens_per_s,
                               v.back().tokens_per_s),
                   med.tokens_per_s / settings[i], med.first_token_s * 1e3,
                   steps[i] > 0 ? static_cast<double>(rows[i]) / steps[i] : 0.0);
        rate.push_back(med.tokens_per_s);
    }
    fmt::print("threads: {}; medians of {} runs, settings alternating; errors: {}\n",
               num_threads(), cfg.reps, errors);
    if (rate.size() == 2) {
        fmt::print("ratio of the medians, {} clients / 1 client, total tokens/s: {:.2f}x\n",
                   cfg.clients, rate[1] / rate[0]);
        fmt::print("ratio {} clients / 1 client, median of {} adjacent pairs: {:.2f}x "
                   "({:.2f} - {:.2f}) (target >= 3x)\n",
                   cfg.clients, pair_ratio.size(), pair_ratio[pair_ratio.size() / 2],
                   pair_ratio.front(), pair_ratio.back());
    }
}

}  // namespace goose::bench
