// The device-side index check kernel (raw pointers, no goose or CUDA headers): the first
// out-of-range index seen is written to a DeviceCheckRecord in device memory.
#pragma once
#include <cstdint>

namespace goose::cuda_detail {

struct DeviceCheckRecord {
    int32_t site = 0;  // 0: no failure; else the failed check's site (see device_check.cpp)
    int32_t pad = 0;
    int64_t value = 0;     // the offending index
    int64_t position = 0;  // its flat position
};

// Records (once per record) the first i < n found with idx[i] outside [0, hi) and, when
// use_ignore, idx[i] != ignore. idx: packed i64 (i64) or i32. stream: a cudaStream_t.
// Returns false when the launch failed.
bool launch_index_check(const void* idx, bool i64, int64_t n, int64_t hi, bool use_ignore,
                        int64_t ignore, int32_t site, DeviceCheckRecord* record, void* stream);

}  // namespace goose::cuda_detail
