// PyTorch .pth checkpoints (the zip container torch.save writes for a state dict; spec §7.3).
#pragma once
#include <string>

#include "goose/nn/module.h"

namespace goose::io {

using nn::StateDict;

// Reads a state dict saved by torch.save (torch >= 1.6 zip format, stored entries). The file is
// memory-mapped and tensors are views of the mapping (copy-on-write pages: writing to a tensor
// never touches the file); a storage is copied only when it is not aligned for its dtype.
// Storage offsets and strides are honoured, tensors that shared a storage share it again, and a
// leading "_forward_module." is stripped from keys. dtypes: bf16, f16, f32, f64, i32, i64, u8.
// Anything unexpected (bad zip, compressed entry, missing data.pkl or storage, unknown pickle
// opcode or global, storage too small, truncation) is a goose::Error naming the file.
StateDict load_pth(const std::string& path);

// Writes `sd` the way torch.save writes a state dict with torch 2.x: a zip of stored entries
// under "<stem>/", data.pkl (protocol 2, an OrderedDict of _rebuild_tensor_v2 over one storage
// per tensor, saved contiguous), .format_version, .storage_alignment, byteorder, data/<i>
// (64-byte aligned), version, .data/serialization_id. Written atomically (temporary + rename).
// dtypes: bf16, f16, f32, f64, i32, i64, u8 (u16 has no PyTorch storage class: an error).
void save_pth(const std::string& path, const StateDict& sd);

}  // namespace goose::io
