// The HTTP side of `goose serve`: cpp-httplib routes, request bodies under a size limit, plain and
// server-sent-event responses fed by the scheduler, OpenAI-shaped errors, the graceful stop.
#include "goose/serve/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>

#include "goose/core/error.h"
#include "goose/infer/engine.h"
#include "goose/infer/generate_cli.h"
#include "goose/io/atomic_file.h"
#include "serve/openai_schema.h"
#include "serve/scheduler.h"

namespace goose::serve {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

void ServeConfig::validate() const {
    if (model.empty()) fail("--model is required");
    if (port < 0 || port > 65535) fail("--port {} is out of range [0, 65535]", port);
    if (parallel < 1 || parallel > 256) fail("--parallel {} is out of range [1, 256]", parallel);
    if (max_body_bytes < 64) fail("--max-body {} is too small (>= 64 bytes)", max_body_bytes);
    if (max_prompt_tokens < 1) fail("--max-prompt-tokens must be >= 1, got {}", max_prompt_tokens);
    if (max_tokens < 1) fail("--max-tokens-limit must be >= 1, got {}", max_tokens);
    if (default_max_tokens < 1)
        fail("--default-max-tokens must be >= 1, got {}", default_max_tokens);
    if (max_queue < 0) fail("--max-queue must be >= 0, got {}", max_queue);
    if (prefill_chunk < 1) fail("--prefill-chunk must be >= 1, got {}", prefill_chunk);
    if (!(shutdown_grace_s >= 0)) fail("--shutdown-grace must be >= 0, got {}", shutdown_grace_s);
    if (tokenizer != "auto" && tokenizer != "world" && tokenizer != "byte")
        fail("--tokenizer '{}' is not one of: auto, world, byte", tokenizer);
}

namespace {

const char* kEndpoints =
    "GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions";

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(dump(error_json(e)), "application/json");
}

// What a streamed response needs between calls of its content provider.
struct StreamState {
    std::shared_ptr<Job> job;
    Endpoint endpoint;
    ResponseMeta meta;
    bool include_usage = false;
    bool first = true;
    bool ended = false;
    std::string finish_reason;
    int64_t prompt_tokens = 0, completion_tokens = 0;
    Clock::time_point start;
    std::vector<JobEvent> events;
};

}  // namespace

struct Server::Impl {
    ServeConfig cfg;
    std::string name;
    std::unique_ptr<infer::Rwkv7Engine> engine;
    std::unique_ptr<text::Tokenizer> tokenizer;
    std::unique_ptr<BatchModel> model;
    std::unique_ptr<Scheduler> scheduler;
    RequestLimits limits;
    httplib::Server http;
    int port = 0;
    Clock::time_point start = Clock::now();

    std::atomic<bool> draining{false};
    std::atomic<int64_t> rejected{0};
    std::mutex mu;  // guards open_responses
    std::condition_variable cv;
    int open_responses = 0;  // completion responses not yet fully written
    std::once_flag stop_once;

    explicit Impl(const ServeConfig& c) : cfg(c) {}

    void response_opened() {
        std::lock_guard lock(mu);
        ++open_responses;
    }
    void response_closed() {
        {
            std::lock_guard lock(mu);
            --open_responses;
        }
        cv.notify_all();
    }

    void log(const httplib::Request& req, int status, bool stream, int64_t prompt,
             int64_t completion, const std::string& finish, Clock::time_point t0) {
        if (cfg.quiet) return;
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        fmt::print(stderr, "{} {} {}{} prompt={} completion={} {} {:.2f}s {:.1f} tok/s\n",
                   req.method, req.path, status, stream ? " stream" : "", prompt, completion,
                   finish.empty() ? "-" : finish, s, s > 0 ? completion / s : 0.0);
    }

    void routes();
    void handle_health(httplib::Response& res);
    void handle_completion(const httplib::Request& req, httplib::Response& res,
                           const httplib::ContentReader& reader, Endpoint endpoint);
    void respond_whole(const httplib::Request& req, httplib::Response& res,
                       std::shared_ptr<Job> job, Endpoint endpoint, ResponseMeta meta,
                       Clock::time_point t0);
    void respond_stream(const httplib::Request& req, httplib::Response& res,
                        std::shared_ptr<Job> job, Endpoint endpoint, ResponseMeta meta,
                        bool include_usage, Clock::time_point t0);
    void graceful_stop();
};

