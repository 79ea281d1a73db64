// expect_error(f, parts): f must throw goose::Error whose message contains every part.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace goose::test {

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts);
inline void expect_error(const std::function<void()>& f, const char* part) {
    expect_error(f, std::vector<std::string>{part});
}

}  // namespace goose::test
