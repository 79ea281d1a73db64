// Every op Goose has. The conformance suite fails when one of these has no case (fast vs
// reference, forward and backward) and the gradient suite when one has no finite-difference
// case. Adding an op: add its name here, then see docs/adding-an-op.md.
#pragma once
#include <string_view>

namespace goose {

inline constexpr std::string_view kOpNames[] = {
    // linear algebra (ops/matmul.h)
    "matmul", "linear",
    // elementwise binary with broadcasting, scale, lerp (ops/binary.h)
    "add", "sub", "mul", "div", "scale", "lerp",
    // elementwise unary (ops/unary.h)
    "exp", "log", "tanh", "sigmoid", "softplus", "relu", "relu2", "gelu_tanh", "silu", "neg",
    "sqrt", "square",
    // reductions (ops/reduce.h)
    "sum", "mean", "max",
    // softmax family and losses (ops/softmax.h, ops/loss.h)
    "softmax", "log_softmax", "cross_entropy", "mse", "bce_with_logits",
    // normalisation (ops/norm.h)
    "layer_norm", "group_norm", "l2_normalize",
    // sequence ops (ops/sequence.h)
    "embedding", "token_shift",
    // shape and copy ops (ops/shape.h)
    "concat", "split", "slice", "reshape", "transpose", "permute", "contiguous",
    // selection (ops/select.h)
    "where", "masked_fill",
    // attention (ops/attention.h)
    "attention",
    // RWKV-7 state recurrence (ops/wkv7.h)
    "wkv7",
};

}  // namespace goose
