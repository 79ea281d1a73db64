// Fast CPU unary ops: packed inputs, OpenMP over elements, the op chosen outside the loop so
// each loop body is a straight-line function the compiler can vectorise.
#include "goose/ops/unary.h"
#include "ops/unary_math.h"

namespace goose::ops {

namespace {
constexpr int64_t kParallelMin = 16384;  // below this, threads cost more than they save

template <class T, class F>
void map1(const T* x, T* y, int64_t n, F f) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <class T, class F>
void map2(const T* g, const T* x, T* y, int64_t n, F f) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = g[i] * f(x[i]);
}

template <class T>
void forward_typed(UnaryOp op, const T* x, T* y, int64_t n) {
    switch (op) {
#define GOOSE_UNARY_CASE(name) \
    case UnaryOp::name: map1(x, y, n, [](T v) { return unary_math::forward(UnaryOp::name, v); }); break;
        GOOSE_UNARY_CASE(exp) GOOSE_UNARY_CASE(log) GOOSE_UNARY_CASE(tanh)
        GOOSE_UNARY_CASE(sigmoid) GOOSE_UNARY_CASE(softplus) GOOSE_UNARY_CASE(relu)
        GOOSE_UNARY_CASE(relu2) GOOSE_UNARY_CASE(gelu_tanh) GOOSE_UNARY_CASE(silu)
        GOOSE_UNARY_CASE(neg) GOOSE_UNARY_CASE(sqrt) GOOSE_UNARY_CASE(square)
#undef GOOSE_UNARY_CASE
    }
}

template <class T>
void backward_typed(UnaryOp op, const T* g, const T* x, T* y, int64_t n) {
    switch (op) {
#define GOOSE_UNARY_CASE(name) \
    case UnaryOp::name: map2(g, x, y, n, [](T v) { return unary_math::derivative(UnaryOp::name, v); }); break;
        GOOSE_UNARY_CASE(exp) GOOSE_UNARY_CASE(log) GOOSE_UNARY_CASE(tanh)
        GOOSE_UNARY_CASE(sigmoid) GOOSE_UNARY_CASE(softplus) GOOSE_UNARY_CASE(relu)
        GOOSE_UNARY_CASE(relu2) GOOSE_UNARY_CASE(gelu_tanh) GOOSE_UNARY_CASE(silu)
        GOOSE_UNARY_CASE(neg) GOOSE_UNARY_CASE(sqrt) GOOSE_UNARY_CASE(square)
#undef GOOSE_UNARY_CASE
    }
}
}  // namespace

Tensor unary_forward_cpu(UnaryOp op, const Tensor& x) {
    const Tensor xc = x.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    if (x.dtype() == DType::f32)
        forward_typed(op, xc.data<float>(), y.data<float>(), x.numel());
    else
        forward_typed(op, xc.data<double>(), y.data<double>(), x.numel());
    return y;
}

Tensor unary_backward_cpu(UnaryOp op, const Tensor& gy, const Tensor& x) {
    const Tensor xc = x.contiguous(), gc = gy.contiguous();
    Tensor gx = Tensor::empty(x.shape(), x.dtype());
    if (x.dtype() == DType::f32)
        backward_typed(op, gc.data<float>(), xc.data<float>(), gx.data<float>(), x.numel());
    else
        backward_typed(op, gc.data<double>(), xc.data<double>(), gx.data<double>(), x.numel());
    return gx;
}

}  // namespace goose::ops
