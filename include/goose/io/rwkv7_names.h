// RWKV-7 parameter names: official (BlinkDL .pth) <-> FLA / Hugging Face (spec §7.4).
#pragma once
#include "goose/nn/module.h"

namespace goose::io {

using nn::StateDict;

// FLA/HF names to official ones: LoRA matrices transposed back to [in, out] (contiguous copies),
// w0/a0/v0 biases, k_k, k_a and ffn.x_k reshaped from [C] to [1, 1, C]; other tensors are shared
// unchanged. Keys without the "model." prefix (a bare RWKV7Model) are accepted. Unknown keys or
// unexpected shapes are a goose::Error naming them.
StateDict rwkv7_from_hf(const StateDict& hf);

// Official names to FLA/HF ones (the inverse). blocks.0.att.v0/v1/v2 (unused in layer 0, absent
// from FLA models) are dropped. Unknown keys are a goose::Error naming them.
StateDict rwkv7_to_hf(const StateDict& official);

// True when the dict uses FLA/HF names (model.embeddings.weight, model.layers.*, ...).
bool is_hf_rwkv7(const StateDict& sd);

}  // namespace goose::io
