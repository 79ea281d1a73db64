// Sequence ops: embedding lookup and RWKV's token shift with a carried previous row.
// f32 and f64 values; ids i32 or i64.
#pragma once
#include "goose/core/tensor.h"

namespace goose::ops {

struct TokenShiftGrads {
    Tensor x, prev;  // prev undefined when the forward had none or it was not asked for
};

// weight (V, C), ids (...) -> weight[ids] (..., C). ids may have up to 4 dims; an id outside
// [0, V) is a goose::Error naming the id, its position and V.
Tensor embedding_forward(const Tensor& weight, const Tensor& ids);
// gy (..., C) -> dweight (V, C): rows of gy added into the rows their ids name.
Tensor embedding_backward(const Tensor& gy, const Tensor& ids, int64_t vocab);

// x (B, T, C), prev (B, C) or undefined (zeros) -> y (B, T, C): y[:, 0] = prev,
// y[:, t] = x[:, t - 1].
Tensor token_shift_forward(const Tensor& x, const Tensor& prev = Tensor());
// gy (B, T, C) -> dx (B, T, C), dprev (B, C) when want_prev.
TokenShiftGrads token_shift_backward(const Tensor& gy, bool want_prev);

Tensor embedding_forward_ref(const Tensor& weight, const Tensor& ids);
Tensor embedding_backward_ref(const Tensor& gy, const Tensor& ids, int64_t vocab);
Tensor token_shift_forward_ref(const Tensor& x, const Tensor& prev);
TokenShiftGrads token_shift_backward_ref(const Tensor& gy, bool want_prev);

Tensor embedding_forward_cpu(const Tensor& weight, const Tensor& ids);
Tensor embedding_backward_cpu(const Tensor& gy, const Tensor& ids, int64_t vocab);
Tensor token_shift_forward_cpu(const Tensor& x, const Tensor& prev);
TokenShiftGrads token_shift_backward_cpu(const Tensor& gy, bool want_prev);

}  // namespace goose::ops
