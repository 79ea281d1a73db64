// goose serve end to end: a small random RWKV-7 (byte vocabulary) served on 127.0.0.1, talked to
// with curl and Python's urllib: health, models, plain / streamed / chat completions (for one
// seed the same text each way, and as goose generate), 8 concurrent streams, malformed requests
// (4xx in OpenAI's error shape, the server keeps serving), a client gone mid-stream (its slot is
// freed), SIGTERM (in-flight streams finish, exit 0).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "goose/io/atomic_file.h"
#include "goose/models/rwkv7_checkpoint.h"

namespace goose {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string goose_bin() {
    const char* b = std::getenv("GOOSE_BIN");
    return b ? b : "./goose";
}
std::string client_script() {
    return std::string(GOOSE_TEST_SOURCE_DIR) + "/tests/e2e/serve_client.py";
}

// Runs argv (no shell); returns its exit status and stdout.
struct Output {
    int code = -1;
    std::string out;
};
// argv as execv wants it (built before fork: the child only calls async-signal-safe functions).
std::vector<char*> c_args(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    return args;
}

Output run_process(const std::vector<std::string>& argv) {
    std::vector<char*> args = c_args(argv);
    int fds[2];
    if (pipe(fds) != 0) return {};
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(fds[1]);
    Output o;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) o.out.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return o;
}

json python(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/python3", client_script()};
    argv.insert(argv.end(), args.begin(), args.end());
    const Output o = run_process(argv);
    EXPECT_EQ(o.code, 0) << o.out;
    try {
        return json::parse(o.out);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "client output is not JSON: " << o.out;
        return json::object();
    }
}

// A `goose serve` child process on a free port of 127.0.0.1.
class ServerProcess {
public:
    ServerProcess(const fs::path& dir, const std::vector<std::string>& extra) : dir_(dir) {
        const std::string port_file = (dir / "port").string(), log = (dir / "serve.log").string();
        fs::remove(port_file);
        std::vector<std::string> argv = {goose_bin(), "serve", "--port", "0", "--port-file",
                                         port_file};
        argv.insert(argv.end(), extra.begin(), extra.end());
        log_ = log;
        std::vector<char*> args = c_args(argv);
        pid_ = fork();
        if (pid_ == 0) {
            const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, 1);
            dup2(fd, 2);
            execv(args[0], args.data());
            _exit(127);
        }
        for (int i = 0; i < 600 && port_ == 0; ++i) {  // up to 60 s (a loaded build machine)
            std::this_thread::sleep_for(100ms);
            if (fs::exists(port_file)) port_ = std::stoi(io::read_file(port_file));
            int status;
            if (port_ == 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
        }
    }
    ~ServerProcess() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    bool ok() const { return port_ > 0; }
    int port() const { return port_; }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::string log() const { return fs::exists(log_) ? io::read_file(log_) : ""; }
    // Sends `sig` and waits (up to 60 s) for the exit status.
    int stop(int sig) {
        if (pid_ <= 0) return -1;
        kill(pid_, sig);
        int status = 0;
        for (int i = 0; i < 600; ++i) {
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(100ms);
        }
        return -2;
    }

private:
    fs::path dir_;
    std::string log_;
    pid_t pid_ = -1;
    int port_ = 0;
};

