// CUDA where and masked_fill: packed operands through the broadcast map of ops_util.cuh, the
// u8 mask read alongside; gradients of broadcast operands: the masked gradient in the
// accumulation type, then a deterministic sum back to the operand's shape.
#include "ops/cuda/ops_util.cuh"  // first (see there)

#include "goose/ops/select.h"
#include "ops/cuda/cuda_ops.h"

namespace goose::ops {

using namespace cuda_ops;

namespace {
struct Where {
    template <class A>
    __device__ A operator()(uint8_t c, A a, A b) const { return c ? a : b; }
};
template <bool kWhenSet>
struct MaskGrad {  // g where the mask is set (kWhenSet) or clear
    template <class A>
    __device__ A operator()(A g, uint8_t c) const { return (c != 0) == kWhenSet ? g : A(0); }
};
template <class A>
struct Fill {
    A v;
    __device__ A operator()(A x, uint8_t m) const { return m ? v : x; }
};

template <class T, bool kWhenSet>
Tensor masked_grad(const Tensor& gc, const Tensor& cc, const Shape& shape) {
    const Shape& out = gc.shape();
    const bool reduce = out != shape;
    Tensor t = empty_on(out, reduce ? acc_dtype<T>() : gc.dtype(), gc);
    const std::array<Shape, 2> s{out, cc.shape()};
    if (reduce)
        bmap(ptr<acc_t<T>>(t), out, s, MaskGrad<kWhenSet>{}, ptr<T>(gc), ptr<uint8_t>(cc));
    else
        bmap(ptr<T>(t), out, s, MaskGrad<kWhenSet>{}, ptr<T>(gc), ptr<uint8_t>(cc));
    return reduce ? sum_to_shape_as(t, shape, gc.dtype()) : t;
}
}  // namespace

Tensor where_forward_cuda(const Tensor& cond, const Tensor& a, const Tensor& b) {
    const Shape out =
        broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
    const Tensor cc = cond.contiguous(), ac = a.contiguous(), bc = b.contiguous();
    Tensor y = empty_on(out, a.dtype(), a);
    dispatch_float(a.dtype(), "where", [&](auto tag) {
        using T = decltype(tag);
        bmap(ptr<T>(y), out, std::array<Shape, 3>{cc.shape(), ac.shape(), bc.shape()}, Where{},
             ptr<uint8_t>(cc), ptr<T>(ac), ptr<T>(bc));
    });
    return y;
}

std::array<Tensor, 2> where_backward_cuda(const Tensor& gy, const Tensor& cond,
                                          const Shape& a_shape, const Shape& b_shape,
                                          bool need_a, bool need_b) {
    const Tensor gc = gy.contiguous(), cc = cond.contiguous();
    std::array<Tensor, 2> r;
    dispatch_float(gy.dtype(), "where", [&](auto tag) {
        using T = decltype(tag);
        if (need_a) r[0] = masked_grad<T, true>(gc, cc, a_shape);
        if (need_b) r[1] = masked_grad<T, false>(gc, cc, b_shape);
    });
    return r;
}

Tensor masked_fill_forward_cuda(const Tensor& x, const Tensor& mask, double value) {
    const Tensor xc = x.contiguous(), mc = mask.contiguous();
    Tensor y = empty_on(x.shape(), x.dtype(), x);
    dispatch_float(x.dtype(), "masked_fill", [&](auto tag) {
        using T = decltype(tag);
        using A = acc_t<T>;
        bmap(ptr<T>(y), x.shape(), std::array<Shape, 2>{xc.shape(), mc.shape()}, Fill<A>{A(value)},
             ptr<T>(xc), ptr<uint8_t>(mc));
    });
    return y;
}

}  // namespace goose::ops
