// Softmax and log-softmax along the last axis (any leading dims), numerically stable (the row
// max is subtracted first). The backwards work from the saved output y. f32 and f64.
#pragma once
#include "goose/core/tensor.h"

namespace goose::ops {

// x (..., C) -> y (..., C): y = exp(x - max) / sum(exp(x - max))
Tensor softmax_forward(const Tensor& x);
// gy, y (..., C) -> dx = y * (gy - sum(gy * y))
Tensor softmax_backward(const Tensor& gy, const Tensor& y);
// x (..., C) -> y (..., C): y = x - max - log(sum(exp(x - max)))
Tensor log_softmax_forward(const Tensor& x);
// gy, y (..., C) -> dx = gy - exp(y) * sum(gy)
Tensor log_softmax_backward(const Tensor& gy, const Tensor& y);

Tensor softmax_forward_ref(const Tensor& x);
Tensor softmax_backward_ref(const Tensor& gy, const Tensor& y);
Tensor log_softmax_forward_ref(const Tensor& x);
Tensor log_softmax_backward_ref(const Tensor& gy, const Tensor& y);
Tensor softmax_forward_cpu(const Tensor& x);
Tensor softmax_backward_cpu(const Tensor& gy, const Tensor& y);
Tensor log_softmax_forward_cpu(const Tensor& x);
Tensor log_softmax_backward_cpu(const Tensor& gy, const Tensor& y);

}  // namespace goose::ops