class Serve : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("goose_serve_" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        models::Rwkv7 m(models::Rwkv7Config::with_defaults(257, 2, 64, 32));
        Rng rng(11);
        m.init_official(rng);
        for (auto& [n, p] : m.named_parameters())
            p.value_mut().copy_(Tensor::randn(p.shape(), rng, DType::f32, 0, 0.3));
        model_ = (dir_ / "tiny.pth").string();
        models::save_rwkv7(m, model_, DType::f32);
        server_ = new ServerProcess(dir_, {"--model", model_, "--tokenizer", "byte", "--parallel",
                                           "4", "--max-body", "4096", "--max-prompt-tokens",
                                           "600", "--max-tokens-limit", "5000", "--quiet"});
    }
    static void TearDownTestSuite() {
        if (server_) {
            const int code = server_->stop(SIGTERM);
            if (code != 0) ADD_FAILURE() << "goose serve exited with " << code << "\n" << server_->log();
            delete server_;
            server_ = nullptr;
        }
        fs::remove_all(dir_);
    }
    void SetUp() override { ASSERT_TRUE(server_ && server_->ok()) << server_->log(); }

    static json post(const std::string& path, const json& body) {
        return python({"request", "POST", server_->url(path), body.dump()});
    }
    static json get(const std::string& path) { return python({"request", "GET", server_->url(path)}); }
    static json health() { return get("/health")["body"]; }
    // Waits until no slot is busy; returns the last /health body.
    static json wait_idle() {
        json h;
        for (int i = 0; i < 100; ++i) {
            h = health();
            if (h["slots_active"] == 0 && h["requests_queued"] == 0) break;
            std::this_thread::sleep_for(100ms);
        }
        return h;
    }
    // The text of a streamed completion; checks the SSE framing on the way.
    static std::string streamed_text(const json& r, bool chat, json* last = nullptr) {
        EXPECT_EQ(r["status"], 200) << r.dump();
        EXPECT_EQ(r["content_type"], "text/event-stream") << r.dump();
        const json& ev = r["events"];
        EXPECT_GE(ev.size(), 2u) << r.dump();
        if (ev.size() < 2) return "";
        EXPECT_EQ(ev.back(), "[DONE]");
        std::string text;
        for (size_t i = 0; i + 1 < ev.size(); ++i) {
            const json& e = ev[i];
            EXPECT_FALSE(e.contains("error")) << e.dump();
            if (e["choices"].empty()) continue;  // the usage chunk
            const json& c = e["choices"][0];
            if (chat)
                text += c["delta"].value("content", "");
            else
                text += c["text"].get<std::string>();
            if (!c["finish_reason"].is_null() && last) *last = e;
            EXPECT_EQ(e["object"], chat ? "chat.completion.chunk" : "text_completion");
        }
        return text;
    }
    static void expect_error(const json& r, int status, const std::string& part,
                             const std::string& param = "") {
        EXPECT_EQ(r["status"], status) << r.dump();
        EXPECT_EQ(r["content_type"], "application/json") << r.dump();
        ASSERT_TRUE(r["body"].is_object() && r["body"].contains("error")) << r.dump();
        const json& e = r["body"]["error"];
        EXPECT_NE(e["message"].get<std::string>().find(part), std::string::npos) << r.dump();
        EXPECT_TRUE(e["type"].is_string()) << r.dump();
        if (!param.empty()) {
            EXPECT_EQ(e["param"], param) << r.dump();
        }
    }

    static inline fs::path dir_;
    static inline std::string model_;
    static inline ServerProcess* server_ = nullptr;
};

TEST_F(Serve, HealthAndModels) {
    const json h = get("/health");
    EXPECT_EQ(h["status"], 200);
    EXPECT_EQ(h["body"]["status"], "ok");
    EXPECT_EQ(h["body"]["slots_total"], 4);
    EXPECT_EQ(h["body"]["model"], "tiny");
    const json m = get("/v1/models");
    EXPECT_EQ(m["body"]["object"], "list");
    EXPECT_EQ(m["body"]["data"][0]["id"], "tiny");
    EXPECT_EQ(get("/v1/models/tiny")["body"]["id"], "tiny");
    expect_error(get("/v1/models/other"), 404, "does not exist");
    expect_error(get("/v1/nothing"), 404, "no endpoint GET /v1/nothing");
}

TEST_F(Serve, PortInUseIsAClearError) {
    const std::string port = std::to_string(server_->port());
    // (timeout: a server that did bind would serve until killed)
    const Output o = run_process({"sh", "-c", "timeout 60 " + goose_bin() + " serve --model " +
                                                  model_ + " --port " + port + " 2>&1"});
    EXPECT_EQ(o.code, 1) << o.out;
    EXPECT_NE(o.out.find("goose: error: cannot listen on 127.0.0.1:" + port), std::string::npos)
        << o.out;
}

