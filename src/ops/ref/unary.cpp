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

Tensor unary_backward_ref(UnaryOp op, const Tensor& gy, const Tensor& x) {
    Tensor gx = Tensor::empty(x.shape(), x.dtype());
    const void* xp = x.raw_data();
    const void* gp = gy.raw_data();
    void* op_ = gx.raw_data();
    int64_t i = 0;
    for_each_index(x.shape(), [&](const int64_t* idx) {
        const double v = load_as_double(xp, x.dtype(), offset_of(idx, x.strides()));
        const double g = load_as_double(gp, gy.dtype(), offset_of(idx, gy.strides()));
        store_from_double(op_, gx.dtype(), i++, g * unary_math::derivative<double>(op, v));
    });
    return gx;
}

Tensor unary_backward_from_output_ref(UnaryOp op, const Tensor& gy, const Tensor& y) {
    Tensor gx = Tensor::empty(y.shape(), y.dtype());
    const void* yp = y.raw_data();
    const void* gp = gy.raw_data();
    void* op_ = gx.raw_data();
    int64_t i = 0;
    for_each_index(y.shape(), [&](const int64_t* idx) {
        const double v = load_as_double(yp, y.dtype(), offset_of(idx, y.strides()));
        const double g = load_as_double(gp, gy.dtype(), offset_of(idx, gy.strides()));
        store_from_double(op_, gx.dtype(), i++,
                          g * unary_math::derivative_from_output<double>(op, v));
    });
    return gx;
}

}  // namespace goose::ops
