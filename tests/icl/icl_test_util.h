// Helpers shared by the ICL tests: error-message checks and small statistics.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/expect_error.h"
#include "goose/core/error.h"
#include "goose/core/tensor.h"

namespace goose::icl::testing {

using goose::test::expect_error;

inline double mean_square(const Tensor& t) {
    double s = 0;
    const auto v = t.to_vector();
    for (double x : v) s += x * x;
    return s / static_cast<double>(v.size());
}

}  // namespace goose::icl::testing
