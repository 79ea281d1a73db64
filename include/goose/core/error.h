// goose::Error (bad user input: a message that names what was wrong and what to do) and
// GOOSE_ASSERT (a broken internal invariant: file:line, then abort).
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace goose {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// An allocation the device (or host) could not satisfy: callers that know what to change (a
// smaller batch, checkpointing) catch it to say so.
class OutOfMemory : public Error {
public:
    using Error::Error;
};

// Throws goose::Error with a fmt-formatted message.
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
    throw Error(fmt::format(f, std::forward<Args>(args)...));
}

[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace goose

// Internal invariant: prints file:line and the message, then aborts. Never for user input.
#define GOOSE_ASSERT(cond, ...)                                                             \
    do {                                                                                    \
        if (!(cond)) ::goose::assert_fail(#cond, __FILE__, __LINE__, fmt::format("" __VA_ARGS__)); \
    } while (0)

// User-facing check: throws goose::Error with the formatted message when cond is false.
#define GOOSE_CHECK(cond, ...)                                \
    do {                                                      \
        if (!(cond)) ::goose::fail(__VA_ARGS__);              \
    } while (0)
