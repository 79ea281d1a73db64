// safetensors files: 8-byte little-endian header length, a JSON header, then raw tensor bytes.
#pragma once
#include <map>
#include <string>

#include "goose/nn/module.h"

namespace goose::io {

using nn::StateDict;

// Memory-maps `path` (copy-on-write) and returns views of it (a tensor whose bytes are not
// aligned for its dtype is copied). dtypes BF16, F16, F32, F64, I32, I64, U8, U16. The header
// and every data_offsets pair are validated; "__metadata__" is ignored. Errors name the file.
StateDict load_safetensors(const std::string& path);

// Writes `sd` atomically; `metadata` becomes the "__metadata__" string map (omitted if empty).
// Tensors are laid out by decreasing element size, then by name, so every one is aligned.
void save_safetensors(const std::string& path, const StateDict& sd,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace goose::io
