// RWKV-7 "Goose" (x070) language model, exactly as the official BlinkDL code
// (shared/spec/rwkv7.md §2-§7, §9): parameters named as the official state dict, a parallel
// (sequence) forward with an optional carried state, a one-token RNN step, the official
// initialisation and the optimizer parameter groups of train.py.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "goose/core/rng.h"
#include "goose/nn/layers.h"
#include "goose/optim/adamw.h"

namespace goose::models {

// Hyper-parameters. LoRA ranks and the FFN width are free (released checkpoints used older
// formulas): with_defaults applies the current ones, infer_config reads them from shapes.
struct Rwkv7Config {
    int64_t vocab = 0;       // V
    int64_t n_layer = 0;     // L
    int64_t n_embd = 0;      // C
    int64_t head_size = 64;  // N (H = C / N)
    int64_t d_decay = 0;     // Dw: w1 (C, Dw), w2 (Dw, C)
    int64_t d_aaa = 0;       // Da: a1, a2
    int64_t d_mv = 0;        // Dv: v1, v2
    int64_t d_gate = 0;      // Dg: g1, g2
    int64_t dim_ffn = 0;     // F: ffn.key.weight (F, C)

    int64_t n_head() const { return head_size > 0 ? n_embd / head_size : 0; }

    // LoRA ranks max(32, round(k sqrt(C) / 32) * 32) with k = 2.5, 2.5, 1.7, 5.0 (Python's
    // round half to even), dim_ffn = 4C.
    static Rwkv7Config with_defaults(int64_t vocab, int64_t n_layer, int64_t n_embd,
                                     int64_t head_size = 64);
    // goose::Error naming the field when a size is < 1 or C is not a multiple of head_size.
    void validate() const;
    // 2VC + L (12C² ... ) generalised to any F: the number of parameters of the model
    // (layer-0 v0/v1/v2 included, as train.py).
    int64_t num_parameters() const;
};

// The recurrent state of every layer, batch-first. Values only (no gradient flows through it
// between calls).
struct Rwkv7State {
    std::vector<Tensor> att_shift;  // L x (B, C): ln1 output of the previous token
    std::vector<Tensor> wkv;        // L x (B, H, N, N): WKV state, row = value, column = key
    std::vector<Tensor> ffn_shift;  // L x (B, C): ln2 output of the previous token

    // All zeros (the state at a sequence start); dtype is the model's (f32 or f64).
    static Rwkv7State zeros(const Rwkv7Config& cfg, int64_t batch, DType dtype = DType::f32,
                            Device dev = Device::cpu());
    Rwkv7State clone() const;           // deep copy
    Rwkv7State to(Device dev) const;    // a copy on `dev`
    int64_t batch() const { return att_shift.empty() ? 0 : att_shift[0].size(0); }
};

// A module holding only "weight": the Linear layers (no bias), the embedding and the head.
class Rwkv7Weight : public nn::Module {
  public:
    Rwkv7Weight(const Shape& shape, DType dtype);
    Var weight;
};

class Rwkv7TimeMix : public nn::Module {
  public:
    Rwkv7TimeMix(const Rwkv7Config& cfg, int layer, DType dtype);

    struct Out {
        Var y;      // (B, T, C): to be added to the residual stream
        Var state;  // (B, H, N, N): the WKV state after the last token
    };
    // x: ln1 output (B, T, C); prev: (B, C) ln1 output before x[:, 0] (undefined = zeros);
    // v_first: layer 0 sets it, later layers read it; state_in (B, H, N, N) or undefined.
    Out forward(const Var& x, const Var& prev, Var& v_first, const Var& state_in) const;

    int layer;
    bool lean = true;  // training on CUDA: rebuild the token mixes in the backward (recompute.h)
    int64_t n_head, head_size;
    Var x_r, x_w, x_k, x_v, x_a, x_g;                             // (1, 1, C)
    Var w1, w2, w0;                                               // (C, Dw), (Dw, C), (1, 1, C)
    Var a1, a2, a0;                                               // (C, Da), (Da, C), (1, 1, C)
    Var v1, v2, v0;                                               // (C, Dv), (Dv, C), (1, 1, C)
    Var g1, g2;                                                   // (C, Dg), (Dg, C)
    Var k_k, k_a;                                                 // (1, 1, C)
    Var r_k;                                                      // (H, N)
    std::shared_ptr<Rwkv7Weight> receptance, key, value, output;  // (C, C) each
    std::shared_ptr<nn::GroupNorm> ln_x;                          // H groups, eps 64e-5
};

class Rwkv7ChannelMix : public nn::Module {
  public:
    Rwkv7ChannelMix(const Rwkv7Config& cfg, DType dtype);
    // x: ln2 output (B, T, C); prev (B, C) or undefined -> (B, T, C)
    Var forward(const Var& x, const Var& prev) const;
    // The rest after the token mix: kx = x + (shift(x) - x) x_k (B, T, C) -> (B, T, C)
    Var project(const Var& kx) const;

    Var x_k;                                  // (1, 1, C)
    std::shared_ptr<Rwkv7Weight> key, value;  // (F, C), (C, F)
};

class Rwkv7Block : public nn::Module {
  public:
    Rwkv7Block(const Rwkv7Config& cfg, int layer, DType dtype);

