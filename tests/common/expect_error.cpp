// The shared error-message expectation of the test suites.
#include "common/expect_error.h"

#include <gtest/gtest.h>

#include "goose/core/error.h"

namespace goose::test {

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
    try {
        f();
        ADD_FAILURE() << "no goose::Error thrown; expected one mentioning '"
                      << (parts.empty() ? std::string() : parts[0]) << "'";
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const auto& p : parts)
            EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    }
}

}  // namespace goose::test
