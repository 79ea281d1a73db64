// Fast CPU where and masked_fill: packed operands through the broadcast loops of
// binary_broadcast.h, the u8 mask read alongside; gradients of broadcast operands: the masked
// gradient, then sum_to_shape_cpu.
#include "goose/ops/reduce.h"
#include "goose/ops/select.h"
#include "ops/cpu/binary_broadcast.h"

namespace goose::ops {

using bcast::In;

namespace {
template <class T>
In<T> in(const Tensor& packed) {
    return {packed.data<T>(), packed.shape()};
}
}  // namespace

Tensor where_forward_cpu(const Tensor& cond, const Tensor& a, const Tensor& b) {
    const Shape out =
        broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
    const Tensor cc = cond.contiguous(), ac = a.contiguous(), bc = b.contiguous();
    Tensor y = Tensor::empty(out, a.dtype());
    bcast::float_dispatch(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        bcast::map(y.data<T>(), out, [](uint8_t c, T ai, T bi) { return c ? ai : bi; },
                   in<uint8_t>(cc), in<T>(ac), in<T>(bc));
    });
    return y;
}

std::array<Tensor, 2> where_backward_cpu(const Tensor& gy, const Tensor& cond,
                                         const Shape& a_shape, const Shape& b_shape, bool need_a,
                                         bool need_b) {
    const Shape& out = gy.shape();
    const Tensor gc = gy.contiguous(), cc = cond.contiguous();
    std::array<Tensor, 2> r;
    bcast::float_dispatch(gy.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const In<T> g = in<T>(gc);
        const In<uint8_t> c = in<uint8_t>(cc);
        if (need_a) {
            Tensor t = Tensor::empty(out, gy.dtype());
            bcast::map(t.data<T>(), out, [](T gi, uint8_t ci) { return ci ? gi : T(0); }, g, c);
            r[0] = t.shape() == a_shape ? t : sum_to_shape_cpu(t, a_shape);
        }
        if (need_b) {
            Tensor t = Tensor::empty(out, gy.dtype());
            bcast::map(t.data<T>(), out, [](T gi, uint8_t ci) { return ci ? T(0) : gi; }, g, c);
            r[1] = t.shape() == b_shape ? t : sum_to_shape_cpu(t, b_shape);
        }
    });
    return r;
}

Tensor masked_fill_forward_cpu(const Tensor& x, const Tensor& mask, double value) {
    const Tensor xc = x.contiguous(), mc = mask.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    bcast::float_dispatch(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T v = static_cast<T>(value);
        bcast::map(y.data<T>(), x.shape(), [v](T xi, uint8_t mi) { return mi ? v : xi; },
                   in<T>(xc), in<uint8_t>(mc));
    });
    return y;
}

}  // namespace goose::ops