    int layer;
    std::shared_ptr<nn::LayerNorm> ln1, ln2, ln0;  // ln0 only in block 0
    std::shared_ptr<Rwkv7TimeMix> att;
    std::shared_ptr<Rwkv7ChannelMix> ffn;
};

class Rwkv7 : public nn::Module {
  public:
    // Parameters (f32 or f64) hold the deterministic values of §9 (vectors, norms, ln_x scale);
    // the random matrices and emb are zero until init_official() or a load.
    explicit Rwkv7(const Rwkv7Config& cfg, DType dtype = DType::f32);

    // Every hyper-parameter from tensor shapes (spec §7.1); a "_forward_module." prefix is
    // ignored. goose::Error naming any key that is missing or inconsistent.
    static Rwkv7Config infer_config(const nn::StateDict& sd);
    // infer_config + construct + load.
    static std::unique_ptr<Rwkv7> from_state_dict(const nn::StateDict& sd,
                                                  DType dtype = DType::f32);
    // Strict load by name (any float dtype, converted), except that blocks.0.att.v0/v1/v2 may
    // be absent (released checkpoints): those then get their initial values. A
    // "_forward_module." prefix is stripped. Errors name missing, extra and mis-shaped keys.
    void load(const nn::StateDict& sd);

    // The official initialisation (spec §9, train.py's generate_init_weight). Each random
    // tensor draws from rng.fork(<its name>). bf16_round: round every value through bf16 as
    // rwkv-init.pth is stored.
    void init_official(Rng& rng, bool bf16_round = false);

    // Parallel mode: ids (B, T) i32/i64 -> logits (B, T, V). With a state: it is the initial
    // state and is replaced by the state after the last token (values only).
    Var forward(const Tensor& ids, Rwkv7State* state = nullptr) const;
    // The blocks and ln_out on input embeddings (B, T, C) -> (B, T, C), with the same state
    // semantics: what forward() runs between the embedding and the head (the ICL lab feeds
    // its read-in projections here).
    Var forward_hidden(const Var& x, Rwkv7State* state = nullptr) const;
    // The training loss of train.py: mean cross-entropy of the logits against targets (B, T),
    // with L2Wrap's extra gradient. On CUDA the head and the loss run fused in vocabulary
    // chunks (the (B, T, V) logits are never stored).
    Var forward_loss(const Tensor& ids, const Tensor& targets) const;
    // RNN mode, no gradient: ids (B) -> logits (B, V), advancing state.
    Tensor step(const Tensor& ids, Rwkv7State& state) const;

    // Activation checkpointing (training without a state): each block keeps only its inputs and
    // runs its forward again during the backward (about one more forward per step for a
    // fraction of the activation memory).
    void set_activation_checkpointing(bool on) { checkpointing_ = on; }
    bool activation_checkpointing() const { return checkpointing_; }
    // Lean activations (on by default; training on CUDA only): the time mix keeps x and the
    // shifted x instead of its six (B, T, C) token mixes; the backward rebuilds them (same
    // values and gradients). Off keeps them: 0.9 GiB more at B16 T512 of L12 C768, for no
    // measured gain there on an H100 (279.7k vs 279.6-280.5k tokens/s).
    void set_lean_activations(bool on);
    bool lean_activations() const { return lean_; }

    const Rwkv7Config& config() const { return cfg_; }
    DType dtype() const { return dtype_; }
    // On the device of the model's parameters.
    Rwkv7State zero_state(int64_t batch) const;

    std::shared_ptr<Rwkv7Weight> emb, head;
    std::shared_ptr<nn::ModuleList> blocks;
    std::shared_ptr<nn::LayerNorm> ln_out;

    Rwkv7Block& block(size_t l) const { return blocks->at<Rwkv7Block>(l); }

  private:
    void check_state(const Rwkv7State& s, int64_t batch) const;
    void check_ids(const Tensor& ids) const;
    // The residual stream between blocks: x plus the previous block's channel-mix output not
    // yet added (undefined before the first block); the add is fused into the next layer norm.
    struct Residual {
        Var x, pending;
        Var sum() const;
    };
    Residual block_forward(const Rwkv7Block& blk, Residual in, Var& v_first, Rwkv7State* state,
                           size_t l) const;
    Var block_checkpointed(const Rwkv7Block& blk, const Var& x, Var& v_first) const;

    Rwkv7Config cfg_;
    DType dtype_;
    bool checkpointing_ = false;
    bool lean_ = true;
};

// train.py's configure_optimizers (spec §10.2): "lr_1x" (everything else: lr x1, no decay),
// "lr_2x" (att.w0: lr x2, no decay), "lr_decay" (2-D ".weight" matrices, only when
// weight_decay > 0; otherwise they join lr_1x). Empty groups are left out.
std::vector<optim::ParamGroup> rwkv7_param_groups(const Rwkv7& m, double weight_decay);

// Fills a (rows, cols) matrix with torch.nn.init.orthogonal_(gain): QR of a standard normal
// matrix (transposed when rows < cols), Q's columns multiplied by sign(diag R).
Tensor orthogonal_matrix(int64_t rows, int64_t cols, double gain, Rng& rng,
                         DType dtype = DType::f32);

}  // namespace goose::models
