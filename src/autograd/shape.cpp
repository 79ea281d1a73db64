// Autograd functions of the shape and copy ops.
#include "goose/autograd/shape.h"

#include "goose/ops/check.h"

namespace goose::ag {

namespace {
// The checks of the ops front ends for the paths that make views instead of calling them.
const Tensor& view_input(const char* op, const Var& x) {
    if (!x.defined()) fail("{}: the input Var is undefined", op);
    check::defined(op, x.value(), "input");
    check::float_dtype(op, x.value());
    return x.value();
}
}  // namespace

Var concat(const std::vector<Var>& xs, int axis) {
    std::vector<Tensor> values;
    values.reserve(xs.size());
    for (const Var& x : xs) {
        if (!x.defined()) fail("concat: input {} is an undefined Var", values.size());
        values.push_back(x.value());
    }
    Tensor y = ops::concat_forward(values, axis);
    std::vector<int64_t> sizes;
    for (const Tensor& v : values) sizes.push_back(v.size(axis));
    return record("concat", xs, std::move(y), [sizes, axis](GradIO& io) {
        std::vector<Tensor> g = ops::concat_backward(io.gy(), sizes, axis);
        for (int i = 0; i < io.num_inputs(); ++i)
            if (io.needs(i)) io.set(i, std::move(g[static_cast<size_t>(i)]));
    });
}

std::vector<Var> split(const Var& x, const std::vector<int64_t>& sizes, int axis) {
    std::vector<Tensor> ys = ops::split_forward(x.value(), sizes, axis);
    const size_t n = ys.size();
    return record("split", {x}, std::move(ys), [n, axis](GradIO& io) {
        std::vector<Tensor> gys;
        gys.reserve(n);
        for (size_t i = 0; i < n; ++i) gys.push_back(io.gy(static_cast<int>(i)));
        io.set(0, ops::split_backward(gys, axis));
    });
}

Var slice(const Var& x, int axis, int64_t start, int64_t end, int64_t step) {
    Tensor y = ops::slice_forward(x.value(), axis, start, end, step);
    return record("slice", {x}, std::move(y), [xs = x.shape(), axis, start, end, step](GradIO& io) {
        io.set(0, ops::slice_backward(io.gy(), xs, axis, start, end, step));
    });
}

Var reshape(const Var& x, const Shape& shape) {
    const Tensor& xv = view_input("reshape", x);
    const Shape s = ops::resolve_reshape("reshape", xv, shape);
    Tensor y = xv.is_contiguous() ? xv.view(s) : ops::reshape_forward(xv, s);
    return record("reshape", {x}, std::move(y), [xs = xv.shape()](GradIO& io) {
        const Tensor& g = io.gy();
        io.set(0, g.is_contiguous() ? g.view(xs) : ops::reshape_backward(g, xs));
    });
}

Var transpose(const Var& x, int a, int b) {
    const Tensor& xv = view_input("transpose", x);
    a = ops::shape_axis("transpose", xv, a);
    b = ops::shape_axis("transpose", xv, b);
    return record("transpose", {x}, xv.transpose(a, b),
                  [a, b](GradIO& io) { io.set(0, ops::transpose_backward(io.gy(), a, b)); });
}

Var permute(const Var& x, std::vector<int> order) {
    const Tensor& xv = view_input("permute", x);
    order = ops::resolve_permutation("permute", xv, order);
    Tensor y = xv.permute(order);
    return record("permute", {x}, std::move(y), [order = std::move(order)](GradIO& io) {
        io.set(0, ops::permute_backward(io.gy(), order));
    });
}

Var contiguous(const Var& x) {
    const Tensor& xv = view_input("contiguous", x);
    Tensor y = xv.is_contiguous() ? xv : ops::contiguous_forward(xv);
    return record("contiguous", {x}, std::move(y), [](GradIO& io) {
        const Tensor& g = io.gy();
        io.set(0, g.is_contiguous() ? g : ops::contiguous_backward(g));
    });
}

Var cast(const Var& x, DType dtype) {
    const Tensor& xv = view_input("cast", x);
    if (xv.dtype() == dtype) return x;
    const DType from = xv.dtype();
    return record("cast", {x}, xv.to(dtype), [from](GradIO& io) { io.set(0, io.gy().to(from)); });
}

}  // namespace goose::ag
