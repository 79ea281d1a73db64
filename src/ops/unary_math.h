// Scalar definitions of the unary ops and their derivatives, shared by the reference (in
// double) and the fast CPU kernels (in float). One definition, so the two can only differ in
// precision and loop structure.
#pragma once
#include <cmath>

#include "goose/ops/unary.h"

namespace goose::unary_math {

template <class T>
inline T sigmoid(T x) {
    return x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}

template <class T>
inline T forward(UnaryOp op, T x) {
    constexpr T k = T(0.7978845608028654);  // sqrt(2/pi)
    switch (op) {
        case UnaryOp::exp: return std::exp(x);
        case UnaryOp::log: return std::log(x);
        case UnaryOp::tanh: return std::tanh(x);
        case UnaryOp::sigmoid: return sigmoid(x);
        case UnaryOp::softplus: return x > T(20) ? x : std::log1p(std::exp(x));
        case UnaryOp::relu: return x > T(0) ? x : T(0);
        case UnaryOp::relu2: return x > T(0) ? x * x : T(0);
        case UnaryOp::gelu_tanh: return T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
        case UnaryOp::silu: return x * sigmoid(x);
        case UnaryOp::neg: return -x;
        case UnaryOp::sqrt: return std::sqrt(x);
        case UnaryOp::square: return x * x;
    }
    return x;
}

// d f / d x at x
template <class T>
inline T derivative(UnaryOp op, T x) {
    constexpr T k = T(0.7978845608028654);
    switch (op) {
        case UnaryOp::exp: return std::exp(x);
        case UnaryOp::log: return T(1) / x;
        case UnaryOp::tanh: { const T t = std::tanh(x); return T(1) - t * t; }
        case UnaryOp::sigmoid: { const T s = sigmoid(x); return s * (T(1) - s); }
        case UnaryOp::softplus: return x > T(20) ? T(1) : sigmoid(x);
        case UnaryOp::relu: return x > T(0) ? T(1) : T(0);
        case UnaryOp::relu2: return x > T(0) ? T(2) * x : T(0);
        case UnaryOp::gelu_tanh: {
            const T u = k * (x + T(0.044715) * x * x * x);
            const T t = std::tanh(u);
            const T du = k * (T(1) + T(3 * 0.044715) * x * x);
            // Once tanh saturates, 1 - t² is exactly 0 and the second term vanishes; in f32 du
            // may already be inf there (x² overflows), so skip it rather than form 0 * inf.
            const T sech2 = T(1) - t * t;
            return T(0.5) * (T(1) + t) + (sech2 == T(0) ? T(0) : T(0.5) * x * sech2 * du);
        }
        case UnaryOp::silu: { const T s = sigmoid(x); return s * (T(1) + x * (T(1) - s)); }
        case UnaryOp::neg: return T(-1);
        case UnaryOp::sqrt: return T(0.5) / std::sqrt(x);
        case UnaryOp::square: return T(2) * x;
    }
    return T(0);
}

// d f / d x in terms of y = f(x), for the ops where it is a function of y alone (see
// unary.h); NaN for the others (the front end refuses them first).
inline bool has_output_derivative(UnaryOp op) {
    return op == UnaryOp::exp || op == UnaryOp::tanh || op == UnaryOp::sigmoid ||
           op == UnaryOp::relu || op == UnaryOp::relu2;
}

template <class T>
inline T derivative_from_output(UnaryOp op, T y) {
    switch (op) {
        case UnaryOp::exp: return y;
        case UnaryOp::tanh: return T(1) - y * y;
        case UnaryOp::sigmoid: return y * (T(1) - y);
        case UnaryOp::relu: return y > T(0) ? T(1) : T(0);
        case UnaryOp::relu2: return y > T(0) ? T(2) * std::sqrt(y) : T(0);  // 2 relu(x)
        default: return std::nan("");
    }
}

}  // namespace goose::unary_math