TEST_F(Serve, PlainCompletionWithCurl) {
    const std::string body =
        R"({"model": "tiny", "prompt": "Hello", "max_tokens": 24, "temperature": 0.9, "seed": 3})";
    auto curl = [&] {
        const Output o = run_process({"curl", "-s", "-X", "POST", "-H",
                                      "Content-Type: application/json", "-d", body,
                                      server_->url("/v1/completions")});
        EXPECT_EQ(o.code, 0);
        return json::parse(o.out);
    };
    const json a = curl();
    EXPECT_EQ(a["object"], "text_completion") << a.dump();
    EXPECT_EQ(a["model"], "tiny");
    EXPECT_EQ(a["id"].get<std::string>().rfind("cmpl-", 0), 0u);
    const json& c = a["choices"][0];
    const std::string finish = c["finish_reason"];
    const json& u = a["usage"];
    EXPECT_EQ(u["prompt_tokens"], 5);  // byte tokenizer: one token per byte
    if (finish == "length") {
        EXPECT_EQ(u["completion_tokens"], 24);
    } else {
        EXPECT_LT(u["completion_tokens"].get<int>(), 24);  // end of document
    }
    EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
    EXPECT_FALSE(c["text"].get<std::string>().empty());
    // Same seed, same text (twice, and through urllib); the prompt as token ids too.
    const json b = curl();
    EXPECT_EQ(b["choices"][0]["text"], c["text"]);
    EXPECT_NE(b["id"], a["id"]);
    const json ids = post("/v1/completions", {{"prompt", {'H' + 1, 'e' + 1, 'l' + 1, 'l' + 1,
                                                          'o' + 1}},
                                              {"max_tokens", 24}, {"temperature", 0.9},
                                              {"seed", 3}});
    EXPECT_EQ(ids["body"]["choices"][0]["text"], c["text"]) << ids.dump();
    // The same text as `goose generate` with the same options (one sampler, one engine).
    const Output gen = run_process({goose_bin(), "generate", "--model", model_, "--tokenizer",
                                    "byte", "--prompt", "Hello", "--max-tokens", "24",
                                    "--temperature", "0.9", "--seed", "3", "--quiet"});
    EXPECT_EQ(gen.code, 0) << gen.out;
    EXPECT_EQ(gen.out, c["text"].get<std::string>());
}

TEST_F(Serve, StreamedCompletionEqualsThePlainOne) {
    const json req = {{"prompt", "Once upon"}, {"max_tokens", 40}, {"temperature", 1.0},
                      {"top_p", 0.9}, {"seed", 17}};
    const json plain = post("/v1/completions", req);
    ASSERT_EQ(plain["status"], 200) << plain.dump();
    json sreq = req;
    sreq["stream"] = true;
    sreq["stream_options"] = {{"include_usage", true}};
    const json r = python({"stream", server_->url("/v1/completions"), sreq.dump()});
    json last;
    EXPECT_EQ(streamed_text(r, false, &last), plain["body"]["choices"][0]["text"]);
    EXPECT_EQ(last["choices"][0]["finish_reason"], plain["body"]["choices"][0]["finish_reason"]);
    const json& ev = r["events"];
    ASSERT_GE(ev.size(), 3u);
    const json& usage = ev[ev.size() - 2];  // the usage chunk precedes [DONE]
    EXPECT_TRUE(usage["choices"].empty()) << usage.dump();
    EXPECT_EQ(usage["usage"], plain["body"]["usage"]);
    EXPECT_GE(ev.size(), 4u);  // streamed in pieces, not all at once
}

TEST_F(Serve, StreamedWithCurl) {
    const Output o = run_process(
        {"curl", "-s", "-N", "-X", "POST", "-H", "Content-Type: application/json", "-d",
         R"({"prompt": "abc", "max_tokens": 10, "stream": true, "seed": 1})",
         server_->url("/v1/completions")});
    EXPECT_EQ(o.code, 0);
    EXPECT_EQ(o.out.rfind("data: {", 0), 0u) << o.out;
    const std::string done = "data: [DONE]\n\n";
    ASSERT_GE(o.out.size(), done.size());
    EXPECT_EQ(o.out.substr(o.out.size() - done.size()), done);
}