void Server::Impl::routes() {
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        handle_health(res);
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
        const json model = {{"id", name}, {"object", "model"}, {"created", 0}, {"owned_by", "goose"}};
        res.set_content(dump({{"object", "list"}, {"data", json::array({model})}}),
                        "application/json");
    });
    http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
        const std::string id = req.matches[1];
        if (id != name) {
            send_error(res, ApiError{404, fmt::format("model '{}' does not exist (this server "
                                                      "serves '{}')",
                                                      id, name),
                                     "invalid_request_error", "model", "model_not_found"});
            return;
        }
        res.set_content(
            dump({{"id", name}, {"object", "model"}, {"created", 0}, {"owned_by", "goose"}}),
            "application/json");
    });
    http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res,
                                        const httplib::ContentReader& reader) {
        handle_completion(req, res, reader, Endpoint::completions);
    });
    http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res,
                                             const httplib::ContentReader& reader) {
        handle_completion(req, res, reader, Endpoint::chat);
    });
    // Every error without a body of ours (no route, body over the limit, bad HTTP) in OpenAI's
    // shape.
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.is_chunked_content_provider_) return;
        ApiError e{res.status, "", "invalid_request_error", "", ""};
        const bool known_path = req.path == "/health" || req.path == "/v1/models" ||
                                req.path == "/v1/completions" ||
                                req.path == "/v1/chat/completions";
        const bool known_method = req.method == "GET" || req.method == "HEAD" ||
                                  req.method == "POST";
        if ((res.status == 404 && known_path) || (res.status == 400 && !known_method)) {
            res.status = e.status = 405;
            e.message = fmt::format("{} {} is not supported (endpoints: {})", req.method,
                                    req.path, kEndpoints);
            e.code = "method_not_allowed";
        } else if (res.status == 404) {
            e.message = fmt::format("no endpoint {} {} (endpoints: {})", req.method, req.path,
                                    kEndpoints);
            e.code = "unknown_endpoint";
            e.type = "not_found_error";
        } else if (res.status == 413) {
            e.message = fmt::format("the request body is larger than the limit of {} bytes "
                                    "(--max-body)",
                                    cfg.max_body_bytes);
            e.code = "body_too_large";
        } else {
            e.message = fmt::format("{} {}: HTTP {}", req.method, req.path, res.status);
        }
        res.set_content(dump(error_json(e)), "application/json");
    });
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unknown exception";
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            send_error(res, ApiError{500, "internal error: " + what, "server_error", "", ""});
        });
}

void Server::Impl::handle_health(httplib::Response& res) {
    const SchedulerStats s = scheduler->stats();
    const bool down = draining.load();
    res.status = down ? 503 : 200;
    res.set_content(dump({{"status", down ? "shutting_down" : "ok"},
                          {"model", name},
                          {"slots_total", s.slots_total},
                          {"slots_active", s.slots_active},
                          {"requests_queued", s.queued},
                          {"requests_completed", s.completed},
                          {"requests_cancelled", s.cancelled},
                          {"requests_failed", s.failed},
                          {"requests_rejected", rejected.load()},
                          {"prompt_tokens", s.prompt_tokens},
                          {"completion_tokens", s.completion_tokens}}),
                    "application/json");
}

void Server::Impl::handle_completion(const httplib::Request& req, httplib::Response& res,
                                     const httplib::ContentReader& reader, Endpoint endpoint) {
    const Clock::time_point t0 = Clock::now();
    try {
        std::string body;
        bool too_big = false;
        const size_t limit = static_cast<size_t>(cfg.max_body_bytes);
        const bool read = reader([&](const char* data, size_t n) {
            if (body.size() + n > limit) {
                too_big = true;
                return false;
            }
            body.append(data, n);
            return true;
        });
        if (too_big || res.status == 413) {
            res.set_header("Connection", "close");  // the rest of the body was not read
            throw ApiException(ApiError{
                413,
                fmt::format("the request body is larger than the limit of {} bytes (--max-body)",
                            cfg.max_body_bytes),
                "invalid_request_error", "", "body_too_large"});
        }
        if (!read) throw ApiException(ApiError{400, "could not read the request body",
                                               "invalid_request_error", "", ""});
        const CompletionRequest r = parse_request(body, endpoint, limits);
        if (!r.model.empty() && r.model != name)
            throw ApiException(ApiError{
                404, fmt::format("model '{}' does not exist (this server serves '{}')", r.model,
                                 name),
                "invalid_request_error", "model", "model_not_found"});
        if (draining.load())
            throw ApiException(
                ApiError{503, "the server is shutting down", "server_error", "", "shutting_down"});
        JobSpec spec = make_job_spec(r, *tokenizer, model->vocab(), limits);
        std::shared_ptr<Job> job = scheduler->submit(std::move(spec));
        const ResponseMeta meta{new_response_id(endpoint),
                                static_cast<int64_t>(std::time(nullptr)), name};
        if (r.stream)
            respond_stream(req, res, std::move(job), endpoint, meta, r.include_usage, t0);
        else
            respond_whole(req, res, std::move(job), endpoint, meta, t0);
    } catch (const ApiException& e) {
        ++rejected;
        send_error(res, e.error());
        if (!cfg.quiet) {
            std::string why = e.error().message;
            if (why.size() > 160) why = why.substr(0, 157) + "...";
            fmt::print(stderr, "{} {} {} {}\n", req.method, req.path, e.error().status, why);
        }
    }
}

