// Autograd functions of the binary family.
#include "goose/autograd/binary.h"

#include "goose/ops/reduce.h"

namespace goose::ag {

Var binary(BinaryOp op, const Var& a, const Var& b) {
    Tensor y = ops::binary_forward(op, a.value(), b.value());
    if (op == BinaryOp::add || op == BinaryOp::sub) {
        // The gradients need only the shapes: the inputs are not kept alive. A gradient that
        // needs no reduction is gy itself (the tape never writes gradients in place).
        auto backward = [op, sa = a.shape(), sb = b.shape()](GradIO& io) {
            const Tensor& g = io.gy();
            if (io.needs(0)) io.set(0, g.shape() == sa ? g : ops::sum_to_shape(g, sa));
            if (io.needs(1)) {
                Tensor gb = g.shape() == sb ? g : ops::sum_to_shape(g, sb);
                io.set(1, op == BinaryOp::sub ? ops::scale_forward(gb, -1.0) : gb);
            }
        };
        return record(binary_name(op), {a, b}, std::move(y), std::move(backward));
    }
    return record(binary_name(op), {a, b}, std::move(y),
                  [op, av = a.value(), bv = b.value()](GradIO& io) {
                      auto g = ops::binary_backward(op, io.gy(), av, bv, io.needs(0), io.needs(1));
                      io.set(0, std::move(g[0]));
                      io.set(1, std::move(g[1]));
                  });
}

Var scale(const Var& x, double s) {
    Tensor y = ops::scale_forward(x.value(), s);
    return record("scale", {x}, std::move(y),
                  [s](GradIO& io) { io.set(0, ops::scale_backward(io.gy(), s)); });
}

Var lerp(const Var& a, const Var& b, const Var& w) {
    Tensor y = ops::lerp_forward(a.value(), b.value(), w.value());
    return record("lerp", {a, b, w}, std::move(y),
                  [av = a.value(), bv = b.value(), wv = w.value()](GradIO& io) {
                      auto g = ops::lerp_backward(io.gy(), av, bv, wv,
                                                  {io.needs(0), io.needs(1), io.needs(2)});
                      for (int i = 0; i < 3; ++i) io.set(i, std::move(g[static_cast<size_t>(i)]));
                  });
}

}  // namespace goose::ag
