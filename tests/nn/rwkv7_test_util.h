// Helpers shared by the RWKV-7 model tests.
#pragma once
#include <cmath>
#include <map>
#include <string>

#include "goose/core/rng.h"
#include "goose/models/rwkv7.h"

namespace goose::models::testing {

inline std::map<std::string, Var> params_by_name(const nn::Module& m) {
    std::map<std::string, Var> out;
    for (auto& [n, v] : m.named_parameters()) out.emplace(n, v);
    return out;
}

// After init_official, the zero-initialised matrices (att.output, ffn.value, the LoRA first
// matrices w1/a1/v1/g1) and the tiny embedding make parts of the model trivial (e.g. every
// block's output is zero). Replace them with random values of a moderate size so that tests
// exercise every path.
inline void randomise_zero_parts(Rwkv7& m, Rng& rng) {
    for (auto& [name, p] : m.named_parameters()) {
        const bool zero_matrix = name.ends_with("att.output.weight") ||
                                 name.ends_with("ffn.value.weight") || name.ends_with("att.w1") ||
                                 name.ends_with("att.a1") || name.ends_with("att.v1") ||
                                 name.ends_with("att.g1");
        if (zero_matrix) {
            const double std = 0.5 / std::sqrt(static_cast<double>(p.size(0)));
            p.value_mut().copy_(Tensor::randn(p.shape(), rng, DType::f64, 0.0, std));
        } else if (name == "emb.weight") {
            p.value_mut().copy_(Tensor::randn(p.shape(), rng, DType::f64, 0.0, 1.0));
        }
    }
}

// ids (B, T) i64 uniform in [0, V)
inline Tensor random_ids(int64_t b, int64_t t, int64_t vocab, Rng& rng) {
    std::vector<double> v(static_cast<size_t>(b * t));
    for (auto& x : v) x = static_cast<double>(rng.randint(0, vocab));
    return Tensor::from(Shape{b, t}, v, DType::i64);
}

}  // namespace goose::models::testing
