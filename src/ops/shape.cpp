// Front end of the shape and copy ops: argument checks and resolution, then dispatch.
#include "goose/ops/shape.h"

#include <algorithm>

#include "goose/ops/backend.h"
#include "goose/ops/check.h"

namespace goose::ops {

namespace {

std::string sizes_str(const std::vector<int64_t>& sizes) {
    std::string s = "[";
    for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
    return s + "]";
}

std::string order_str(std::span<const int> order) {
    std::string s = "[";
    for (size_t i = 0; i < order.size(); ++i) s += (i ? ", " : "") + std::to_string(order[i]);
    return s + "]";
}

int axis_of(const char* op, int ndim, const std::string& desc, int axis) {
    const int a = axis < 0 ? axis + ndim : axis;
    if (a < 0 || a >= ndim)
        fail("{}: axis {} is out of range for {} ({} dims)", op, axis, desc, ndim);
    return a;
}

SliceRange slice_of(const char* op, const Shape& shape, const std::string& desc, int axis,
                    int64_t start, int64_t end, int64_t step) {
    SliceRange r;
    r.axis = axis_of(op, shape.ndim(), desc, axis);
    if (step <= 0) fail("{}: step must be positive, got {} (slicing {})", op, step, desc);
    const int64_t n = shape[r.axis];
    if (start < 0) start += n;
    if (end < 0) end += n;
    r.start = std::clamp<int64_t>(start, 0, n);
    r.end = std::clamp<int64_t>(end, r.start, n);
    r.step = step;
    r.count = (r.end - r.start + step - 1) / step;
    return r;
}

// f32/f64 everywhere; bf16 too on CUDA (copies only, no arithmetic).
void shape_dtype(const char* op, const Tensor& x) {
    if (x.device().is_cuda() && x.dtype() == DType::bf16) return;
    check::float_dtype(op, x);
}

void check_input(const char* op, const Tensor& x, const char* what) {
    check::defined(op, x, what);
    shape_dtype(op, x);
}

// Every tensor of ts on one device with one dtype and one rank, equal sizes outside `axis`.
// Returns the backend for them.
Backend check_concat_inputs(const char* op, const std::vector<Tensor>& ts, int& axis,
                            const char* what) {
    if (ts.empty()) fail("{}: needs at least one {}, got an empty list", op, what);
    for (size_t i = 0; i < ts.size(); ++i)
        if (!ts[i].defined()) fail("{}: {} {} is undefined", op, what, i);
    const Tensor& t0 = ts[0];
    shape_dtype(op, t0);
    axis = shape_axis(op, t0, axis);
    for (size_t i = 1; i < ts.size(); ++i) {
        const Tensor& t = ts[i];
        if (t.dtype() != t0.dtype())
            fail("{}: {} {} is {} but {} 0 is {}: dtypes differ", op, what, i, t.desc(), what,
                 t0.desc());
        if (!(t.device() == t0.device()))
            fail("{}: {} {} is {} but {} 0 is {}: devices differ", op, what, i, t.desc(), what,
                 t0.desc());
        bool same = t.ndim() == t0.ndim();
        for (int d = 0; same && d < t0.ndim(); ++d) same = d == axis || t.size(d) == t0.size(d);
        if (!same)
            fail("{}: {} {} is {} but {} 0 is {}: shapes must be equal outside axis {}", op, what,
                 i, t.desc(), what, t0.desc(), axis);
    }
    return backend_of(t0);
}

// sizes: non-negative, summing to x.size(axis).
void check_split_sizes(const char* op, const Tensor& x, const std::vector<int64_t>& sizes,
                       int axis) {
    if (sizes.empty()) fail("{}: sizes is empty (splitting {} on axis {})", op, x.desc(), axis);
    int64_t total = 0;
    for (int64_t s : sizes) {
        if (s < 0)
            fail("{}: sizes {} has a negative entry (splitting {})", op, sizes_str(sizes),
                 x.desc());
        total += s;
    }
    if (total != x.size(axis))
        fail("{}: sizes {} sum to {}, but {} has size {} on axis {}", op, sizes_str(sizes), total,
             x.desc(), x.size(axis), axis);
}

std::vector<Tensor> dispatch_split(Backend b, const char* op, const Tensor& x,
                                   const std::vector<int64_t>& sizes, int axis) {
    switch (b) {
        case Backend::ref:
            return split_forward_ref(x, sizes, axis);
        case Backend::cpu:
        case Backend::cuda:
            return split_forward_strided(x, sizes, axis);
        default:
            no_kernel(op, b);
    }
}

Tensor dispatch_concat(Backend b, const char* op, const std::vector<Tensor>& xs, int axis) {
    switch (b) {
        case Backend::ref:
            return concat_forward_ref(xs, axis);
        case Backend::cpu:
        case Backend::cuda:
            return concat_forward_strided(xs, axis);
        default:
            no_kernel(op, b);
    }
}

Tensor dispatch_reshape(const char* op, const Tensor& x, const Shape& shape) {
    switch (backend_of(x)) {
        case Backend::ref:
            return reshape_forward_ref(x, shape);
        case Backend::cpu:
        case Backend::cuda:
            return reshape_forward_strided(x, shape);
        default:
            no_kernel(op, backend_of(x));
    }
}

Tensor dispatch_transpose(const char* op, const Tensor& x, int a, int b) {
    switch (backend_of(x)) {
        case Backend::ref:
            return transpose_forward_ref(x, a, b);
        case Backend::cpu:
        case Backend::cuda:
            return transpose_forward_strided(x, a, b);
        default:
            no_kernel(op, backend_of(x));
    }
}

Tensor dispatch_permute(const char* op, const Tensor& x, std::span<const int> order) {
    switch (backend_of(x)) {
        case Backend::ref:
            return permute_forward_ref(x, order);
        case Backend::cpu:
        case Backend::cuda:
            return permute_forward_strided(x, order);
        default:
            no_kernel(op, backend_of(x));
    }
}

Tensor dispatch_contiguous(const char* op, const Tensor& x) {
    switch (backend_of(x)) {
        case Backend::ref:
            return contiguous_forward_ref(x);
        case Backend::cpu:
        case Backend::cuda:
            return contiguous_forward_strided(x);
        default:
            no_kernel(op, backend_of(x));
    }
}

}  // namespace

// ---- argument helpers ------------------------------------------------------------------------

int shape_axis(const char* op, const Tensor& x, int axis) {
    return axis_of(op, x.ndim(), x.desc(), axis);
}

Shape resolve_reshape(const char* op, const Tensor& x, const Shape& shape) {
    Shape s = shape;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < s.ndim(); ++i) {
        if (s[i] == -1) {
            if (infer >= 0)
                fail("{}: cannot reshape {} to {}: only one size may be -1", op, x.desc(),
                     shape.str());
            infer = i;
        } else if (s[i] < 0) {
            fail("{}: cannot reshape {} to {}: negative size", op, x.desc(), shape.str());
        } else {
            known *= s[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || x.numel() % known != 0)
            fail("{}: cannot reshape {} ({} elements) to {}", op, x.desc(), x.numel(), shape.str());
        s[infer] = x.numel() / known;
    }
    if (s.numel() != x.numel())
        fail("{}: cannot reshape {} ({} elements) to {} ({} elements)", op, x.desc(), x.numel(),
             shape.str(), s.numel());
    return s;
}

std::vector<int> resolve_permutation(const char* op, const Tensor& x, std::span<const int> order) {
    if (static_cast<int>(order.size()) != x.ndim())
        fail("{}: order {} has {} entries for {} ({} dims)", op, order_str(order), order.size(),
             x.desc(), x.ndim());
    std::vector<int> r(order.size());
    bool seen[kMaxDims] = {};
    for (size_t i = 0; i < order.size(); ++i) {
        const int o = order[i] < 0 ? order[i] + x.ndim() : order[i];
        if (o < 0 || o >= x.ndim())
            fail("{}: order {} has axis {}, out of range for {}", op, order_str(order), order[i],
                 x.desc());
        if (seen[o])
            fail("{}: order {} repeats axis {}: not a permutation of the axes of {}", op,
                 order_str(order), o, x.desc());
        seen[o] = true;
        r[i] = o;
    }
    return r;
}

SliceRange resolve_slice(const char* op, const Tensor& x, int axis, int64_t start, int64_t end,
                         int64_t step) {
    return slice_of(op, x.shape(), x.desc(), axis, start, end, step);
}
// ---- concat / split --------------------------------------------------------------------------

Tensor concat_forward(const std::vector<Tensor>& xs, int axis) {
    const Backend b = check_concat_inputs("concat", xs, axis, "input");
    return dispatch_concat(b, "concat", xs, axis);
}

std::vector<Tensor> concat_backward(const Tensor& gy, const std::vector<int64_t>& sizes, int axis) {
    check_input("concat", gy, "gradient");
    axis = shape_axis("concat", gy, axis);
    check_split_sizes("concat", gy, sizes, axis);
    return dispatch_split(backend_of(gy), "concat", gy, sizes, axis);
}

std::vector<Tensor> split_forward(const Tensor& x, const std::vector<int64_t>& sizes, int axis) {
    check_input("split", x, "input");
    axis = shape_axis("split", x, axis);
    check_split_sizes("split", x, sizes, axis);
    return dispatch_split(backend_of(x), "split", x, sizes, axis);
}

Tensor split_backward(const std::vector<Tensor>& gys, int axis) {
    const Backend b = check_concat_inputs("split", gys, axis, "gradient");
    return dispatch_concat(b, "split", gys, axis);
}

// ---- slice -----------------------------------------------------------------------------------

Tensor slice_forward(const Tensor& x, int axis, int64_t start, int64_t end, int64_t step) {
    check_input("slice", x, "input");
    const SliceRange r = resolve_slice("slice", x, axis, start, end, step);
    switch (backend_of(x)) {
        case Backend::ref:
            return slice_forward_ref(x, r);
        case Backend::cpu:
        case Backend::cuda:
            return slice_forward_strided(x, r);
        default:
            no_kernel("slice", backend_of(x));
    }
}

Tensor slice_backward(const Tensor& gy, const Shape& x_shape, int axis, int64_t start, int64_t end,
                      int64_t step) {
    check_input("slice", gy, "gradient");
    const SliceRange r =
        slice_of("slice", x_shape, "input shape " + x_shape.str(), axis, start, end, step);
    Shape expect = x_shape;
    expect[r.axis] = r.count;
    if (gy.shape() != expect)
        fail("slice: gradient {} does not match the slice {} of input shape {}", gy.desc(),
             expect.str(), x_shape.str());
    switch (backend_of(gy)) {
        case Backend::ref:
            return slice_backward_ref(gy, x_shape, r);
        case Backend::cpu:
        case Backend::cuda:
            return slice_backward_strided(gy, x_shape, r);
        default:
            no_kernel("slice", backend_of(gy));
    }
}

// ---- reshape / transpose / permute / contiguous ---------------------------------------------

Tensor reshape_forward(const Tensor& x, const Shape& shape) {
    check_input("reshape", x, "input");
    return dispatch_reshape("reshape", x, resolve_reshape("reshape", x, shape));
}

Tensor reshape_backward(const Tensor& gy, const Shape& x_shape) {
    check_input("reshape", gy, "gradient");
    if (x_shape.numel() != gy.numel())
        fail("reshape: gradient {} ({} elements) does not fit input shape {} ({} elements)",
             gy.desc(), gy.numel(), x_shape.str(), x_shape.numel());
    return dispatch_reshape("reshape", gy, x_shape);
}

Tensor transpose_forward(const Tensor& x, int a, int b) {
    check_input("transpose", x, "input");
    return dispatch_transpose("transpose", x, shape_axis("transpose", x, a),
                              shape_axis("transpose", x, b));
}

Tensor transpose_backward(const Tensor& gy, int a, int b) {
    check_input("transpose", gy, "gradient");
    return dispatch_transpose("transpose", gy, shape_axis("transpose", gy, a),
                              shape_axis("transpose", gy, b));
}

Tensor permute_forward(const Tensor& x, std::span<const int> order) {
    check_input("permute", x, "input");
    const std::vector<int> o = resolve_permutation("permute", x, order);
    return dispatch_permute("permute", x, o);
}

Tensor permute_backward(const Tensor& gy, std::span<const int> order) {
    check_input("permute", gy, "gradient");
    const std::vector<int> o = resolve_permutation("permute", gy, order);
    std::vector<int> inverse(o.size());
    for (size_t i = 0; i < o.size(); ++i) inverse[static_cast<size_t>(o[i])] = static_cast<int>(i);
    return dispatch_permute("permute", gy, inverse);
}

Tensor contiguous_forward(const Tensor& x) {
    check_input("contiguous", x, "input");
    return dispatch_contiguous("contiguous", x);
}

Tensor contiguous_backward(const Tensor& gy) {
    check_input("contiguous", gy, "gradient");
    return dispatch_contiguous("contiguous", gy);
}

}  // namespace goose::ops
