// Fast shape and copy ops for CPU and CUDA tensors: every op is a strided copy between views
// through core's copy_strided (the blocked CPU copy of src/core/strided_copy.h, or the device's
// copy kernels); outputs are packed on the input's device.
#include "goose/ops/shape.h"

namespace goose::ops {

namespace {

// A new packed tensor holding src (any strides).
Tensor packed_copy(const Tensor& src) {
    Tensor y = Tensor::empty(src.shape(), src.dtype(), src.device());
    copy_strided(y, src);
    return y;
}

}  // namespace

Tensor concat_forward_strided(const std::vector<Tensor>& xs, int axis) {
    Shape shape = xs[0].shape();
    shape[axis] = 0;
    for (const Tensor& x : xs) shape[axis] += x.size(axis);
    Tensor y = Tensor::empty(shape, xs[0].dtype(), xs[0].device());
    int64_t off = 0;
    for (const Tensor& x : xs) {
        const int64_t n = x.size(axis);
        if (x.numel() > 0) copy_strided(y.slice(axis, off, off + n), x);
        off += n;
    }
    return y;
}

std::vector<Tensor> split_forward_strided(const Tensor& x, const std::vector<int64_t>& sizes,
                                      int axis) {
    std::vector<Tensor> ys;
    ys.reserve(sizes.size());
    int64_t off = 0;
    for (int64_t n : sizes) {
        ys.push_back(packed_copy(x.slice(axis, off, off + n)));
        off += n;
    }
    return ys;
}

Tensor slice_forward_strided(const Tensor& x, const SliceRange& r) {
    return packed_copy(x.slice(r.axis, r.start, r.end, r.step));
}

Tensor slice_backward_strided(const Tensor& gy, const Shape& x_shape, const SliceRange& r) {
    Tensor gx = Tensor::zeros(x_shape, gy.dtype(), gy.device());
    copy_strided(gx.slice(r.axis, r.start, r.end, r.step), gy);
    return gx;
}

Tensor reshape_forward_strided(const Tensor& x, const Shape& shape) {
    Tensor y = Tensor::empty(shape, x.dtype(), x.device());
    copy_strided(y.view(x.shape()), x);
    return y;
}

Tensor transpose_forward_strided(const Tensor& x, int a, int b) {
    return packed_copy(x.transpose(a, b));
}

Tensor permute_forward_strided(const Tensor& x, std::span<const int> order) {
    return packed_copy(x.permute(order));
}

Tensor contiguous_forward_strided(const Tensor& x) {
    return packed_copy(x);
}

}  // namespace goose::ops
