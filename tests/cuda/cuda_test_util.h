// Skip logic of the CUDA suite: every GPU test starts with GOOSE_REQUIRE_GPU(), which skips
// (with the reason) when this machine has no usable CUDA device, as on CI.
#pragma once
#include <gtest/gtest.h>

#include "goose/core/cuda.h"

#define GOOSE_REQUIRE_GPU()                                                                      \
    do {                                                                                         \
        if (!::goose::cuda::available())                                                         \
            GTEST_SKIP() << "no CUDA device on this machine (the CUDA tests run on a GPU host)"; \
    } while (0)
