// Autograd functions of softmax and log_softmax: the backward uses the saved output.
#include "goose/autograd/softmax.h"

namespace goose::ag {

Var softmax(const Var& x) {
    Tensor y = ops::softmax_forward(x.value());
    return record("softmax", {x}, y, [y](GradIO& io) {
        io.set(0, ops::softmax_backward(io.gy(), y));
    });
}

Var log_softmax(const Var& x) {
    Tensor y = ops::log_softmax_forward(x.value());
    return record("log_softmax", {x}, y, [y](GradIO& io) {
        io.set(0, ops::log_softmax_backward(io.gy(), y));
    });
}

}  // namespace goose::ag
