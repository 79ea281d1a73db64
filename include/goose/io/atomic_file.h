// Atomic file writes: write to a temporary beside the target, fsync, rename. A crash leaves
// either the old file or the new one under the final name, never a half-written one.
#pragma once
#include <string>
#include <string_view>

namespace goose::io {

void write_file_atomic(const std::string& path, std::string_view bytes);
std::string read_file(const std::string& path);  // goose::Error naming the path on failure

}  // namespace goose::io
