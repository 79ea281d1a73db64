// Autograd functions of the reduce family.
#include "goose/autograd/reduce.h"

namespace goose::ag {

Var sum(const Var& x, std::vector<int> axes, bool keepdim) {
    Tensor y = ops::sum_forward(x.value(), axes, keepdim);
    return record("sum", {x}, std::move(y),
                  [xs = x.shape(), axes = std::move(axes), keepdim](GradIO& io) {
                      io.set(0, ops::sum_backward(io.gy(), xs, axes, keepdim));
                  });
}

Var mean(const Var& x, std::vector<int> axes, bool keepdim) {
    Tensor y = ops::mean_forward(x.value(), axes, keepdim);
    return record("mean", {x}, std::move(y),
                  [xs = x.shape(), axes = std::move(axes), keepdim](GradIO& io) {
                      io.set(0, ops::mean_backward(io.gy(), xs, axes, keepdim));
                  });
}

Var max(const Var& x, int axis, bool keepdim) {
    ops::MaxResult r = ops::max_forward(x.value(), axis, keepdim);
    return record("max", {x}, std::move(r.values),
                  [xs = x.shape(), idx = std::move(r.indices), axis, keepdim](GradIO& io) {
                      io.set(0, ops::max_backward(io.gy(), idx, xs, axis, keepdim));
                  });
}

}  // namespace goose::ag
