// Autograd functions of the elementwise unary ops.
#include "goose/autograd/unary.h"

namespace goose::ag {

Var unary(UnaryOp op, const Var& x) {
    Tensor y = ops::unary_forward(op, x.value());
    return record(unary_name(op), {x}, std::move(y), [op, xv = x.value()](GradIO& io) {
        io.set(0, ops::unary_backward(op, io.gy(), xv));
    });
}

}  // namespace goose::ag
