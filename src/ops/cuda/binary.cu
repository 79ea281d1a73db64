// CUDA binary ops (add, sub, mul, div with broadcasting), scale and lerp: packed operands
// through the broadcast map of ops_util.cuh (dims merged where every operand allows, so a
// same-shape op is one flat loop and a (C) bias against (B, T, C) a two-dim index). Gradients
// of broadcast operands: the elementwise term in the accumulation type, then a deterministic
// sum back to the operand's shape (rounded to bf16 once).
#include "ops/cuda/ops_util.cuh"  // first (see there)

#include "ops/cuda/cuda_ops.h"

namespace goose::ops {

using namespace cuda_ops;

namespace {

template <BinaryOp op>
struct BinaryFwd {
    template <class A>
    __device__ A operator()(A a, A b) const {
        if constexpr (op == BinaryOp::add) return a + b;
        if constexpr (op == BinaryOp::sub) return a - b;
        if constexpr (op == BinaryOp::mul) return a * b;
        if constexpr (op == BinaryOp::div) return a / b;
        return a;
    }
};
struct MulG {  // g * v
    template <class A>
    __device__ A operator()(A g, A v) const { return g * v; }
};
struct DivG {  // g / b
    template <class A>
    __device__ A operator()(A g, A b) const { return g / b; }
};
struct DivGb {  // -g a / b^2
    template <class A>
    __device__ A operator()(A g, A a, A b) const { return -g * a / (b * b); }
};
struct LerpFwd {
    template <class A>
    __device__ A operator()(A a, A b, A w) const { return a + (b - a) * w; }
};
struct OneMinusW {  // g (1 - w)
    template <class A>
    __device__ A operator()(A g, A w) const { return g * (A(1) - w); }
};
struct GDiff {  // g (b - a)
    template <class A>
    __device__ A operator()(A g, A a, A b) const { return g * (b - a); }
};
template <class A>
struct ScaleBy {
    A s;
    __device__ A operator()(A x) const { return s * x; }
};

// The gradient of an operand of shape `shape` from the elementwise term f(g, ...) over the
// output's shape: written straight in T when nothing was broadcast, else in the accumulation
// type and summed back.
template <class T, class F, class... P>
Tensor grad_term(const Tensor& like, const Shape& out, const Shape& shape, F f,
                 std::array<Shape, sizeof...(P)> shapes, const P*... p) {
    const bool reduce = out != shape;
    const DType dt = reduce ? acc_dtype<T>() : like.dtype();
    Tensor t = empty_on(out, dt, like);
    if (reduce)
        bmap(ptr<acc_t<T>>(t), out, shapes, f, p...);
    else
        bmap(ptr<T>(t), out, shapes, f, p...);
    return reduce ? sum_to_shape_as(t, shape, like.dtype()) : t;
}
}  // namespace

Tensor binary_forward_cuda(BinaryOp op, const Tensor& a, const Tensor& b) {
    const Shape out = broadcast_shapes(a.shape(), b.shape(), binary_name(op));
    const Tensor ac = a.contiguous(), bc = b.contiguous();
    Tensor y = empty_on(out, a.dtype(), a);
    const std::array<Shape, 2> shapes{ac.shape(), bc.shape()};
    dispatch_float(a.dtype(), binary_name(op), [&](auto tag) {
        using T = decltype(tag);
        T* yp = ptr<T>(y);
        const T *ap = ptr<T>(ac), *bp = ptr<T>(bc);
        switch (op) {
            case BinaryOp::add: bmap(yp, out, shapes, BinaryFwd<BinaryOp::add>{}, ap, bp); break;
            case BinaryOp::sub: bmap(yp, out, shapes, BinaryFwd<BinaryOp::sub>{}, ap, bp); break;
            case BinaryOp::mul: bmap(yp, out, shapes, BinaryFwd<BinaryOp::mul>{}, ap, bp); break;
            case BinaryOp::div: bmap(yp, out, shapes, BinaryFwd<BinaryOp::div>{}, ap, bp); break;
        }
    });
    return y;
}

std::array<Tensor, 2> binary_backward_cuda(BinaryOp op, const Tensor& gy, const Tensor& a,
                                           const Tensor& b, bool need_a, bool need_b) {
    const Shape& out = gy.shape();
    const Tensor gc = gy.contiguous();
    std::array<Tensor, 2> r;
    if (op == BinaryOp::add || op == BinaryOp::sub) {
        // gy itself where nothing was broadcast (gradients may alias; the tape never writes them)
        if (need_a) r[0] = a.shape() == out ? gc : sum_to_shape_as(gc, a.shape(), gy.dtype());
        if (need_b) {
            r[1] = b.shape() == out ? gc : sum_to_shape_as(gc, b.shape(), gy.dtype());
            if (op == BinaryOp::sub) r[1] = scale_forward_cuda(r[1], -1.0);
        }
        return r;
    }
    const Tensor ac = a.contiguous(), bc = b.contiguous();
    dispatch_float(a.dtype(), binary_name(op), [&](auto tag) {
        using T = decltype(tag);
        const T *g = ptr<T>(gc), *ap = ptr<T>(ac), *bp = ptr<T>(bc);
        if (need_a) {
            const std::array<Shape, 2> s{gc.shape(), bc.shape()};
            r[0] = op == BinaryOp::mul ? grad_term<T>(a, out, a.shape(), MulG{}, s, g, bp)
                                       : grad_term<T>(a, out, a.shape(), DivG{}, s, g, bp);
        }
        if (need_b) {
            if (op == BinaryOp::mul)
                r[1] = grad_term<T>(a, out, b.shape(), MulG{},
                                    std::array<Shape, 2>{gc.shape(), ac.shape()}, g, ap);
            else
                r[1] = grad_term<T>(a, out, b.shape(), DivGb{},
                                    std::array<Shape, 3>{gc.shape(), ac.shape(), bc.shape()}, g,
                                    ap, bp);
        }
    });
    return r;
}

Tensor scale_forward_cuda(const Tensor& x, double s) {
    const Tensor xc = x.contiguous();
    Tensor y = empty_on(x.shape(), x.dtype(), x);
    dispatch_float(x.dtype(), "scale", [&](auto tag) {
        using T = decltype(tag);
        using A = acc_t<T>;
        bmap(ptr<T>(y), x.shape(), std::array<Shape, 1>{x.shape()}, ScaleBy<A>{A(s)}, ptr<T>(xc));
    });
    return y;
}

Tensor lerp_forward_cuda(const Tensor& a, const Tensor& b, const Tensor& w) {
    const Shape out =
        broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), "lerp"), w.shape(), "lerp");
    const Tensor ac = a.contiguous(), bc = b.contiguous(), wc = w.contiguous();
    Tensor y = empty_on(out, a.dtype(), a);
    dispatch_float(a.dtype(), "lerp", [&](auto tag) {
        using T = decltype(tag);
        bmap(ptr<T>(y), out, std::array<Shape, 3>{a.shape(), b.shape(), w.shape()}, LerpFwd{},
             ptr<T>(ac), ptr<T>(bc), ptr<T>(wc));
    });
    return y;
}

std::array<Tensor, 3> lerp_backward_cuda(const Tensor& gy, const Tensor& a, const Tensor& b,
                                         const Tensor& w, std::array<bool, 3> needs) {
    const Shape& out = gy.shape();
    const Tensor gc = gy.contiguous(), ac = a.contiguous(), bc = b.contiguous(),
                 wc = w.contiguous();
    std::array<Tensor, 3> r;
    dispatch_float(a.dtype(), "lerp", [&](auto tag) {
        using T = decltype(tag);
        const T *g = ptr<T>(gc), *ap = ptr<T>(ac), *bp = ptr<T>(bc), *wp = ptr<T>(wc);
        const std::array<Shape, 2> gw{out, w.shape()};
        if (needs[0]) r[0] = grad_term<T>(a, out, a.shape(), OneMinusW{}, gw, g, wp);
        if (needs[1]) r[1] = grad_term<T>(a, out, b.shape(), MulG{}, gw, g, wp);
        if (needs[2])
            r[2] = grad_term<T>(a, out, w.shape(), GDiff{},
                                std::array<Shape, 3>{out, a.shape(), b.shape()}, g, ap, bp);
    });
    return r;
}

}  // namespace goose::ops