void Server::Impl::respond_whole(const httplib::Request& req, httplib::Response& res,
                                 std::shared_ptr<Job> job, Endpoint endpoint, ResponseMeta meta,
                                 Clock::time_point t0) {
    response_opened();
    struct Guard {  // the job never outlives its request; the response count always drops
        Impl* impl;
        Job* job;
        ~Guard() {
            job->cancel();
            impl->response_closed();
        }
    } guard{this, job.get()};
    std::string text;
    std::vector<JobEvent> events;
    while (true) {
        events.clear();
        job->take(events, std::chrono::milliseconds(500));
        for (JobEvent& ev : events) {
            if (ev.kind == JobEvent::Kind::text) {
                text += ev.text;
            } else if (ev.kind == JobEvent::Kind::error) {
                send_error(res, ev.error);
                log(req, ev.error.status, false, 0, 0, "error", t0);
                return;
            } else {
                res.set_content(dump(completion_response(endpoint, meta, text, ev.finish_reason,
                                                         ev.prompt_tokens,
                                                         ev.completion_tokens)),
                                "application/json");
                log(req, 200, false, ev.prompt_tokens, ev.completion_tokens, ev.finish_reason,
                    t0);
                return;
            }
        }
    }
}

void Server::Impl::respond_stream(const httplib::Request& req, httplib::Response& res,
                                  std::shared_ptr<Job> job, Endpoint endpoint, ResponseMeta meta,
                                  bool include_usage, Clock::time_point t0) {
    auto st = std::make_shared<StreamState>();
    st->job = std::move(job);
    st->endpoint = endpoint;
    st->meta = std::move(meta);
    st->include_usage = include_usage;
    st->start = t0;
    response_opened();
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    const std::string method = req.method, path = req.path;
    res.set_chunked_content_provider(
        "text/event-stream",
        [st](size_t, httplib::DataSink& sink) {
            st->events.clear();
            if (!st->job->take(st->events, std::chrono::milliseconds(250))) return true;
            std::string out;
            for (JobEvent& ev : st->events) {
                if (ev.kind == JobEvent::Kind::text) {
                    out += sse_event(stream_chunk(st->endpoint, st->meta, ev.text, "", st->first));
                    st->first = false;
                } else if (ev.kind == JobEvent::Kind::done) {
                    if (st->first && st->endpoint == Endpoint::chat)
                        out += sse_event(stream_chunk(st->endpoint, st->meta, "", "", true));
                    out += sse_event(stream_chunk(st->endpoint, st->meta, "", ev.finish_reason));
                    if (st->include_usage)
                        out += sse_event(usage_chunk(st->endpoint, st->meta, ev.prompt_tokens,
                                                     ev.completion_tokens));
                    out += kSseDone;
                    st->finish_reason = ev.finish_reason;
                    st->prompt_tokens = ev.prompt_tokens;
                    st->completion_tokens = ev.completion_tokens;
                    st->ended = true;
                } else {
                    out += sse_event(error_json(ev.error));
                    out += kSseDone;
                    st->finish_reason = "error";
                    st->ended = true;
                }
            }
            if (!sink.write(out.data(), out.size())) {  // the client is gone
                st->job->cancel();
                return false;
            }
            if (st->ended) sink.done();
            return true;
        },
        [this, st, method, path](bool success) {
            st->job->cancel();  // frees the slot if the stream ended early; no-op otherwise
            if (!cfg.quiet) {
                const double s = std::chrono::duration<double>(Clock::now() - st->start).count();
                fmt::print(stderr, "{} {} 200 stream prompt={} completion={} {} {:.2f}s{}\n",
                           method, path, st->prompt_tokens, st->completion_tokens,
                           st->ended ? st->finish_reason : "client-gone", s,
                           st->ended && s > 0
                               ? fmt::format(" {:.1f} tok/s", st->completion_tokens / s)
                               : "");
            }
            response_closed();
        });
}

