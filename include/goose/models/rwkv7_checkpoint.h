// Opening RWKV-7 checkpoints: official .pth files (torch.save state dicts) and safetensors
// files with the official or the Hugging Face / FLA names; the format is detected from the
// file's first bytes, the names from the keys.
#pragma once
#include <memory>
#include <string>

#include "goose/models/rwkv7.h"

namespace goose::models {

enum class CheckpointFormat { pth, safetensors };

struct CheckpointInfo {
    CheckpointFormat format;
    bool hf_names;      // the file used HF/FLA names (converted to the official ones)
    std::string dtypes;  // the tensors' dtypes in the file, e.g. "bf16" or "f32, f16"
    int64_t tensors;
};

// The state dict under official names. goose::Error for unreadable or unknown files.
nn::StateDict load_rwkv7_state_dict(const std::string& path, CheckpointInfo* info = nullptr);
// infer_config + construct + load in `dtype` (f32 or f64).
std::unique_ptr<Rwkv7> load_rwkv7(const std::string& path, DType dtype = DType::f32,
                                  CheckpointInfo* info = nullptr);
// Writes the model's parameters converted to `file_dtype`; .safetensors -> safetensors
// (official names unless hf_names), anything else -> .pth as torch.save writes it.
void save_rwkv7(const Rwkv7& model, const std::string& path, DType file_dtype = DType::bf16,
                bool hf_names = false);

}  // namespace goose::models