TEST_F(Serve, ChatCompletion) {
    const json req = {{"model", "tiny"},
                      {"messages", {{{"role", "system"}, {"content", "Be brief."}},
                                    {{"role", "user"}, {"content", "Hi"}}}},
                      {"max_tokens", 30},
                      {"seed", 5}};
    const json r = post("/v1/chat/completions", req);
    ASSERT_EQ(r["status"], 200) << r.dump();
    const json& b = r["body"];
    EXPECT_EQ(b["object"], "chat.completion");
    EXPECT_EQ(b["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(b["usage"]["prompt_tokens"],
              std::string("System: Be brief.\n\nUser: Hi\n\nAssistant:").size());
    const std::string content = b["choices"][0]["message"]["content"];
    EXPECT_EQ(content.find("\n\nUser:"), std::string::npos);
    if (!content.empty()) {
        EXPECT_NE(content[0], ' ');
    }
    json sreq = req;
    sreq["stream"] = true;
    const json s = python({"stream", server_->url("/v1/chat/completions"), sreq.dump()});
    EXPECT_EQ(streamed_text(s, true), content);
    EXPECT_EQ(s["events"][0]["choices"][0]["delta"]["role"], "assistant");
}

TEST_F(Serve, EightConcurrentStreamsAreAllCorrect) {
    std::vector<std::string> bodies;
    std::vector<std::string> alone;
    for (int i = 0; i < 8; ++i) {
        const json req = {{"prompt", "Client " + std::to_string(i) + " says"},
                          {"max_tokens", 48}, {"temperature", 0.8}, {"seed", 100 + i}};
        const json r = post("/v1/completions", req);
        ASSERT_EQ(r["status"], 200) << r.dump();
        alone.push_back(r["body"]["choices"][0]["text"]);
        json s = req;
        s["stream"] = true;
        bodies.push_back(s.dump());
    }
    std::vector<std::string> args = {"concurrent", server_->url("/v1/completions")};
    args.insert(args.end(), bodies.begin(), bodies.end());
    const json all = python(args);
    ASSERT_EQ(all["results"].size(), 8u);
    for (size_t i = 0; i < 8; ++i)  // batched with others, the same text as alone
        EXPECT_EQ(streamed_text(all["results"][i], false), alone[i]) << "client " << i;
    const json h = wait_idle();
    EXPECT_EQ(h["slots_active"], 0);
    EXPECT_EQ(h["requests_failed"], 0);
}

TEST_F(Serve, BadRequestsAre4xxAndTheServerKeepsServing) {
    const std::string url = server_->url("/v1/completions");
    expect_error(python({"request", "POST", url, "{\"prompt\": \"x\""}), 400, "not valid JSON");
    expect_error(post("/v1/completions", {{"prompt", "x"}, {"temprature", 1}}), 400,
                 "unknown field 'temprature'", "temprature");
    // Python writes NaN for float('nan'): not JSON.
    expect_error(python({"request", "POST", url, R"({"prompt": "x", "temperature": NaN})"}), 400,
                 "not valid JSON");
    expect_error(post("/v1/completions", {{"prompt", "x"}, {"temperature", -1}}), 400,
                 "'temperature' must be a finite number", "temperature");
    expect_error(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", -5}}), 400,
                 "'max_tokens' must be in [1, 5000], got -5", "max_tokens");
    expect_error(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 5001}}), 400,
                 "[1, 5000]", "max_tokens");
    expect_error(post("/v1/completions", {{"prompt", {1, 2, 257}}}), 400,
                 "prompt token 2 (id 257) is out of range [0, 257)", "prompt");
    expect_error(post("/v1/completions", {{"prompt", "x"}, {"model", "gpt-4"}}), 404,
                 "model 'gpt-4' does not exist");
    expect_error(post("/v1/completions", {{"prompt", std::string(700, 'a')}}), 400,
                 "the prompt has 700 tokens; this server takes at most 600");
    expect_error(post("/v1/chat/completions", {{"messages", json::array()}}), 400,
                 "non-empty array", "messages");
    // Invalid UTF-8, sent as raw bytes.
    const std::string bad = (dir_ / "bad_utf8.json").string();
    io::write_file_atomic(bad, std::string("{\"prompt\": \"caf\xC3\x28\"}"));
    expect_error(python({"request", "POST", url, "@" + bad}), 400, "not valid UTF-8");
    // Over the 4096-byte body limit: with a length (curl), and chunked.
    const std::string big = (dir_ / "big.json").string();
    io::write_file_atomic(big, "{\"prompt\": \"" + std::string(5000, 'a') + "\"}");
    for (bool chunked : {false, true}) {
        std::vector<std::string> argv = {"curl", "-s", "-w", "\n%{http_code}", "-X", "POST", "-H",
                                         "Content-Type: application/json", "--data-binary",
                                         "@" + big, url};
        if (chunked) argv.insert(argv.begin() + 1, {"-H", "Transfer-Encoding: chunked"});
        const Output o = run_process(argv);
        const size_t nl = o.out.rfind('\n');
        ASSERT_NE(nl, std::string::npos) << o.out;
        EXPECT_EQ(o.out.substr(nl + 1), "413") << (chunked ? "chunked: " : "") << o.out;
        const json e = json::parse(o.out.substr(0, nl));
        EXPECT_NE(e["error"]["message"].get<std::string>().find("larger than the limit of 4096"),
                  std::string::npos)
            << o.out;
    }
    expect_error(get("/v1/completions"), 405, "GET /v1/completions is not supported");
    expect_error(python({"request", "PUT", url, "{}"}), 405, "PUT /v1/completions is not supported");
    // Still serving, nothing leaked.
    const json ok = post("/v1/completions", {{"prompt", "fine"}, {"max_tokens", 3}});
    EXPECT_EQ(ok["status"], 200) << ok.dump();
    const json h = wait_idle();
    EXPECT_EQ(h["status"], "ok");
    EXPECT_EQ(h["slots_active"], 0);
}

