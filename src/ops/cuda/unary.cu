// CUDA unary ops: packed input, one flat grid-stride kernel per op (the op a template
// argument, so each body is straight-line), four elements per thread per step; math in f32
// (f64 for f64), bf16 loaded and stored through f32.
#include "ops/cuda/ops_util.cuh"  // first (see there)
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/math.cuh"

namespace goose::ops {

using namespace cuda_ops;

namespace {

template <UnaryOp op, class T>
__global__ void unary_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n) {
    using A = acc_t<T>;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        y[i] = from_acc<T>(dmath::forward<op, A>(to_acc(x[i])));
}

template <UnaryOp op, class T>
__global__ void unary_bwd_kernel(const T* __restrict__ g, const T* __restrict__ x,
                                 T* __restrict__ dx, int64_t n) {
    using A = acc_t<T>;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        dx[i] = from_acc<T>(to_acc(g[i]) * dmath::derivative<op, A>(to_acc(x[i])));
}

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
            unary_fwd_kernel<decltype(opc)::value, T>
                <<<grid_for(n), kThreads, 0, stream()>>>(ptr<T>(xc), ptr<T>(y), n);
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
            unary_bwd_kernel<decltype(opc)::value, T>
                <<<grid_for(n), kThreads, 0, stream()>>>(ptr<T>(gc), ptr<T>(xc), ptr<T>(dx), n);
        });
    });
    check_launch(unary_name(op));
    return dx;
}

}  // namespace goose::ops
