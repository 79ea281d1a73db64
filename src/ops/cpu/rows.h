// Row reductions for the fast CPU kernels of the row-wise families (softmax, loss, norm): f32
// through the simd.h helpers, f64 as plain loops. Rows are packed; n >= 1 where noted.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

#include "ops/cpu/simd.h"

namespace goose::ops::cpu_rows {

// Below this many elements a row loop runs on one thread.
inline constexpr int64_t kParallelMin = 16384;

inline float max_of(const float* x, int64_t n) { return simd::max_of(x, n); }  // n >= 1
inline double max_of(const double* x, int64_t n) {
    double m = x[0];
    for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

inline float sum(const float* x, int64_t n) { return simd::sum(x, n); }
inline double sum(const double* x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i];
    return s;
}

inline float dot(const float* x, const float* y, int64_t n) { return simd::dot(x, y, n); }
inline double dot(const double* x, const double* y, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i] * y[i];
    return s;
}

// sum((x[i] - m)^2): the second pass of a two-pass variance.
inline float sum_sq_dev(const float* x, float m, int64_t n) {
    const simd::VecF vm = simd::broadcast(m);
    simd::VecF acc = simd::broadcast(0.f);
    int64_t i = 0;
    for (; i + simd::kLanes <= n; i += simd::kLanes) {
        const simd::VecF d = simd::sub(simd::load(x + i), vm);
        acc = simd::fma(d, d, acc);
    }
    float s = simd::reduce_add(acc);
    for (; i < n; ++i) s += (x[i] - m) * (x[i] - m);
    return s;
}
inline double sum_sq_dev(const double* x, double m, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += (x[i] - m) * (x[i] - m);
    return s;
}

// exp(x) in f32 for x in [-87.3, 88.3] (or NaN, which stays NaN), without calls or branches so
// that loops of it vectorise: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite), exp(r) by Cephes'
// degree-7 polynomial, 2^n through the exponent bits. About 1 ulp.
inline float exp_core(float x) {
    const float magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
    const float t = x * 1.44269504f + magic;
    const float n = t - magic;
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.f;
    const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(magic);
    return p * std::bit_cast<float>((ni + 127) << 23);
}

// out[i] = exp(x[i] - m). Arguments are clamped to [-87.3, 88.3] first (so exp of a very
// negative number is 1e-38, not 0; the softmax callers pass arguments <= 0), NaN stays NaN.
// Two passes, because GCC vectorises neither a clamp fused with exp_core nor a branchy exp.
inline void exp_sub(const float* x, float m, float* out, int64_t n) {
    using namespace simd;
    const VecF vm = broadcast(m), lo = broadcast(-87.3f), neg_hi = broadcast(-88.3f);
    const VecF zero = broadcast(0.f);
    int64_t i = 0;
    // max(lo, d) returns d when d is NaN (the second operand), so NaN survives both clamps.
    for (; i + kLanes <= n; i += kLanes) {
        const VecF d = max(lo, sub(load(x + i), vm));
        store(out + i, sub(zero, max(neg_hi, sub(zero, d))));
    }
    for (; i < n; ++i) {
        float d = x[i] - m;
        d = d < -87.3f ? -87.3f : d;
        out[i] = d > 88.3f ? 88.3f : d;
    }
    for (i = 0; i < n; ++i) out[i] = exp_core(out[i]);
}
inline void exp_sub(const double* x, double m, double* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = std::exp(x[i] - m);
}

// e[i] = exp(x[i] - m); returns sum(e). With e null only the sum is computed (in blocks of a
// stack buffer).
template <class T>
inline T exp_shifted(const T* x, T m, T* e, int64_t n) {
    if (e) {
        exp_sub(x, m, e, n);
        return sum(e, n);
    }
    constexpr int64_t kBuf = 256;
    T buf[kBuf];
    T s = 0;
    for (int64_t i = 0; i < n; i += kBuf) {
        const int64_t len = n - i < kBuf ? n - i : kBuf;
        exp_sub(x + i, m, buf, len);
        s += sum(buf, len);
    }
    return s;
}

}  // namespace goose::ops::cpu_rows
