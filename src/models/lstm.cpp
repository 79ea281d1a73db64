// Multi-layer LSTM from autograd ops: the input projection of every step in one matmul, then
// the recurrent projection and the fused cell update step by step.
#include "goose/models/lstm.h"

#include <cmath>

#include "goose/autograd.h"
#include "models/fused.h"

namespace goose::models {

LstmLayer::LstmLayer(int64_t c, Rng& rng) {
    const double k = 1.0 / std::sqrt(static_cast<double>(c));
    auto u = [&](const Shape& s) { return Tensor::uniform(s, rng, DType::f32, -k, k); };
    weight_ih = register_parameter("weight_ih", u(Shape{4 * c, c}));
    weight_hh = register_parameter("weight_hh", u(Shape{4 * c, c}));
    bias_ih = register_parameter("bias_ih", u(Shape{4 * c}));
    bias_hh = register_parameter("bias_hh", u(Shape{4 * c}));
}

Var LstmLayer::forward(const Var& x) const {
    const int64_t b = x.size(0), t = x.size(1), c = x.size(2);
    if (c * 4 != weight_ih.size(0))
        fail("Lstm: input must be (B, T, C = {}), got {}", weight_ih.size(1), x.value().desc());
    Var gx = ag::linear(x, weight_ih, bias_ih);  // (B, T, 4C): the x_t part of every step
    // The steps' slices in one op (one backward, a concat, instead of one full-size scatter per
    // step).
    const std::vector<Var> gx_t = ag::split(gx, std::vector<int64_t>(static_cast<size_t>(t), 1), 1);
    Var h(Tensor::zeros(Shape{b, c}, x.dtype()));
    Var cell(Tensor::zeros(Shape{b, c}, x.dtype()));
    std::vector<Var> hs;
    hs.reserve(static_cast<size_t>(t));
    for (int64_t s = 0; s < t; ++s) {
        Var g_s = ag::reshape(gx_t[static_cast<size_t>(s)], Shape{b, 4 * c});  // (B, 4C)
        Var gates = ag::add(g_s, ag::linear(h, weight_hh, bias_hh));           // (B, 4C)
        // c = σ(f) c + σ(i) tanh(g), h = σ(o) tanh(c), in one pass (gates i, f, g, o)
        const fused::LstmCell next = fused::lstm_cell(gates, cell);
        cell = next.c;
        h = next.h;
        hs.push_back(ag::reshape(h, Shape{b, 1, c}));
    }
    return ag::concat(hs, 1);  // (B, T, C)
}

Lstm::Lstm(const LstmConfig& cfg, Rng& rng) : cfg_(cfg) {
    if (cfg.n_layer < 1) fail("Lstm: n_layer must be >= 1, got {}", cfg.n_layer);
    if (cfg.n_embd < 1) fail("Lstm: n_embd must be >= 1, got {}", cfg.n_embd);
    layers_ = register_module("layers", std::make_shared<nn::ModuleList>());
    for (int64_t l = 0; l < cfg.n_layer; ++l)
        layers_->push_back(std::make_shared<LstmLayer>(cfg.n_embd, rng));
}

Var Lstm::forward(const Var& x) const {
    if (x.ndim() != 3 || x.size(2) != cfg_.n_embd || x.size(0) < 1 || x.size(1) < 1)
        fail("Lstm: input must be (B, T, C = {}), got {}", cfg_.n_embd, x.value().desc());
    Var h = x;
    for (size_t l = 0; l < layers_->size(); ++l) h = layers_->at<LstmLayer>(l).forward(h);
    return h;
}

}  // namespace goose::models
