// Fused LM head + cross-entropy (+ L2Wrap's gradient): the mean loss of logits = x wᵀ against
// integer targets, and the gradients of x and w, in one call. On CUDA it runs in chunks of rows
// (cuBLASLt products, one softmax pass writing d(logits) in place) so the (rows, V) logits never
// exist in full (V = 65536); elsewhere it is the same math composed of existing ops (the
// reference the CUDA version is tested against).
#pragma once
#include "goose/core/tensor.h"

namespace goose::ops {

struct HeadCrossEntropyOptions {
    int64_t ignore_index = -100;
    // L2Wrap (spec §10.1, goose/autograd/l2wrap.h): each row's first argmax logit m also gets
    // gy * m * 1e-4 / rows in d(logits); rows counts every row, ignored or not. The loss value is
    // unchanged.
    bool l2wrap = false;
    double gy = 1.0;  // upstream gradient of the loss: dx and dw are linear in it
    bool need_dx = true, need_dw = true;
    int64_t chunk_rows = 0;     // CUDA: rows per chunk; 0 = automatic (logits chunk <= 512 MiB)
    bool check_targets = true;  // CUDA: read back whether every target was valid (one sync)
    // CUDA, bf16, V % 8 == 0, V <= 65536: keep each logits row in registers between the softmax
    // statistics and the gradient (one read + one write instead of two reads + one write).
    // Checked, not yet timed on a GPU: off by default.
    bool row_cache = false;
};

struct HeadCrossEntropyResult {
    Tensor loss;  // 0-d: mean over the rows whose target is not ignored (0 when none)
    Tensor lse;   // (...): log-sum-exp of each row's logits (0 on ignored rows)
    Tensor dx;    // x's shape and dtype, when need_dx
    Tensor dw;    // w's shape, f32 for bf16 w (else w's dtype), when need_dw
};

// x (..., C), w (V, C) (PyTorch layout), targets (...) i32 or i64, x's leading shape. CPU: f32
// or f64 x and w (one dtype). CUDA: f32, or bf16 with fp32 accumulation (bf16 logits, like a
// bf16 head; dx in bf16, dw and the loss in f32). A target outside [0, V) that is not
// ignore_index is a goose::Error naming it and its position.
HeadCrossEntropyResult head_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets,
                                          const HeadCrossEntropyOptions& opt = {});

// linear_forward + cross_entropy_forward/backward (+ l2wrap_logits_grad) + linear_backward, on
// the CPU (any CPU backend); full logits.
HeadCrossEntropyResult head_cross_entropy_ref(const Tensor& x, const Tensor& w,
                                              const Tensor& targets,
                                              const HeadCrossEntropyOptions& opt = {});

}  // namespace goose::ops
