// Fast CPU unary ops: packed inputs, OpenMP over elements, the op chosen outside the loop so
// each loop body is a straight-line function the compiler can vectorise. In f32 the
// transcendental ops (exp, sigmoid, tanh, gelu_tanh, silu) and relu/relu2 use the branch-free
// forms of fast_math.h, which vectorise (the libm calls and the reference's branches do not);
// f64 and the other ops use the shared scalar definitions of unary_math.h.

#include "goose/ops/unary.h"
#include "ops/cpu/fast_math.h"
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

namespace f32 = fast_math;

// f32 ops with a branch-free form; false for the others.
bool forward_f32(UnaryOp op, const float* x, float* y, int64_t n) {
    switch (op) {
        case UnaryOp::exp: map1(x, y, n, [](float v) { return f32::exp(v); }); return true;
        case UnaryOp::tanh: map1(x, y, n, [](float v) { return f32::tanh(v); }); return true;
        case UnaryOp::sigmoid: map1(x, y, n, [](float v) { return f32::sigmoid(v); }); return true;
        case UnaryOp::relu:
            map1(x, y, n, [](float v) { return f32::select(v > 0.f, v, 0.f); });
            return true;
        case UnaryOp::relu2:
            map1(x, y, n, [](float v) { return f32::select(v > 0.f, v * v, 0.f); });
            return true;
        case UnaryOp::gelu_tanh:
            map1(x, y, n, [](float v) { return f32::gelu_tanh(v); });
            return true;
        case UnaryOp::silu: map1(x, y, n, [](float v) { return v * f32::sigmoid(v); }); return true;
        default: return false;
    }
}

bool backward_f32(UnaryOp op, const float* g, const float* x, float* y, int64_t n) {
    switch (op) {
        case UnaryOp::exp: map2(g, x, y, n, [](float v) { return f32::exp(v); }); return true;
        case UnaryOp::tanh:
            map2(g, x, y, n, [](float v) {
                const float t = f32::tanh(v);
                return 1.f - t * t;
            });
            return true;
        case UnaryOp::sigmoid:
            map2(g, x, y, n, [](float v) { return f32::sigmoid_slope(v); });
            return true;
        case UnaryOp::relu:
            map2(g, x, y, n, [](float v) { return f32::select(v > 0.f, 1.f, 0.f); });
            return true;
        case UnaryOp::relu2:
            map2(g, x, y, n, [](float v) { return f32::select(v > 0.f, 2.f * v, 0.f); });
            return true;
        case UnaryOp::gelu_tanh:
            map2(g, x, y, n, [](float v) { return f32::gelu_tanh_derivative(v); });
            return true;
        case UnaryOp::silu:  // σ (1 + x (1 - σ)), the reference's form (its NaN at ±inf too)
            map2(g, x, y, n, [](float v) {
                const float s = f32::sigmoid(v);
                return s * (1.f + v * (1.f - s));
            });
            return true;
        default: return false;
    }
}

template <class T>
void forward_typed(UnaryOp op, const T* x, T* y, int64_t n) {
    if constexpr (std::is_same_v<T, float>)
        if (forward_f32(op, x, y, n)) return;
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
    if constexpr (std::is_same_v<T, float>)
        if (backward_f32(op, g, x, y, n)) return;
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

Tensor unary_backward_from_output_cpu(UnaryOp op, const Tensor& gy, const Tensor& y) {
    const Tensor yc = y.contiguous(), gc = gy.contiguous();
    Tensor gx = Tensor::empty(y.shape(), y.dtype());
    auto run = [&](auto* g, auto* yv, auto* out) {
        using T = std::remove_const_t<std::remove_pointer_t<decltype(g)>>;
        map2(g, yv, out, y.numel(),
             [op](T v) { return unary_math::derivative_from_output<T>(op, v); });
    };
    if (y.dtype() == DType::f32)
        run(gc.data<float>(), yc.data<float>(), gx.data<float>());
    else
        run(gc.data<double>(), yc.data<double>(), gx.data<double>());
    return gx;
}

}  // namespace goose::ops