void Server::Impl::graceful_stop() {
    draining.store(true);
    scheduler->close();
    const auto grace = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(cfg.shutdown_grace_s));
    if (!scheduler->wait_idle(Clock::now() + grace)) {
        const SchedulerStats s = scheduler->stats();
        fmt::print(stderr, "goose serve: cancelling {} unfinished requests after {:g} s\n",
                   s.slots_active + s.queued, cfg.shutdown_grace_s);
        scheduler->cancel_all("the server is shutting down");
        scheduler->wait_idle(Clock::now() + std::chrono::seconds(5));
    }
    {  // let the handlers write what they have (bounded by the write timeout)
        std::unique_lock lock(mu);
        cv.wait_for(lock, std::chrono::seconds(10), [&] { return open_responses == 0; });
    }
    http.stop();
}

Server::Server(const ServeConfig& cfg) {
    cfg.validate();
    // The engine and tokenizer exactly as goose generate loads them.
    infer::GenerateCliConfig load;
    load.model = cfg.model;
    load.tokenizer = cfg.tokenizer;
    load.vocab = cfg.vocab;
    load.weights = cfg.weights;
    infer::LoadedModel m = infer::load_for_generation(load);
    impl_ = std::make_unique<Impl>(cfg);
    start(std::move(m.engine), std::move(m.tokenizer));
}

Server::Server(const ServeConfig& cfg, std::unique_ptr<infer::Rwkv7Engine> engine,
               std::unique_ptr<text::Tokenizer> tokenizer) {
    cfg.validate();
    impl_ = std::make_unique<Impl>(cfg);
    start(std::move(engine), std::move(tokenizer));
}

void Server::start(std::unique_ptr<infer::Rwkv7Engine> engine,
                   std::unique_ptr<text::Tokenizer> tokenizer) {
    Impl& m = *impl_;
    const ServeConfig& cfg = m.cfg;
    m.name = cfg.model_name.empty() ? std::filesystem::path(cfg.model).stem().string()
                                    : cfg.model_name;
    m.engine = std::move(engine);
    m.tokenizer = std::move(tokenizer);
    m.model = make_engine_model(*m.engine, cfg.parallel);
    m.limits = RequestLimits{cfg.max_prompt_tokens, cfg.max_tokens,
                             std::min(cfg.default_max_tokens, cfg.max_tokens)};
    m.scheduler = std::make_unique<Scheduler>(
        *m.model, *m.tokenizer, SchedulerOptions{cfg.prefill_chunk, cfg.max_queue});

    // One HTTP thread per connection that may be open at once: every slot, every queued
    // request, and a few for /health and rejections.
    const size_t threads = static_cast<size_t>(cfg.parallel + cfg.max_queue + 8);
    m.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    m.http.set_payload_max_length(static_cast<size_t>(cfg.max_body_bytes));
    m.http.set_keep_alive_timeout(2);
    // SO_REUSEADDR (a restart may bind at once) but not httplib's default SO_REUSEPORT, with
    // which a second server on the same port would bind silently and share the connections.
    m.http.set_socket_options([](int sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    m.routes();
    if (cfg.port == 0) {
        m.port = m.http.bind_to_any_port(cfg.host);
        if (m.port < 0) fail("cannot listen on {} (any port)", cfg.host);
    } else {
        if (!m.http.bind_to_port(cfg.host, cfg.port))
            fail("cannot listen on {}:{} (in use, or not an address of this machine)", cfg.host,
                 cfg.port);
        m.port = cfg.port;
    }
    if (!cfg.port_file.empty()) io::write_file_atomic(cfg.port_file, std::to_string(m.port) + "\n");
}

Server::~Server() {
    if (impl_) stop();
}

int Server::port() const { return impl_->port; }
const std::string& Server::model_name() const { return impl_->name; }

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() {
    std::call_once(impl_->stop_once, [&] { impl_->graceful_stop(); });
    impl_->scheduler->stop();
}

ServeSummary Server::summary() const {
    const SchedulerStats s = impl_->scheduler->stats();
    ServeSummary out;
    out.completed = s.completed;
    out.cancelled = s.cancelled;
    out.failed = s.failed;
    out.rejected = impl_->rejected.load();
    out.prompt_tokens = s.prompt_tokens;
    out.completion_tokens = s.completion_tokens;
    out.decode_steps = s.steps;
    out.decoded_rows = s.decoded_rows;
    out.mean_batch = s.steps > 0 ? static_cast<double>(s.decoded_rows) / s.steps : 0.0;
    out.seconds = std::chrono::duration<double>(Clock::now() - impl_->start).count();
    return out;
}

}  // namespace goose::serve
