// Private helpers of the RWKV-7 model: the deterministic initial values of spec §9.
#pragma once
#include <string_view>
#include <vector>

#include "goose/models/rwkv7.h"

namespace goose::models::detail {

// The §9 initial value of a per-channel vector parameter of layer `layer`, C values:
// which = "x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "v0", "k_k", "k_a" (att) or
// "ffn.x_k". goose::Error for another name.
std::vector<double> init_vector(const Rwkv7Config& cfg, int layer, std::string_view which);

// Sets every parameter whose §9 value involves no randomness: the vectors above, r_k, the
// norms (weight 1, bias 0; ln_x weight ((l+1)/L)^0.7) and the zero matrices (w1, a1, v1, g1,
// att.output, ffn.value). Random tensors are left untouched.
void init_deterministic(Rwkv7& m);

}  // namespace goose::models::detail
