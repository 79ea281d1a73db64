// Basic layers: Linear, LayerNorm, GroupNorm, Embedding. Initialisation follows PyTorch's
// defaults unless a model re-initialises them (RWKV-7 does, per its spec).
#pragma once
#include "goose/core/rng.h"
#include "goose/nn/module.h"

namespace goose::nn {

// y = x Wᵀ + b, W (out, in). Init: W, b ~ U(-1/sqrt(in), 1/sqrt(in)) (torch.nn.Linear).
class Linear : public Module {
public:
    Linear(int64_t in, int64_t out, bool bias, Rng& rng, DType dtype = DType::f32);
    Var forward(const Var& x) const;  // (..., in) -> (..., out)
    Var weight, bias;                 // (out, in), (out) or undefined
};

// Normalises the last axis; weight 1, bias 0 at init.
class LayerNorm : public Module {
public:
    explicit LayerNorm(int64_t c, double eps = 1e-5, bool affine = true, DType dtype = DType::f32);
    Var forward(const Var& x) const;  // (..., C) -> (..., C)
    Var weight, bias;
    double eps;
};

// Channels-last group norm over C = groups * (C / groups); weight 1, bias 0 at init.
class GroupNorm : public Module {
public:
    GroupNorm(int groups, int64_t c, double eps = 1e-5, bool affine = true,
              DType dtype = DType::f32);
    Var forward(const Var& x) const;  // (..., C) -> (..., C)
    Var weight, bias;
    int groups;
    double eps;
};

// Lookup table (V, C). Init N(0, 1) (torch.nn.Embedding).
class Embedding : public Module {
public:
    Embedding(int64_t vocab, int64_t c, Rng& rng, DType dtype = DType::f32);
    Var forward(const Tensor& ids) const;  // ids (...) i32/i64 -> (..., C)
    Var weight;
};

}  // namespace goose::nn
