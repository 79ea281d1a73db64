// Losses, each the mean over its positions, returned as a 0-d tensor: cross-entropy on logits
// with integer targets (PyTorch semantics, ignore_index), mean squared error, and binary
// cross-entropy on logits (PyTorch's stable form). f32 and f64.
#pragma once
#include <utility>

#include "goose/core/tensor.h"

namespace goose::ops {

// What the cross-entropy backward needs besides the inputs.
struct CrossEntropyForward {
    Tensor loss;  // 0-d
    Tensor lse;   // (...): log-sum-exp of each row of logits (0 where the target is ignored)
};

// logits (..., V), targets (...) i32 or i64 -> mean over the positions whose target is not
// ignore_index of lse - logits[target]. When every position is ignored the loss is 0 with zero
// gradient (PyTorch returns NaN there). A target outside [0, V) that is not ignore_index is a
// goose::Error naming it and its position.
CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                          int64_t ignore_index = -100);
// gy (0-d) -> dlogits (..., V) = gy / count * (softmax(logits) - onehot(target)), 0 on ignored rows
Tensor cross_entropy_backward(const Tensor& gy, const Tensor& logits, const Tensor& targets,
                              const Tensor& lse, int64_t ignore_index = -100);

// pred, target (same shape) -> mean((pred - target)^2), 0-d (NaN when empty, as PyTorch)
Tensor mse_forward(const Tensor& pred, const Tensor& target);
// gy (0-d) -> {d pred, d target} = +-2 gy / n * (pred - target)
std::pair<Tensor, Tensor> mse_backward(const Tensor& gy, const Tensor& pred, const Tensor& target);

// logits x, targets y (same shape) -> mean(max(x, 0) - x y + log1p(exp(-|x|))), 0-d (NaN
// when empty)
Tensor bce_with_logits_forward(const Tensor& logits, const Tensor& targets);
// gy (0-d) -> {d logits, d targets} = {gy / n * (sigmoid(x) - y), -gy / n * x}
std::pair<Tensor, Tensor> bce_with_logits_backward(const Tensor& gy, const Tensor& logits,
                                                   const Tensor& targets);

CrossEntropyForward cross_entropy_forward_ref(const Tensor& logits, const Tensor& targets,
                                              int64_t ignore_index);
Tensor cross_entropy_backward_ref(const Tensor& gy, const Tensor& logits, const Tensor& targets,
                                  const Tensor& lse, int64_t ignore_index);
Tensor mse_forward_ref(const Tensor& pred, const Tensor& target);
std::pair<Tensor, Tensor> mse_backward_ref(const Tensor& gy, const Tensor& pred,
                                           const Tensor& target);
Tensor bce_with_logits_forward_ref(const Tensor& logits, const Tensor& targets);
std::pair<Tensor, Tensor> bce_with_logits_backward_ref(const Tensor& gy, const Tensor& logits,
                                                       const Tensor& targets);

CrossEntropyForward cross_entropy_forward_cpu(const Tensor& logits, const Tensor& targets,
                                              int64_t ignore_index);
Tensor cross_entropy_backward_cpu(const Tensor& gy, const Tensor& logits, const Tensor& targets,
                                  const Tensor& lse, int64_t ignore_index);
Tensor mse_forward_cpu(const Tensor& pred, const Tensor& target);
std::pair<Tensor, Tensor> mse_backward_cpu(const Tensor& gy, const Tensor& pred,
                                           const Tensor& target);
Tensor bce_with_logits_forward_cpu(const Tensor& logits, const Tensor& targets);
std::pair<Tensor, Tensor> bce_with_logits_backward_cpu(const Tensor& gy, const Tensor& logits,
                                                       const Tensor& targets);

}  // namespace goose::ops
