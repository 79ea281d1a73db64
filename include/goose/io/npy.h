// NumPy .npy arrays (format 1.0 written; 1.0, 2.0 and 3.0 read), little-endian, C order.
#pragma once
#include <string>

#include "goose/core/tensor.h"

namespace goose::io {

// Writes `t` (any strides; copied to C order) atomically. dtypes: f32 '<f4', f64 '<f8',
// f16 '<f2', i32 '<i4', i64 '<i8', u16 '<u2', u8 '|u1'; bf16 has no NumPy type: an error.
void save_npy(const std::string& path, const Tensor& t);

// Reads a C-order .npy of one of those dtypes into a new CPU tensor (at most 5 dimensions).
// A malformed header, fortran_order True, big-endian or other dtypes, or a data size that does
// not match the shape give a goose::Error naming the file.
Tensor load_npy(const std::string& path);

}  // namespace goose::io
