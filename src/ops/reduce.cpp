// Front end of the reduce family (sum, mean, max, sum_to_shape): checks, then dispatch.
#include "goose/ops/reduce.h"

#include <algorithm>
#include <string>

#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#ifdef GOOSE_CUDA
#include "core/cuda/device_check.h"
#include "goose/core/cuda.h"
#include "ops/cuda/cuda_ops.h"
#endif

namespace goose::ops {

namespace {
std::string axes_str(const std::vector<int>& axes) {
    std::string s = "[";
    for (size_t i = 0; i < axes.size(); ++i) s += (i ? ", " : "") + std::to_string(axes[i]);
    return s + "]";
}

// Sorted, unique, non-negative axes; empty means every axis. `what` describes the tensor.
std::vector<int> normalize_axes(const char* op, const std::vector<int>& axes, const Shape& shape,
                                const std::string& what) {
    const int n = shape.ndim();
    std::vector<int> r;
    if (axes.empty()) {
        for (int d = 0; d < n; ++d) r.push_back(d);
        return r;
    }
    for (int a : axes) {
        const int d = a < 0 ? a + n : a;
        if (d < 0 || d >= n)
            fail("{}: axis {} is out of range for {} ({} dims)", op, a, what, n);
        if (std::find(r.begin(), r.end(), d) != r.end())
            fail("{}: axis {} is repeated in axes {} for {}", op, a, axes_str(axes), what);
        r.push_back(d);
    }
    std::sort(r.begin(), r.end());
    return r;
}

Shape keep_shape(const Shape& s, const std::vector<int>& axes) {
    Shape k = s;
    for (int a : axes) k[a] = 1;
    return k;
}

Shape out_shape(const Shape& s, const std::vector<int>& axes, bool keepdim) {
    if (keepdim) return keep_shape(s, axes);
    Shape o;
    for (int d = 0; d < s.ndim(); ++d)
        if (std::find(axes.begin(), axes.end(), d) == axes.end()) o.push_back(s[d]);
    return o;
}

double count_of(const Shape& s, const std::vector<int>& axes) {
    double c = 1;
    for (int a : axes) c *= static_cast<double>(s[a]);
    return c;
}

Tensor reduce_forward(const char* op, const Tensor& x, const std::vector<int>& axes_in,
                      bool keepdim, bool mean) {
    check::defined(op, x, "input");
    check::float_dtype(op, x);
    const std::vector<int> axes = normalize_axes(op, axes_in, x.shape(), x.desc());
    const double scale = mean ? 1.0 / count_of(x.shape(), axes) : 1.0;
    Tensor y;
    switch (backend_of(x)) {
        case Backend::ref: y = sum_forward_ref(x, axes, scale); break;
        case Backend::cpu: y = sum_forward_cpu(x, axes, scale); break;
#ifdef GOOSE_CUDA
        case Backend::cuda: y = sum_forward_cuda(x, axes, scale); break;
#endif
        default: no_kernel(op, backend_of(x));
    }
    return y.view(out_shape(x.shape(), axes, keepdim));
}

Tensor reduce_backward(const char* op, const Tensor& gy, const Shape& x_shape,
                       const std::vector<int>& axes_in, bool keepdim, bool mean) {
    check::defined(op, gy, "gradient");
    check::float_dtype(op, gy);
    const std::vector<int> axes =
        normalize_axes(op, axes_in, x_shape, "an input of shape " + x_shape.str());
    const Shape expect = out_shape(x_shape, axes, keepdim);
    if (gy.shape() != expect)
        fail("{}: gradient {} does not have the output's shape {}", op, gy.desc(), expect.str());
    const Tensor gk = gy.reshape(keep_shape(x_shape, axes));
    const double scale = mean ? 1.0 / count_of(x_shape, axes) : 1.0;
    switch (backend_of(gy)) {
        case Backend::ref: return sum_backward_ref(gk, x_shape, scale);
        case Backend::cpu: return sum_backward_cpu(gk, x_shape, scale);
#ifdef GOOSE_CUDA
        case Backend::cuda: return sum_backward_cuda(gk, x_shape, scale);
#endif
        default: no_kernel(op, backend_of(gy));
    }
}

int max_axis(const Shape& shape, int axis, const std::string& what) {
    const int n = shape.ndim();
    const int d = axis < 0 ? axis + n : axis;
    if (d < 0 || d >= n) fail("max: axis {} is out of range for {} ({} dims)", axis, what, n);
    if (shape[d] == 0) fail("max: axis {} of {} is empty (no maximum)", axis, what);
    return d;
}
}  // namespace

Tensor sum_forward(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
    return reduce_forward("sum", x, axes, keepdim, false);
}

Tensor sum_backward(const Tensor& gy, const Shape& x_shape, const std::vector<int>& axes,
                    bool keepdim) {
    return reduce_backward("sum", gy, x_shape, axes, keepdim, false);
}

Tensor mean_forward(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
    return reduce_forward("mean", x, axes, keepdim, true);
}

Tensor mean_backward(const Tensor& gy, const Shape& x_shape, const std::vector<int>& axes,
                     bool keepdim) {
    return reduce_backward("mean", gy, x_shape, axes, keepdim, true);
}

MaxResult max_forward(const Tensor& x, int axis, bool keepdim) {
    check::defined("max", x, "input");
    check::float_dtype("max", x);
    const int d = max_axis(x.shape(), axis, x.desc());
    MaxResult r;
    switch (backend_of(x)) {
        case Backend::ref: r = max_forward_ref(x, d); break;
        case Backend::cpu: r = max_forward_cpu(x, d); break;
#ifdef GOOSE_CUDA
        case Backend::cuda: r = max_forward_cuda(x, d); break;
#endif
        default: no_kernel("max", backend_of(x));
    }
    if (!keepdim) {
        const Shape s = x.shape().without(d);
        r.values = r.values.view(s);
        r.indices = r.indices.view(s);
    }
    return r;
}

Tensor max_backward(const Tensor& gy, const Tensor& indices, const Shape& x_shape, int axis,
                    bool keepdim) {
    check::defined("max", gy, "gradient");
    check::float_dtype("max", gy);
    check::defined("max", indices, "indices");
    check::index_dtype("max", indices);
    const int d = max_axis(x_shape, axis, "an input of shape " + x_shape.str());
    const Shape keep = x_shape.without(d).with_inserted(d, 1);
    const Shape expect = keepdim ? keep : x_shape.without(d);
    if (gy.shape() != expect || indices.shape() != expect)
        fail("max: gradient {} and indices {} must have the output's shape {}", gy.desc(),
             indices.desc(), expect.str());
#ifdef GOOSE_CUDA
    // While a CUDA graph is captured: the range check runs on the device (no host copy).
    if (indices.device().is_cuda() && gy.device().is_cuda() && cuda::capturing()) {
        cuda_detail::check_indices_on_device(indices, x_shape[d], std::nullopt, "max", "index",
                                             " (axis " + std::to_string(axis) + ")");
        return max_backward_cuda(gy.reshape(keep), indices.reshape(keep), x_shape, d);
    }
#endif
    // The range check reads the indices on the host (a copy for device tensors).
    const Tensor ih = indices.device().is_cpu() ? indices : indices.to(Device::cpu());
    const Tensor ik = ih.to(DType::i64).reshape(keep);
    const int64_t* ip = ik.data<int64_t>();
    for (int64_t i = 0; i < ik.numel(); ++i)
        if (ip[i] < 0 || ip[i] >= x_shape[d])
            fail("max: index {} is out of range for axis {} of size {}", ip[i], axis, x_shape[d]);
    const Tensor gk = gy.reshape(keep);
    switch (backend_of("max", {&gy, &indices})) {
        case Backend::ref: return max_backward_ref(gk, ik, x_shape, d);
        case Backend::cpu: return max_backward_cpu(gk, ik, x_shape, d);
#ifdef GOOSE_CUDA
        case Backend::cuda: return max_backward_cuda(gk, indices.reshape(keep), x_shape, d);
#endif
        default: no_kernel("max", backend_of(gy));
    }
}

std::vector<int> broadcast_axes(const Shape& to, const Shape& from) {
    std::vector<int> axes;
    const int lead = from.ndim() - to.ndim();
    for (int d = 0; d < from.ndim(); ++d)
        if (d < lead || (to[d - lead] == 1 && from[d] != 1)) axes.push_back(d);
    return axes;
}

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
    check::defined("sum_to_shape", g, "gradient");
    check::float_dtype("sum_to_shape", g);
    bool ok = shape.ndim() <= g.ndim();
    for (int d = 0; d < shape.ndim() && ok; ++d)
        ok = shape[d] == 1 || shape[d] == g.size(g.ndim() - shape.ndim() + d);
    if (!ok)
        fail("sum_to_shape: shape {} does not broadcast to the gradient {}", shape.str(),
             g.desc());
    switch (backend_of(g)) {
        case Backend::ref: return sum_to_shape_ref(g, shape);
        case Backend::cpu: return sum_to_shape_cpu(g, shape);
#ifdef GOOSE_CUDA
        case Backend::cuda: return sum_to_shape_cuda(g, shape);
#endif
        default: no_kernel("sum_to_shape", backend_of(g));
    }
}

}  // namespace goose::ops
