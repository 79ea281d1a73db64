// Reference shape and copy ops: for every output element, the source index worked out by hand
// (no views), read and written one element at a time with any strides.
#include <algorithm>

#include "goose/core/element.h"
#include "goose/ops/shape.h"

namespace goose::ops {

namespace {

// y[idx] (y packed, row-major position i) = x[src_of(idx)] for every index of y's shape.
template <class SrcOf>
void gather_into(Tensor& y, const Tensor& x, SrcOf src_of) {
    const void* xp = x.raw_data();
    void* yp = y.raw_data();
    int64_t i = 0;
    int64_t src[kMaxDims] = {0, 0, 0, 0, 0};
    for_each_index(y.shape(), [&](const int64_t* idx) {
        src_of(idx, src);
        store_from_double(yp, y.dtype(), i++,
                          load_as_double(xp, x.dtype(), offset_of(src, x.strides())));
    });
}

}  // namespace

Tensor concat_forward_ref(const std::vector<Tensor>& xs, int axis) {
    Shape shape = xs[0].shape();
    shape[axis] = 0;
    for (const Tensor& x : xs) shape[axis] += x.size(axis);
    Tensor y = Tensor::empty(shape, xs[0].dtype());
    void* yp = y.raw_data();
    int64_t i = 0;
    for_each_index(shape, [&](const int64_t* idx) {
        // Find the input holding position idx[axis] of the output.
        int64_t src[kMaxDims];
        std::copy(idx, idx + shape.ndim(), src);
        size_t k = 0;
        while (src[axis] >= xs[k].size(axis)) src[axis] -= xs[k++].size(axis);
        const Tensor& x = xs[k];
        store_from_double(yp, y.dtype(), i++,
                          load_as_double(x.raw_data(), x.dtype(), offset_of(src, x.strides())));
    });
    return y;
}

std::vector<Tensor> split_forward_ref(const Tensor& x, const std::vector<int64_t>& sizes,
                                      int axis) {
    std::vector<Tensor> ys;
    int64_t start = 0;
    for (int64_t n : sizes) {
        Shape shape = x.shape();
        shape[axis] = n;
        Tensor y = Tensor::empty(shape, x.dtype());
        const int nd = x.ndim();
        gather_into(y, x, [&](const int64_t* idx, int64_t* src) {
            std::copy(idx, idx + nd, src);
            src[axis] += start;
        });
        ys.push_back(std::move(y));
        start += n;
    }
    return ys;
}

Tensor slice_forward_ref(const Tensor& x, const SliceRange& r) {
    Shape shape = x.shape();
    shape[r.axis] = r.count;
    Tensor y = Tensor::empty(shape, x.dtype());
    const int nd = x.ndim();
    gather_into(y, x, [&](const int64_t* idx, int64_t* src) {
        std::copy(idx, idx + nd, src);
        src[r.axis] = r.start + idx[r.axis] * r.step;
    });
    return y;
}

Tensor slice_backward_ref(const Tensor& gy, const Shape& x_shape, const SliceRange& r) {
    Tensor gx = Tensor::zeros(x_shape, gy.dtype());
    const void* gp = gy.raw_data();
    void* xp = gx.raw_data();
    const Strides xs = gx.strides();
    for_each_index(gy.shape(), [&](const int64_t* idx) {
        int64_t dst[kMaxDims];
        std::copy(idx, idx + x_shape.ndim(), dst);
        dst[r.axis] = r.start + idx[r.axis] * r.step;
        store_from_double(xp, gx.dtype(), offset_of(dst, xs),
                          load_as_double(gp, gy.dtype(), offset_of(idx, gy.strides())));
    });
    return gx;
}

Tensor reshape_forward_ref(const Tensor& x, const Shape& shape) {
    // Row-major order of x's elements is the row-major order of y's.
    Tensor y = Tensor::empty(shape, x.dtype());
    const void* xp = x.raw_data();
    void* yp = y.raw_data();
    int64_t i = 0;
    for_each_index(x.shape(), [&](const int64_t* idx) {
        store_from_double(yp, y.dtype(), i++,
                          load_as_double(xp, x.dtype(), offset_of(idx, x.strides())));
    });
    return y;
}

Tensor transpose_forward_ref(const Tensor& x, int a, int b) {
    Shape shape = x.shape();
    std::swap(shape[a], shape[b]);
    Tensor y = Tensor::empty(shape, x.dtype());
    const int nd = x.ndim();
    gather_into(y, x, [&](const int64_t* idx, int64_t* src) {
        std::copy(idx, idx + nd, src);
        std::swap(src[a], src[b]);
    });
    return y;
}

Tensor permute_forward_ref(const Tensor& x, std::span<const int> order) {
    Shape shape = x.shape();
    const int nd = x.ndim();
    for (int i = 0; i < nd; ++i) shape[i] = x.size(order[static_cast<size_t>(i)]);
    Tensor y = Tensor::empty(shape, x.dtype());
    gather_into(y, x, [&](const int64_t* idx, int64_t* src) {
        // y's axis i is x's axis order[i].
        for (int i = 0; i < nd; ++i) src[order[static_cast<size_t>(i)]] = idx[i];
    });
    return y;
}

Tensor contiguous_forward_ref(const Tensor& x) {
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    const int nd = x.ndim();
    gather_into(y, x, [&](const int64_t* idx, int64_t* src) { std::copy(idx, idx + nd, src); });
    return y;
}

}  // namespace goose::ops
