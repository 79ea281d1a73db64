// CUDA unary ops: packed input through the flat path of the broadcast map (16-byte loads and
// stores, the op a template argument so each body is straight-line); math in f32 (f64 for
// f64), bf16 loaded and stored through f32.
#include "ops/cuda/ops_util.cuh"  // first (see there)
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/math.cuh"

namespace goose::ops {

using namespace cuda_ops;

namespace {

template <UnaryOp op>
struct UnaryFwd {
    template <class A>
    __device__ A operator()(A x) const { return dmath::forward<op, A>(x); }
};
template <UnaryOp op>
struct UnaryBwd {  // gy * f'(x)
    template <class A>
    __device__ A operator()(A g, A x) const { return g * dmath::derivative<op, A>(x); }
};

template <UnaryOp op>
struct UnaryBwdFromOutput {  // gy * f'(x), f' from y = f(x)
    template <class A>
    __device__ A operator()(A g, A y) const { return g * dmath::derivative_from_output<op, A>(y); }
};

// Calls f(std::integral_constant<UnaryOp, op>) for the runtime op.
template <class F>
void with_op(UnaryOp op, F&& f) {
    switch (op) {
#define GOOSE_UNARY_CASE(name) \
    case UnaryOp::name: f(std::integral_constant<UnaryOp, UnaryOp::name>{}); return;
        GOOSE_UNARY_CASE(exp) GOOSE_UNARY_CASE(log) GOOSE_UNARY_CASE(tanh)
        GOOSE_UNARY_CASE(sigmoid) GOOSE_UNARY_CASE(softplus) GOOSE_UNARY_CASE(relu)
        GOOSE_UNARY_CASE(relu2) GOOSE_UNARY_CASE(gelu_tanh) GOOSE_UNARY_CASE(silu)
        GOOSE_UNARY_CASE(neg) GOOSE_UNARY_CASE(sqrt) GOOSE_UNARY_CASE(square)
#undef GOOSE_UNARY_CASE
    }
}
}  // namespace

Tensor unary_forward_cuda(UnaryOp op, const Tensor& x) {
    const Tensor xc = x.contiguous();
    Tensor y = empty_on(x.shape(), x.dtype(), x);
    const int64_t n = x.numel();
    if (n == 0) return y;
    dispatch_float(x.dtype(), unary_name(op), [&](auto tag) {
        using T = decltype(tag);
        with_op(op, [&](auto opc) {
            bmap(ptr<T>(y), x.shape(), std::array<Shape, 1>{x.shape()},
                 UnaryFwd<decltype(opc)::value>{}, ptr<T>(xc));
        });
    });
    check_launch(unary_name(op));
    return y;
}

Tensor unary_backward_cuda(UnaryOp op, const Tensor& gy, const Tensor& x) {
    const Tensor xc = x.contiguous(), gc = gy.contiguous();
    Tensor dx = empty_on(x.shape(), x.dtype(), x);
    const int64_t n = x.numel();
    if (n == 0) return dx;
    dispatch_float(x.dtype(), unary_name(op), [&](auto tag) {
        using T = decltype(tag);
        with_op(op, [&](auto opc) {
            bmap(ptr<T>(dx), x.shape(), std::array<Shape, 2>{x.shape(), x.shape()},
                 UnaryBwd<decltype(opc)::value>{}, ptr<T>(gc), ptr<T>(xc));
        });
    });
    check_launch(unary_name(op));
    return dx;
}

Tensor unary_backward_from_output_cuda(UnaryOp op, const Tensor& gy, const Tensor& y) {
    const Tensor yc = y.contiguous(), gc = gy.contiguous();
    Tensor dx = empty_on(y.shape(), y.dtype(), y);
    if (y.numel() == 0) return dx;
    auto run = [&](auto opc) {
        dispatch_float(y.dtype(), unary_name(op), [&](auto tag) {
            using T = decltype(tag);
            bmap(ptr<T>(dx), y.shape(), std::array<Shape, 2>{y.shape(), y.shape()},
                 UnaryBwdFromOutput<decltype(opc)::value>{}, ptr<T>(gc), ptr<T>(yc));
        });
    };
    switch (op) {  // the ops with an output derivative (the front end checked)
        case UnaryOp::exp: run(std::integral_constant<UnaryOp, UnaryOp::exp>{}); break;
        case UnaryOp::tanh: run(std::integral_constant<UnaryOp, UnaryOp::tanh>{}); break;
        case UnaryOp::sigmoid: run(std::integral_constant<UnaryOp, UnaryOp::sigmoid>{}); break;
        case UnaryOp::relu: run(std::integral_constant<UnaryOp, UnaryOp::relu>{}); break;
        case UnaryOp::relu2: run(std::integral_constant<UnaryOp, UnaryOp::relu2>{}); break;
        default: raise("{}: no derivative from the output", unary_name(op));
    }
    check_launch(unary_name(op));
    return dx;
}

}  // namespace goose::ops
