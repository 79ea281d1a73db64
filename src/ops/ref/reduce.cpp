// Reference reductions: one element at a time, any strides, accumulated in double.
#include <cmath>
#include <vector>

#include "goose/core/element.h"
#include "goose/ops/reduce.h"
#include "ops/ref/binary_broadcast.h"

namespace goose::ops {

using ref::broadcast_offset;

Tensor sum_forward_ref(const Tensor& x, std::span<const int> axes, double scale) {
    Shape keep = x.shape();
    for (int a : axes) keep[a] = 1;
    ref::GradAcc acc(keep);  // reduced axes have size 1: every x index lands on its output
    const int n = x.ndim();
    for_each_index(x.shape(), [&](const int64_t* idx) {
        acc.add(idx, n, load_as_double(x.raw_data(), x.dtype(), offset_of(idx, x.strides())));
    });
    for (double& v : acc.v) v *= scale;
    return acc.take(x.dtype());
}

Tensor sum_backward_ref(const Tensor& gy, const Shape& x_shape, double scale) {
    Tensor gx = Tensor::empty(x_shape, gy.dtype());
    const int n = x_shape.ndim();
    int64_t i = 0;
    for_each_index(x_shape, [&](const int64_t* idx) {
        const double g = load_as_double(gy.raw_data(), gy.dtype(), broadcast_offset(idx, n, gy));
        store_from_double(gx.raw_data(), gx.dtype(), i++, scale * g);
    });
    return gx;
}

MaxResult max_forward_ref(const Tensor& x, int axis) {
    const Shape keep = x.shape().without(axis).with_inserted(axis, 1);
    MaxResult r{Tensor::empty(keep, x.dtype()), Tensor::empty(keep, DType::i64)};
    const int n = x.ndim();
    int64_t i = 0;
    for_each_index(keep, [&](const int64_t* out_idx) {
        int64_t idx[kMaxDims];
        for (int d = 0; d < n; ++d) idx[d] = out_idx[d];
        double best = 0;
        int64_t arg = -1;
        for (int64_t a = 0; a < x.size(axis); ++a) {
            idx[axis] = a;
            const double v = load_as_double(x.raw_data(), x.dtype(), offset_of(idx, x.strides()));
            // The first maximum wins; the first NaN beats everything.
            const bool take = arg < 0 || (!std::isnan(best) && (v > best || std::isnan(v)));
            if (take) {
                best = v;
                arg = a;
            }
        }
        store_from_double(r.values.raw_data(), x.dtype(), i, best);
        r.indices.data<int64_t>()[i++] = arg;
    });
    return r;
}

Tensor max_backward_ref(const Tensor& gy, const Tensor& indices, const Shape& x_shape, int axis) {
    Tensor gx = Tensor::empty(x_shape, gy.dtype());
    const int n = x_shape.ndim();
    int64_t i = 0;
    for_each_index(x_shape, [&](const int64_t* idx) {
        const int64_t arg = static_cast<const int64_t*>(
            indices.raw_data())[broadcast_offset(idx, n, indices)];
        const double g = load_as_double(gy.raw_data(), gy.dtype(), broadcast_offset(idx, n, gy));
        store_from_double(gx.raw_data(), gx.dtype(), i++, idx[axis] == arg ? g : 0.0);
    });
    return gx;
}

Tensor sum_to_shape_ref(const Tensor& g, const Shape& shape) {
    ref::GradAcc acc(shape);
    const int n = g.ndim();
    for_each_index(g.shape(), [&](const int64_t* idx) {
        acc.add(idx, n, load_as_double(g.raw_data(), g.dtype(), offset_of(idx, g.strides())));
    });
    return acc.take(g.dtype());
}

}  // namespace goose::ops
