// Reference binary ops, scale and lerp: one element at a time, any strides, computed in double;
// gradients of broadcast operands accumulate in double at the operand's element.
#include "goose/core/element.h"
#include "goose/ops/binary.h"
#include "ops/binary_math.h"
#include "ops/ref/binary_broadcast.h"

namespace goose::ops {

using ref::broadcast_offset;
using ref::GradAcc;


Tensor binary_forward_ref(BinaryOp op, const Tensor& a, const Tensor& b) {
    const Shape out = broadcast_shapes(a.shape(), b.shape(), binary_name(op));
    Tensor y = Tensor::empty(out, a.dtype());
    const int n = out.ndim();
    int64_t i = 0;
    for_each_index(out, [&](const int64_t* idx) {
        const double av = load_as_double(a.raw_data(), a.dtype(), broadcast_offset(idx, n, a));
        const double bv = load_as_double(b.raw_data(), b.dtype(), broadcast_offset(idx, n, b));
        store_from_double(y.raw_data(), y.dtype(), i++, binary_math::forward(op, av, bv));
    });
    return y;
}

std::array<Tensor, 2> binary_backward_ref(BinaryOp op, const Tensor& gy, const Tensor& a,
                                          const Tensor& b, bool need_a, bool need_b) {
    const Shape& out = gy.shape();
    const int n = out.ndim();
    GradAcc ga(a.shape()), gb(b.shape());
    for_each_index(out, [&](const int64_t* idx) {
        const double g = load_as_double(gy.raw_data(), gy.dtype(), offset_of(idx, gy.strides()));
        const double av = load_as_double(a.raw_data(), a.dtype(), broadcast_offset(idx, n, a));
        const double bv = load_as_double(b.raw_data(), b.dtype(), broadcast_offset(idx, n, b));
        if (need_a) ga.add(idx, n, g * binary_math::d_a(op, av, bv));
        if (need_b) gb.add(idx, n, g * binary_math::d_b(op, av, bv));
    });
    return {need_a ? ga.take(a.dtype()) : Tensor(), need_b ? gb.take(b.dtype()) : Tensor()};
}

Tensor scale_forward_ref(const Tensor& x, double s) {
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    int64_t i = 0;
    for_each_index(x.shape(), [&](const int64_t* idx) {
        const double v = load_as_double(x.raw_data(), x.dtype(), offset_of(idx, x.strides()));
        store_from_double(y.raw_data(), y.dtype(), i++, s * v);
    });
    return y;
}

Tensor lerp_forward_ref(const Tensor& a, const Tensor& b, const Tensor& w) {
    const Shape out =
        broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), "lerp"), w.shape(), "lerp");
    Tensor y = Tensor::empty(out, a.dtype());
    const int n = out.ndim();
    int64_t i = 0;
    for_each_index(out, [&](const int64_t* idx) {
        const double av = load_as_double(a.raw_data(), a.dtype(), broadcast_offset(idx, n, a));
        const double bv = load_as_double(b.raw_data(), b.dtype(), broadcast_offset(idx, n, b));
        const double wv = load_as_double(w.raw_data(), w.dtype(), broadcast_offset(idx, n, w));
        store_from_double(y.raw_data(), y.dtype(), i++, av + (bv - av) * wv);
    });
    return y;
}

std::array<Tensor, 3> lerp_backward_ref(const Tensor& gy, const Tensor& a, const Tensor& b,
                                        const Tensor& w, std::array<bool, 3> needs) {
    const Shape& out = gy.shape();
    const int n = out.ndim();
    GradAcc ga(a.shape()), gb(b.shape()), gw(w.shape());
    for_each_index(out, [&](const int64_t* idx) {
        const double g = load_as_double(gy.raw_data(), gy.dtype(), offset_of(idx, gy.strides()));
        const double av = load_as_double(a.raw_data(), a.dtype(), broadcast_offset(idx, n, a));
        const double bv = load_as_double(b.raw_data(), b.dtype(), broadcast_offset(idx, n, b));
        const double wv = load_as_double(w.raw_data(), w.dtype(), broadcast_offset(idx, n, w));
        if (needs[0]) ga.add(idx, n, g * (1.0 - wv));
        if (needs[1]) gb.add(idx, n, g * wv);
        if (needs[2]) gw.add(idx, n, g * (bv - av));
    });
    return {needs[0] ? ga.take(a.dtype()) : Tensor(), needs[1] ? gb.take(b.dtype()) : Tensor(),
            needs[2] ? gw.take(w.dtype()) : Tensor()};
}

}  // namespace goose::ops
