// Autograd functions of the select family.
#include "goose/autograd/select.h"

namespace goose::ag {

Var where(const Tensor& cond, const Var& a, const Var& b) {
    Tensor y = ops::where_forward(cond, a.value(), b.value());
    return record("where", {a, b}, std::move(y),
                  [cond, sa = a.shape(), sb = b.shape()](GradIO& io) {
                      auto g = ops::where_backward(io.gy(), cond, sa, sb, io.needs(0), io.needs(1));
                      io.set(0, std::move(g[0]));
                      io.set(1, std::move(g[1]));
                  });
}

Var masked_fill(const Var& x, const Tensor& mask, double value) {
    Tensor y = ops::masked_fill_forward(x.value(), mask, value);
    return record("masked_fill", {x}, std::move(y),
                  [mask](GradIO& io) { io.set(0, ops::masked_fill_backward(io.gy(), mask)); });
}

}  // namespace goose::ag
