// GPT-2-style Transformer: pre-LN blocks, learned absolute positions, causal multi-head
// attention, GELU-tanh MLP (4C), no dropout. Init N(0, 0.02), residual projections scaled by
// 1/sqrt(2L) (GPT-2). Used by the demo and as the ICL lab's Transformer backbone.
#pragma once
#include "goose/core/rng.h"
#include "goose/nn/layers.h"

namespace goose::models {

struct GptConfig {
    int64_t vocab = 0;  // 0: no token embedding/head (the backbone is fed embeddings)
    int64_t max_t = 256;
    int64_t n_layer = 2;
    int64_t n_embd = 64;
    int64_t n_head = 4;
};

class GptBlock : public nn::Module {
public:
    GptBlock(const GptConfig& cfg, Rng& rng);
    Var forward(const Var& x) const;  // (B, T, C) -> (B, T, C)

private:
    int64_t n_head_;
    std::shared_ptr<nn::LayerNorm> ln_1_, ln_2_;
    std::shared_ptr<nn::Linear> c_attn_, c_proj_, c_fc_, mlp_proj_;
};

class Gpt : public nn::Module {
public:
    Gpt(const GptConfig& cfg, Rng& rng);
    // Token ids (B, T) -> logits (B, T, V). Needs vocab > 0.
    Var forward(const Tensor& ids) const;
    // Input embeddings (B, T, C) -> hidden states after ln_f (B, T, C).
    Var forward_embeddings(const Var& x) const;
    const GptConfig& config() const { return cfg_; }

private:
    GptConfig cfg_;
    std::shared_ptr<nn::Embedding> wte_, wpe_;
    std::shared_ptr<nn::ModuleList> blocks_;
    std::shared_ptr<nn::LayerNorm> ln_f_;
    std::shared_ptr<nn::Linear> lm_head_;
};

}  // namespace goose::models
