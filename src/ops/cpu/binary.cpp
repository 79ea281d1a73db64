// Fast CPU binary ops, scale and lerp: packed operands through the broadcast loops of
// binary_broadcast.h (same shape: one flat loop; row broadcast: unit-stride rows), OpenMP over
// pieces of the output. Gradients of broadcast operands: the elementwise term, then
// sum_to_shape_cpu.
#include "goose/ops/binary.h"
#include "goose/ops/reduce.h"
#include "ops/binary_math.h"
#include "ops/cpu/binary_broadcast.h"

namespace goose::ops {

using bcast::In;

namespace {
constexpr int64_t kParallelMin = 16384;

template <class T>
In<T> in(const Tensor& packed) {
    return {packed.data<T>(), packed.shape()};
}

// g (of the output's shape) summed back to `shape`; g itself when nothing was broadcast.
Tensor reduce_to(Tensor g, const Shape& shape) {
    return g.shape() == shape ? g : sum_to_shape_cpu(g, shape);
}

// Calls f with the op's scalar function, chosen outside the loop so each loop body is
// straight-line.
template <class T, class F>
void with_op(BinaryOp op, F f) {
    switch (op) {
        case BinaryOp::add:
            f([](T x, T y) { return binary_math::forward(BinaryOp::add, x, y); });
            break;
        case BinaryOp::sub:
            f([](T x, T y) { return binary_math::forward(BinaryOp::sub, x, y); });
            break;
        case BinaryOp::mul:
            f([](T x, T y) { return binary_math::forward(BinaryOp::mul, x, y); });
            break;
        case BinaryOp::div:
            f([](T x, T y) { return binary_math::forward(BinaryOp::div, x, y); });
            break;
    }
}
}  // namespace

Tensor binary_forward_cpu(BinaryOp op, const Tensor& a, const Tensor& b) {
    const Shape out = broadcast_shapes(a.shape(), b.shape(), binary_name(op));
    const Tensor ac = a.contiguous(), bc = b.contiguous();
    Tensor y = Tensor::empty(out, a.dtype());
    bcast::float_dispatch(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        with_op<T>(op, [&](auto f) { bcast::map(y.data<T>(), out, f, in<T>(ac), in<T>(bc)); });
    });
    return y;
}

std::array<Tensor, 2> binary_backward_cpu(BinaryOp op, const Tensor& gy, const Tensor& a,
                                          const Tensor& b, bool need_a, bool need_b) {
    const Shape& out = gy.shape();
    const Tensor gc = gy.contiguous();
    std::array<Tensor, 2> r;
    if (op == BinaryOp::add || op == BinaryOp::sub) {
        if (need_a) r[0] = sum_to_shape_cpu(gc, a.shape());
        if (need_b) {
            r[1] = sum_to_shape_cpu(gc, b.shape());
            if (op == BinaryOp::sub) r[1] = scale_forward_cpu(r[1], -1.0);
        }
        return r;
    }
    const Tensor ac = a.contiguous(), bc = b.contiguous();
    bcast::float_dispatch(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const In<T> g = in<T>(gc), av = in<T>(ac), bv = in<T>(bc);
        if (need_a) {
            Tensor t = Tensor::empty(out, a.dtype());
            if (op == BinaryOp::mul)
                bcast::map(t.data<T>(), out, [](T gi, T bi) { return gi * bi; }, g, bv);
            else
                bcast::map(t.data<T>(), out, [](T gi, T bi) { return gi / bi; }, g, bv);
            r[0] = reduce_to(t, a.shape());
        }
        if (need_b) {
            Tensor t = Tensor::empty(out, a.dtype());
            if (op == BinaryOp::mul)
                bcast::map(t.data<T>(), out, [](T gi, T ai) { return gi * ai; }, g, av);
            else
                bcast::map(t.data<T>(), out, [](T gi, T ai, T bi) { return -gi * ai / (bi * bi); },
                           g, av, bv);
            r[1] = reduce_to(t, b.shape());
        }
    });
    return r;
}

Tensor scale_forward_cpu(const Tensor& x, double s) {
    const Tensor xc = x.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    const int64_t n = x.numel();
    bcast::float_dispatch(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* xp = xc.data<T>();
        T* yp = y.data<T>();
        const T sv = static_cast<T>(s);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) yp[i] = sv * xp[i];
    });
    return y;
}

Tensor lerp_forward_cpu(const Tensor& a, const Tensor& b, const Tensor& w) {
    const Shape out =
        broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), "lerp"), w.shape(), "lerp");
    const Tensor ac = a.contiguous(), bc = b.contiguous(), wc = w.contiguous();
    Tensor y = Tensor::empty(out, a.dtype());
    bcast::float_dispatch(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        bcast::map(y.data<T>(), out, [](T ai, T bi, T wi) { return ai + (bi - ai) * wi; },
                   in<T>(ac), in<T>(bc), in<T>(wc));
    });
    return y;
}

std::array<Tensor, 3> lerp_backward_cpu(const Tensor& gy, const Tensor& a, const Tensor& b,
                                        const Tensor& w, std::array<bool, 3> needs) {
    const Shape& out = gy.shape();
    const Tensor gc = gy.contiguous(), ac = a.contiguous(), bc = b.contiguous(),
                 wc = w.contiguous();
    std::array<Tensor, 3> r;
    bcast::float_dispatch(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const In<T> g = in<T>(gc), av = in<T>(ac), bv = in<T>(bc), wv = in<T>(wc);
        if (needs[0]) {  // da = gy (1 - w)
            Tensor t = Tensor::empty(out, a.dtype());
            bcast::map(t.data<T>(), out, [](T gi, T wi) { return gi * (T(1) - wi); }, g, wv);
            r[0] = reduce_to(t, a.shape());
        }
        if (needs[1]) {  // db = gy w
            Tensor t = Tensor::empty(out, a.dtype());
            bcast::map(t.data<T>(), out, [](T gi, T wi) { return gi * wi; }, g, wv);
            r[1] = reduce_to(t, b.shape());
        }
        if (needs[2]) {  // dw = gy (b - a)
            Tensor t = Tensor::empty(out, a.dtype());
            bcast::map(t.data<T>(), out, [](T gi, T ai, T bi) { return gi * (bi - ai); }, g, av,
                       bv);
            r[2] = reduce_to(t, w.shape());
        }
    });
    return r;
}

}  // namespace goose::ops
