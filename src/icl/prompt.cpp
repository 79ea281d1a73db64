// Interleaving of (x, y) pairs into tokens and the read-back of predictions at the x tokens.
#include "goose/icl/prompt.h"

namespace goose::icl {

Tensor interleave(const Tensor& xs, const Tensor& ys) {
    if (xs.ndim() != 3 || ys.ndim() != 2 || !dtype_is_float(xs.dtype()) ||
        !dtype_is_float(ys.dtype()) || ys.size(0) != xs.size(0) || ys.size(1) != xs.size(1))
        fail("interleave: expects float xs (B, n, d) and ys (B, n), got xs {} and ys {}",
             xs.desc(), ys.desc());
    const int64_t batch = xs.size(0), n = xs.size(1), d = xs.size(2);
    Tensor out = Tensor::zeros(Shape{batch, 2 * n, d}, xs.dtype());  // (B, 2n, d)
    out.slice(1, 0, 2 * n, 2).copy_(xs);
    // y tokens: coordinate 0 of the odd positions, (B, n)
    out.slice(1, 1, 2 * n, 2).select(2, 0).copy_(ys);
    return out;
}

Tensor predictions_at_x(const Tensor& out) {
    Tensor o = out;
    if (o.ndim() == 3 && o.size(2) == 1) o = o.squeeze(2);
    if (o.ndim() != 2 || o.size(1) % 2 != 0)
        fail("predictions_at_x: expects out (B, 2n) or (B, 2n, 1), got {}", out.desc());
    return o.slice(1, 0, o.size(1), 2).clone();  // (B, n)
}

}  // namespace goose::icl
