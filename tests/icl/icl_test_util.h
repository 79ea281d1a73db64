// Helpers shared by the ICL tests: error-message checks and small statistics.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "goose/core/error.h"
#include "goose/core/tensor.h"

namespace goose::icl::testing {

// Runs fn, expects goose::Error, and checks that the message holds every one of `parts`.
template <class Fn>
void expect_error(Fn fn, std::initializer_list<const char*> parts) {
    try {
        fn();
        ADD_FAILURE() << "no goose::Error thrown";
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const char* p : parts)
            EXPECT_NE(msg.find(p), std::string::npos)
                << "message \"" << msg << "\" lacks \"" << p << "\"";
    }
}

inline double mean_square(const Tensor& t) {
    double s = 0;
    const auto v = t.to_vector();
    for (double x : v) s += x * x;
    return s / static_cast<double>(v.size());
}

}  // namespace goose::icl::testing