TEST_F(Serve, ClientGoneMidStreamFreesItsSlot) {
    const json before = wait_idle();
    const json r = python({"disconnect", server_->url("/v1/completions"),
                           json({{"prompt", "Long"}, {"max_tokens", 5000}, {"ignore_eos", true},
                                 {"stream", true}})
                               .dump(),
                           "3"});
    EXPECT_EQ(r["status"], 200);
    EXPECT_EQ(r["events_read"], 3);
    const json h = wait_idle();
    EXPECT_EQ(h["slots_active"], 0) << h.dump();
    EXPECT_EQ(h["requests_cancelled"].get<int>(), before["requests_cancelled"].get<int>() + 1)
        << h.dump();
    // Cut short: far fewer than the 5000 tokens asked for.
    EXPECT_LT(h["completion_tokens"].get<int>(), before["completion_tokens"].get<int>() + 4000);
    const json ok = post("/v1/completions", {{"prompt", "after"}, {"max_tokens", 3}});
    EXPECT_EQ(ok["status"], 200) << ok.dump();
}

TEST(ServeLifecycle, SigtermLetsInFlightStreamsFinishThenExitsZero) {
    const fs::path dir = fs::temp_directory_path() / ("goose_serve_term_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    models::Rwkv7 m(models::Rwkv7Config::with_defaults(257, 2, 64, 32));
    Rng rng(2);
    m.init_official(rng);
    const std::string model = (dir / "term.pth").string();
    models::save_rwkv7(m, model, DType::f32);
    {
        ServerProcess server(dir, {"--model", model, "--tokenizer", "byte", "--parallel", "2",
                                   "--shutdown-grace", "30"});
        ASSERT_TRUE(server.ok()) << server.log();
        // A stream of 200 tokens in the background; SIGTERM once it is under way.
        json result;
        std::thread client([&] {
            result = python({"stream", server.url("/v1/completions"),
                             json({{"prompt", "x"}, {"max_tokens", 200}, {"stream", true},
                                   {"seed", 1}}).dump()});
        });
        for (int i = 0; i < 200; ++i) {
            const json h = python({"request", "GET", server.url("/health")});
            if (h["body"].value("completion_tokens", 0) > 0) break;
            std::this_thread::sleep_for(50ms);
        }
        EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
        client.join();
        ASSERT_EQ(result["status"], 200) << result.dump();
        const json& ev = result["events"];
        ASSERT_GE(ev.size(), 2u) << result.dump();
        EXPECT_EQ(ev.back(), "[DONE]");
        const json& last = ev[ev.size() - 2];
        EXPECT_FALSE(last.contains("error")) << last.dump();  // finished, not cut
        const std::string log = server.log();
        EXPECT_NE(log.find("SIGTERM"), std::string::npos) << log;
        EXPECT_NE(log.find("completed"), std::string::npos) << log;
        // Closed: a new connection is refused.
        const Output o = run_process({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                      server.url("/health")});
        EXPECT_NE(o.code, 0);
    }
    fs::remove_all(dir);
}

}  // namespace
}  // namespace goose
