// Counts allocations through operator new in the test_nn binary (the replacement in
// alloc_counter.cpp is program-wide and only adds a relaxed atomic increment).
#pragma once
#include <cstdint>

namespace goose::test {

int64_t allocation_count();

}  // namespace goose::test
