// A multi-layer LSTM (torch.nn.LSTM, batch_first, no dropout) built from autograd ops one time
// step at a time. Used as the ICL lab's "lstm" backbone.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "goose/core/rng.h"
#include "goose/nn/module.h"

namespace goose::models {

struct LstmConfig {
    int64_t n_layer = 1;
    int64_t n_embd = 64;  // input and hidden width C
};

// Layer l holds PyTorch's parameters: weight_ih (4C, C), weight_hh (4C, C), bias_ih (4C),
// bias_hh (4C), gates in the order i, f, g, o, all U(-1/sqrt(C), 1/sqrt(C)) (torch's init).
// Per step: gates = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh, i.e. one linear map of
// concat(x_t, h_{t-1}); c = σ(f)·c + σ(i)·tanh(g), h = σ(o)·tanh(c).
class LstmLayer : public nn::Module {
public:
    LstmLayer(int64_t c, Rng& rng);
    Var forward(const Var& x) const;  // (B, T, C) -> (B, T, C), zero initial state
    Var weight_ih, weight_hh, bias_ih, bias_hh;
};

class Lstm : public nn::Module {
public:
    Lstm(const LstmConfig& cfg, Rng& rng);  // goose::Error naming the field when a size is < 1
    Var forward(const Var& x) const;        // (B, T, C) -> (B, T, C): the last layer's h_t
    const LstmConfig& config() const { return cfg_; }

private:
    LstmConfig cfg_;
    std::shared_ptr<nn::ModuleList> layers_;
};

}  // namespace goose::models
