// `goose serve` as a program: SIGTERM/SIGINT become a graceful stop (through a self-pipe read by
// a watcher thread), the address is printed when ready, a summary table at the end.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <thread>

#include <fmt/format.h>

#include "goose/core/error.h"
#include "goose/serve/server.h"

namespace goose::serve {

namespace {

int g_signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int sig) {
    const char c = static_cast<char>(sig);
    const int saved = errno;
    [[maybe_unused]] const ssize_t n = ::write(g_signal_pipe[1], &c, 1);
    errno = saved;
}

const char* signal_name(int sig) {
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "stop";
}

}  // namespace

void run_serve(const ServeConfig& cfg) {
    Server server(cfg);
    if (::pipe(g_signal_pipe) != 0) fail("cannot create the signal pipe (errno {})", errno);
    struct sigaction sa {}, old_term{}, old_int{};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);

    std::thread watcher([&] {
        char c = 0;
        ssize_t n;
        do {
            n = ::read(g_signal_pipe[0], &c, 1);
        } while (n < 0 && errno == EINTR);
        if (n == 1 && c != 0)
            fmt::print(stderr, "goose serve: {}: finishing in-flight requests (up to {:g} s)\n",
                       signal_name(c), cfg.shutdown_grace_s);
        server.stop();
    });
    fmt::print("goose serve: model '{}', {} slots, listening on http://{}:{}\n",
               server.model_name(), cfg.parallel, cfg.host, server.port());
    std::fflush(stdout);
    server.run();
    // run() returns after stop(); wake the watcher if it was not a signal that stopped us.
    const char zero = 0;
    [[maybe_unused]] const ssize_t n = ::write(g_signal_pipe[1], &zero, 1);
    watcher.join();
    sigaction(SIGTERM, &old_term, nullptr);
    sigaction(SIGINT, &old_int, nullptr);
    ::close(g_signal_pipe[0]);
    ::close(g_signal_pipe[1]);

    const ServeSummary s = server.summary();
    fmt::print(stderr,
               "goose serve: stopped after {:.1f} s\n"
               "  requests   completed {:>8}  cancelled {:>6}  failed {:>6}  rejected {:>6}\n"
               "  tokens     prompt {:>11}  completion {:>9}  ({:.1f} completion tok/s overall)\n"
               "  batching   decode steps {:>5}  mean batch {:.2f}\n",
               s.seconds, s.completed, s.cancelled, s.failed, s.rejected, s.prompt_tokens,
               s.completion_tokens, s.seconds > 0 ? s.completion_tokens / s.seconds : 0.0,
               s.decode_steps, s.mean_batch);
}

}  // namespace goose::serve
