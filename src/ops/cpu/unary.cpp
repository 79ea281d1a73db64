// Fast CPU unary ops: packed inputs, OpenMP over elements, the op chosen outside the loop so
// each loop body is a straight-line function the compiler can vectorise. In f32 the
// transcendental ops (exp, sigmoid, tanh, gelu_tanh, silu) and relu/relu2 use the branch-free
// forms below, which vectorise (the libm calls and the reference's branches do not); f64 and
// the other ops use the shared scalar definitions of unary_math.h.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "goose/ops/unary.h"
#include "ops/cpu/rows.h"
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

// ---- branch-free f32 forms (no calls, no branches), within a few ulp of the reference ------
// Selects go through the bits: GCC (with the default -ftrapping-math) does not if-convert a
// float `c ? a : b` whose arms it can sink, and such a loop is not vectorised.
namespace f32 {

// c ? a : b, both computed.
inline float select(bool c, float a, float b) {
    const int32_t m = -static_cast<int32_t>(c);
    return std::bit_cast<float>((std::bit_cast<int32_t>(a) & m) |
                                (std::bit_cast<int32_t>(b) & ~m));
}

// e^x for x clamped to [-87.3, 88.3] (rows.h's polynomial); NaN passes the clamp and stays NaN.
inline float exp_clamped(float x) {
    x = select(x < -87.3f, -87.3f, x);
    return cpu_rows::exp_core(select(x > 88.3f, 88.3f, x));
}

// e^x: +inf above 88.72 (overflow, as expf), 0 below -87.3 (where e^x < 1.2e-38).
inline float exp(float x) {
    const float e = exp_clamped(x);
    return select(x < -87.3f, 0.f, select(x > 88.72f, std::numeric_limits<float>::infinity(), e));
}

// sigmoid(x) = 1 / (1 + e^-x): exactly 0 below -87 (so that x σ(x) at -inf is NaN as in the
// reference), 1 above 87.3.
inline float sigmoid(float x) {
    const float s = 1.f / (1.f + exp_clamped(-x));
    return select(x < -87.f, 0.f, s);
}

// σ(x) (1 - σ(x)) = σ² e^-x, without the cancellation of 1 - σ near 1.
inline float sigmoid_slope(float x) {
    const float e = exp_clamped(-x);
    const float s = 1.f / (1.f + e);
    return select(x < -87.f, 0.f, s * s * e);
}

// tanh: x P(x²) for |x| < 0.625 (least-squares fit, 1.1e-7 relative), else
// sign(x) (1 - 2 / (e^{2|x|} + 1)) (1.6e-7 relative). NaN stays NaN, ±inf gives ±1.
inline float tanh(float x) {
    const float ax = std::fabs(x), z = x * x;
    float p = -0.0057722f;
    p = p * z + 0.02069238f;
    p = p * z + -0.05375282f;
    p = p * z + 0.13331528f;
    p = p * z + -0.33333278f;
    p = p * z + 1.f;
    const float big = std::copysign(1.f - 2.f / (exp_clamped(2.f * ax) + 1.f), x);
    return select(ax < 0.625f, x * p, big);
}

constexpr float kGeluK = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluC = 0.044715f;

// 0.5 x (1 + tanh(u)) = x σ(2u), u = k (x + c x³): no cancellation for negative u.
inline float gelu_tanh(float x) {
    const float u = kGeluK * (x + kGeluC * x * x * x);
    return x * sigmoid(2.f * u);
}

// d/dx = σ(2u) + 2 x σ(2u) (1 - σ(2u)) du/dx. The second term is dropped where the slope is 0
// or |2u| > 80 (it is below 1e-30 there), so that it never forms 0 · inf.
inline float gelu_tanh_derivative(float x) {
    const float u = kGeluK * (x + kGeluC * x * x * x);
    const float du = kGeluK * (1.f + 3.f * kGeluC * x * x);
    const float s = sigmoid(2.f * u), q = sigmoid_slope(2.f * u);
    const float t = 2.f * x * q * du;
    return s + select((std::fabs(2.f * u) > 80.f) | (q == 0.f), 0.f, t);
}

}  // namespace f32

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

}  // namespace goose::ops
