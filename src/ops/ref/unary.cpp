// Reference unary ops: one element at a time, any strides, computed in double.
#include "goose/core/element.h"
#include "goose/ops/unary.h"
#include "ops/unary_math.h"

namespace goose::ops {

Tensor unary_forward_ref(UnaryOp op, const Tensor& x) {
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    const void* xp = x.raw_data();
    void* yp = y.raw_data();
    int64_t i = 0;
    for_each_index(x.shape(), [&](const int64_t* idx) {
        const double v = load_as_double(xp, x.dtype(), offset_of(idx, x.strides()));
        store_from_double(yp, y.dtype(), i++, unary_math::forward<double>(op, v));
    });
    return y;
}

namespace {
// gy * slope(t) element by element, t the input or the output of the op.
template <class Slope>
Tensor scaled_by_slope(const Tensor& gy, const Tensor& t, Slope slope) {
    Tensor gx = Tensor::empty(t.shape(), t.dtype());
    const void* tp = t.raw_data();
    const void* gp = gy.raw_data();
    void* op_ = gx.raw_data();
    int64_t i = 0;
    for_each_index(t.shape(), [&](const int64_t* idx) {
        const double v = load_as_double(tp, t.dtype(), offset_of(idx, t.strides()));
        const double g = load_as_double(gp, gy.dtype(), offset_of(idx, gy.strides()));
        store_from_double(op_, gx.dtype(), i++, g * slope(v));
    });
    return gx;
}
}  // namespace

Tensor unary_backward_ref(UnaryOp op, const Tensor& gy, const Tensor& x) {
    return scaled_by_slope(gy, x, [op](double v) { return unary_math::derivative<double>(op, v); });
}

Tensor unary_backward_from_output_ref(UnaryOp op, const Tensor& gy, const Tensor& y) {
    return scaled_by_slope(
        gy, y, [op](double v) { return unary_math::derivative_from_output<double>(op, v); });
}

}  // namespace goose::ops
