// Branch-free f32 math for the CPU kernels (unary ops, the models' fused functions): exp,
// sigmoid, tanh and gelu_tanh within a few ulp of libm, written so that GCC vectorises loops of
// them (no calls, no branches).
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/cpu/rows.h"

namespace goose::fast_math {

// c ? a : b, both computed. Selects go through the bits: GCC (with the default
// -ftrapping-math) does not if-convert a float `c ? a : b` whose arms it can sink, and such a
// loop is not vectorised.
inline float select(bool c, float a, float b) {
    const int32_t m = -static_cast<int32_t>(c);
    return std::bit_cast<float>((std::bit_cast<int32_t>(a) & m) |
                                (std::bit_cast<int32_t>(b) & ~m));
}

// e^x for x clamped to [-87.3, 88.3] (rows.h's polynomial); NaN passes the clamp and stays NaN.
inline float exp_clamped(float x) {
    x = select(x < -87.3f, -87.3f, x);
    return ops::cpu_rows::exp_core(select(x > 88.3f, 88.3f, x));
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
    // σ(2u) and σ(2u) (1 - σ(2u)) = σ² e^{-2u} from one exponential (as sigmoid, sigmoid_slope)
    const float e = exp_clamped(-2.f * u);
    const float s0 = 1.f / (1.f + e);
    const bool low = 2.f * u < -87.f;
    const float s = select(low, 0.f, s0), q = select(low, 0.f, s0 * s0 * e);
    const float t = 2.f * x * q * du;
    return s + select((std::fabs(2.f * u) > 80.f) | (q == 0.f), 0.f, t);
}

// f64 (no speed needed): the plain forms, for kernels written once for both dtypes.
inline double sigmoid(double x) {
    return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
}
inline double sigmoid_slope(double x) {
    const double s = sigmoid(x);
    return s * (1 - s);
}

}  // namespace goose::fast_math
