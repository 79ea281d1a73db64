// Reference where and masked_fill: one element at a time, any strides, values through double.
#include "goose/core/element.h"
#include "goose/ops/select.h"
#include "ops/ref/binary_broadcast.h"

namespace goose::ops {

using ref::broadcast_offset;

namespace {
bool mask_at(const Tensor& m, const int64_t* idx, int n) {
    return static_cast<const uint8_t*>(m.raw_data())[broadcast_offset(idx, n, m)] != 0;
}
}  // namespace

Tensor where_forward_ref(const Tensor& cond, const Tensor& a, const Tensor& b) {
    const Shape out =
        broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
    Tensor y = Tensor::empty(out, a.dtype());
    const int n = out.ndim();
    int64_t i = 0;
    for_each_index(out, [&](const int64_t* idx) {
        const Tensor& src = mask_at(cond, idx, n) ? a : b;
        const double v = load_as_double(src.raw_data(), src.dtype(), broadcast_offset(idx, n, src));
        store_from_double(y.raw_data(), y.dtype(), i++, v);
    });
    return y;
}

std::array<Tensor, 2> where_backward_ref(const Tensor& gy, const Tensor& cond,
                                         const Shape& a_shape, const Shape& b_shape, bool need_a,
                                         bool need_b) {
    const int n = gy.ndim();
    ref::GradAcc ga(a_shape), gb(b_shape);
    for_each_index(gy.shape(), [&](const int64_t* idx) {
        const double g = load_as_double(gy.raw_data(), gy.dtype(), offset_of(idx, gy.strides()));
        const bool c = mask_at(cond, idx, n);
        if (need_a && c) ga.add(idx, n, g);
        if (need_b && !c) gb.add(idx, n, g);
    });
    return {need_a ? ga.take(gy.dtype()) : Tensor(), need_b ? gb.take(gy.dtype()) : Tensor()};
}

Tensor masked_fill_forward_ref(const Tensor& x, const Tensor& mask, double value) {
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    const int n = x.ndim();
    int64_t i = 0;
    for_each_index(x.shape(), [&](const int64_t* idx) {
        const double v = mask_at(mask, idx, n)
                             ? value
                             : load_as_double(x.raw_data(), x.dtype(), offset_of(idx, x.strides()));
        store_from_double(y.raw_data(), y.dtype(), i++, v);
    });
    return y;
}

}  // namespace goose::ops
