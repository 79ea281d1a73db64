// Inputs and functions of the fused RWKV-7 function tests, shared by the CPU suite
// (tests/nn/test_fused.cpp: fast CPU vs composed) and the CUDA one (tests/cuda/test_cuda_fused.cpp:
// CUDA f32/bf16 vs the f64 reference): each case is a function of Vars, its f64 inputs
// (undefined where a tensor is absent) and a name.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "goose/autograd.h"
#include "goose/core/rng.h"
#include "models/fused.h"

namespace goose::models::fused::test_cases {

using Fn = std::function<std::vector<Var>(const std::vector<Var>&)>;

struct Case {
    std::string name;
    Fn fn;
    std::vector<Tensor> inputs;
};

inline Tensor randn(const Shape& s, Rng& rng, double std = 1.0) {
    return Tensor::randn(s, rng, DType::f64, 0.0, std);
}

// token_mix of x (B, T, C) with M mixing vectors, prev (B, C) or none.
inline Case token_mix_case(int64_t b, int64_t t, int64_t c, int64_t m, bool with_prev, Rng& rng) {
    std::vector<Tensor> in{randn(Shape{b, t, c}, rng),
                           with_prev ? randn(Shape{b, c}, rng) : Tensor()};
    for (int64_t i = 0; i < m; ++i) in.push_back(randn(Shape{1, 1, c}, rng, 0.5));
    return {"token_mix B" + std::to_string(b) + " T" + std::to_string(t) + " C" +
                std::to_string(c) + " M" + std::to_string(m) + (with_prev ? " prev" : ""),
            [](const std::vector<Var>& v) {
                return token_mix(v[0], v[1], std::vector<Var>(v.begin() + 2, v.end()));
            },
            std::move(in)};
}

// add_layer_norm_mix of x, a (B, T, C) with ln weight and bias, one mixing vector, prev (B, C)
// or none; outputs sum and mixed.
inline Case ln_mix_case(int64_t b, int64_t t, int64_t c, bool with_prev, Rng& rng) {
    std::vector<Tensor> in{randn(Shape{b, t, c}, rng),      randn(Shape{b, t, c}, rng),
                           randn(Shape{c}, rng, 0.5),       randn(Shape{c}, rng, 0.5),
                           randn(Shape{1, 1, c}, rng, 0.5), with_prev ? randn(Shape{b, c}, rng)
                                                                      : Tensor()};
    return {"add_layer_norm_mix B" + std::to_string(b) + " T" + std::to_string(t) + " C" +
                std::to_string(c) + (with_prev ? " prev" : ""),
            [](const std::vector<Var>& v) {
                const AddNormMix r = add_layer_norm_mix(v[0], v[1], v[2], v[3], 1e-5, v[4], v[5]);
                return std::vector<Var>{r.sum, r.mixed};
            },
            std::move(in)};
}

// rwkv7_prep of H heads of N channels, with the v gate (layers > 0) or without; one head of
// one row of k_raw is zero (its norm is clamped to eps).
inline Case prep_case(int64_t b, int64_t t, int64_t h, int64_t n, bool gate, Rng& rng) {
    const int64_t c = h * n;
    const Shape flat{b, t, c}, vec{1, 1, c};
    Tensor k_raw = randn(flat, rng);
    for (int64_t j = 0; j < n; ++j) k_raw.data<double>()[j] = 0;
    std::vector<Tensor> in{randn(flat, rng),       k_raw,
                           randn(flat, rng),       randn(flat, rng),
                           gate ? randn(flat, rng) : Tensor(),
                           gate ? randn(flat, rng) : Tensor(),
                           randn(vec, rng),        randn(vec, rng),
                           gate ? randn(vec, rng) : Tensor(),
                           randn(vec, rng, 0.5),   randn(vec, rng, 0.5)};
    return {"rwkv7_prep H" + std::to_string(h) + " N" + std::to_string(n) + (gate ? " gate" : ""),
            [n](const std::vector<Var>& v) {
                const Rwkv7Prep p = rwkv7_prep(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                                               v[8], v[9], v[10], n);
                return std::vector<Var>{p.w, p.k, p.v, p.a, p.b};
            },
            std::move(in)};
}

// rwkv7_out of y (B, T, H, N) with r, k, v, g (B, T, C), r_k (H, N), ln_x's w and b (C).
inline Case out_case(int64_t b, int64_t t, int64_t h, int64_t n, Rng& rng) {
    const int64_t c = h * n;
    const Shape flat{b, t, c};
    std::vector<Tensor> in{randn(Shape{b, t, h, n}, rng), randn(flat, rng), randn(flat, rng),
                           randn(flat, rng),   randn(Shape{h, n}, rng, 0.5),
                           randn(Shape{c}, rng), randn(Shape{c}, rng), randn(flat, rng)};
    return {"rwkv7_out H" + std::to_string(h) + " N" + std::to_string(n),
            [](const std::vector<Var>& v) {
                return std::vector<Var>{
                    rwkv7_out(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], 64e-5)};
            },
            std::move(in)};
}

}  // namespace goose::models::fused::test_cases
