// Device-side index checks for work captured into a CUDA graph (no CUDA headers): the check
// runs on the device and a failure is reported by cuda::check_device_errors() at the next sync.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "goose/core/tensor.h"

namespace goose::cuda_detail {

// Launches, on the current stream, a check that every element of `idx` (i32 or i64 on CUDA) is
// in [0, hi) or equals *ignore. A failure is reported as the goose::Error
// "<op>: <noun> <value> at position <[i, j]> of <idx.desc()> is outside [0, <hi>)<suffix>".
void check_indices_on_device(const Tensor& idx, int64_t hi, std::optional<int64_t> ignore,
                             const std::string& op, const std::string& noun,
                             const std::string& suffix);

// Makes the device record (before a capture: its allocation cannot be captured).
void prepare_device_checks();
// A graph holding checks was launched: check_device_errors() must read the record.
void device_checks_pending();

}  // namespace goose::cuda_detail
