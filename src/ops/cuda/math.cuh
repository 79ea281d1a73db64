// Device math in the accumulation type (float or double) for the CUDA op kernels: overloads
// that pick expf/exp etc., and the unary ops and their derivatives with the formulas of
// ops/unary_math.h (same branches, so NaN, inf and the softplus threshold behave alike).
#pragma once
#include <cuda_runtime.h>

#include "goose/ops/unary.h"

namespace goose::ops::cuda_ops::dmath {

__device__ __forceinline__ float exp_(float x) { return expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }
__device__ __forceinline__ float log_(float x) { return logf(x); }
__device__ __forceinline__ double log_(double x) { return log(x); }
__device__ __forceinline__ float log1p_(float x) { return log1pf(x); }
__device__ __forceinline__ double log1p_(double x) { return log1p(x); }
__device__ __forceinline__ float tanh_(float x) { return tanhf(x); }
__device__ __forceinline__ double tanh_(double x) { return tanh(x); }
__device__ __forceinline__ float sqrt_(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_(double x) { return sqrt(x); }
__device__ __forceinline__ float abs_(float x) { return fabsf(x); }
__device__ __forceinline__ double abs_(double x) { return fabs(x); }

template <class T>
__device__ __forceinline__ T sigmoid(T x) {
    return x >= T(0) ? T(1) / (T(1) + exp_(-x)) : exp_(x) / (T(1) + exp_(x));
}

template <UnaryOp op, class T>
__device__ __forceinline__ T forward(T x) {
    constexpr T k = T(0.7978845608028654);  // sqrt(2/pi)
    if constexpr (op == UnaryOp::exp) return exp_(x);
    if constexpr (op == UnaryOp::log) return log_(x);
    if constexpr (op == UnaryOp::tanh) return tanh_(x);
    if constexpr (op == UnaryOp::sigmoid) return sigmoid(x);
    if constexpr (op == UnaryOp::softplus) return x > T(20) ? x : log1p_(exp_(x));
    if constexpr (op == UnaryOp::relu) return x > T(0) ? x : T(0);
    if constexpr (op == UnaryOp::relu2) return x > T(0) ? x * x : T(0);
    if constexpr (op == UnaryOp::gelu_tanh)
        return T(0.5) * x * (T(1) + tanh_(k * (x + T(0.044715) * x * x * x)));
    if constexpr (op == UnaryOp::silu) return x * sigmoid(x);
    if constexpr (op == UnaryOp::neg) return -x;
    if constexpr (op == UnaryOp::sqrt) return sqrt_(x);
    if constexpr (op == UnaryOp::square) return x * x;
    return x;
}

template <UnaryOp op, class T>
__device__ __forceinline__ T derivative(T x) {
    constexpr T k = T(0.7978845608028654);
    if constexpr (op == UnaryOp::exp) return exp_(x);
    if constexpr (op == UnaryOp::log) return T(1) / x;
    if constexpr (op == UnaryOp::tanh) {
        const T t = tanh_(x);
        return T(1) - t * t;
    }
    if constexpr (op == UnaryOp::sigmoid) {
        const T s = sigmoid(x);
        return s * (T(1) - s);
    }
    if constexpr (op == UnaryOp::softplus) return x > T(20) ? T(1) : sigmoid(x);
    if constexpr (op == UnaryOp::relu) return x > T(0) ? T(1) : T(0);
    if constexpr (op == UnaryOp::relu2) return x > T(0) ? T(2) * x : T(0);
    if constexpr (op == UnaryOp::gelu_tanh) {
        const T u = k * (x + T(0.044715) * x * x * x);
        const T t = tanh_(u);
        const T du = k * (T(1) + T(3 * 0.044715) * x * x);
        const T sech2 = T(1) - t * t;  // once tanh saturates, skip 0 * inf (see unary_math.h)
        return T(0.5) * (T(1) + t) + (sech2 == T(0) ? T(0) : T(0.5) * x * sech2 * du);
    }
    if constexpr (op == UnaryOp::silu) {
        const T s = sigmoid(x);
        return s * (T(1) + x * (T(1) - s));
    }
    if constexpr (op == UnaryOp::neg) return T(-1);
    if constexpr (op == UnaryOp::sqrt) return T(0.5) / sqrt_(x);
    if constexpr (op == UnaryOp::square) return T(2) * x;
    return T(0);
}

// derivative<op>(x) in terms of y = f(x) (unary_math.h's derivative_from_output)
template <UnaryOp op, class T>
__device__ __forceinline__ T derivative_from_output(T y) {
    if constexpr (op == UnaryOp::exp) return y;
    if constexpr (op == UnaryOp::tanh) return T(1) - y * y;
    if constexpr (op == UnaryOp::sigmoid) return y * (T(1) - y);
    if constexpr (op == UnaryOp::relu) return y > T(0) ? T(1) : T(0);
    if constexpr (op == UnaryOp::relu2) return y > T(0) ? T(2) * sqrt_(y) : T(0);
    return T(0) / T(0);
}

}  // namespace goose::ops::cuda_ops::dmath
