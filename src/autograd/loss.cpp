// Autograd functions of the losses.
#include "goose/autograd/loss.h"

namespace goose::ag {

Var cross_entropy(const Var& logits, const Tensor& targets, int64_t ignore_index) {
    ops::CrossEntropyForward f = ops::cross_entropy_forward(logits.value(), targets, ignore_index);
    return record("cross_entropy", {logits}, std::move(f.loss),
                  [x = logits.value(), targets, lse = std::move(f.lse), ignore_index](GradIO& io) {
                      io.set(0,
                             ops::cross_entropy_backward(io.gy(), x, targets, lse, ignore_index));
                  });
}

Var mse(const Var& pred, const Var& target) {
    Tensor y = ops::mse_forward(pred.value(), target.value());
    return record("mse", {pred, target}, std::move(y),
                  [p = pred.value(), t = target.value()](GradIO& io) {
                      auto [dp, dt] = ops::mse_backward(io.gy(), p, t);
                      io.set(0, std::move(dp));
                      io.set(1, std::move(dt));
                  });
}

Var bce_with_logits(const Var& logits, const Var& targets) {
    Tensor y = ops::bce_with_logits_forward(logits.value(), targets.value());
    return record("bce_with_logits", {logits, targets}, std::move(y),
                  [x = logits.value(), t = targets.value()](GradIO& io) {
                      auto [dx, dt] = ops::bce_with_logits_backward(io.gy(), x, t);
                      io.set(0, std::move(dx));
                      io.set(1, std::move(dt));
                  });
}

}  // namespace goose::ag
