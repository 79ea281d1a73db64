// The ICL lab's models (spec icl_function_classes §1.2): read_in Linear(d -> C) on the
// interleaved tokens, a sequence backbone (GPT-2 Transformer, RWKV-7 or LSTM), read_out
// Linear(C -> 1), predictions read at the x tokens.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "goose/core/rng.h"
#include "goose/nn/layers.h"

namespace goose::models {
class Gpt;
class Rwkv7;
class Lstm;
}  // namespace goose::models

namespace goose::icl {

struct ModelConfig {
    std::string family;   // "rwkv7", "transformer", "lstm"
    int64_t n_dims = 0;       // d: width of the x tokens
    int64_t n_positions = 0;  // the most points (x, y pairs) a prompt may have
    int64_t n_embd = 64;
    int64_t n_layer = 3;
    int64_t n_head = 2;      // transformer
    int64_t head_size = 16;  // rwkv7 (H = C / head_size)

    // goose::Error naming the field (and, for the family, the valid ones).
    void validate() const;
};

// The valid families, in the order used by error messages.
const std::vector<std::string>& model_families();

class IclModel : public nn::Module {
public:
    // Parameters are named "read_in.*", "backbone.*", "read_out.*"; every random draw comes
    // from rng (forks "read_in", "backbone", "read_out"). The rwkv7 backbone gets the official
    // initialisation; its (vocab 1) emb and head exist but are unused.
    IclModel(const ModelConfig& cfg, Rng& rng);
    ~IclModel() override;

    // xs (B, n, d), ys (B, n), float, n <= n_positions -> predictions (B, n) f32: the output
    // at the xᵢ token, i.e. from (x₁, y₁, ..., x_{i-1}, y_{i-1}, xᵢ).
    Var forward(const Tensor& xs, const Tensor& ys) const;
    // forward without recording gradients.
    Tensor predict(const Tensor& xs, const Tensor& ys) const;

    const ModelConfig& config() const { return cfg_; }

private:
    Var backbone(const Var& h) const;  // (B, 2n, C) -> (B, 2n, C)

    ModelConfig cfg_;
    std::shared_ptr<nn::Linear> read_in_, read_out_;
    std::shared_ptr<models::Gpt> gpt_;
    std::shared_ptr<models::Rwkv7> rwkv_;
    std::shared_ptr<models::Lstm> lstm_;
};

}  // namespace goose::icl
