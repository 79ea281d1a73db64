// One vector type per float dtype for kernels written once for f32 and f64: Vec<float> is
// simd.h's VecF; Vec<double> is a plain array of half as many doubles whose loops the compiler
// turns into SIMD code. lanes<F> is the lane count of Vec<F>.
#pragma once
#include <cstdint>

#include "ops/cpu/simd.h"

namespace goose::ops::vec {

inline constexpr int kLanesD = simd::kLanes > 1 ? simd::kLanes / 2 : 1;
struct VecD {
    double v[kLanesD];
};

template <class F>
struct VecOf;
template <>
struct VecOf<float> {
    using type = simd::VecF;
    static constexpr int64_t lanes = simd::kLanes;
};
template <>
struct VecOf<double> {
    using type = VecD;
    static constexpr int64_t lanes = kLanesD;
};
template <class F>
using Vec = typename VecOf<F>::type;
template <class F>
inline constexpr int64_t lanes = VecOf<F>::lanes;

inline simd::VecF load(const float* p) { return simd::load(p); }
inline void store(float* p, simd::VecF a) { simd::store(p, a); }
inline simd::VecF bcast(float x) { return simd::broadcast(x); }
inline simd::VecF add(simd::VecF a, simd::VecF b) { return simd::add(a, b); }
inline simd::VecF sub(simd::VecF a, simd::VecF b) { return simd::sub(a, b); }
inline simd::VecF mul(simd::VecF a, simd::VecF b) { return simd::mul(a, b); }
inline simd::VecF fma(simd::VecF a, simd::VecF b, simd::VecF c) { return simd::fma(a, b, c); }
inline float hsum(simd::VecF a) { return simd::reduce_add(a); }

inline VecD load(const double* p) {
    VecD r;
    for (int l = 0; l < kLanesD; ++l) r.v[l] = p[l];
    return r;
}
inline void store(double* p, VecD a) {
    for (int l = 0; l < kLanesD; ++l) p[l] = a.v[l];
}
inline VecD bcast(double x) {
    VecD r;
    for (int l = 0; l < kLanesD; ++l) r.v[l] = x;
    return r;
}
inline VecD add(VecD a, VecD b) {
    for (int l = 0; l < kLanesD; ++l) a.v[l] += b.v[l];
    return a;
}
inline VecD sub(VecD a, VecD b) {
    for (int l = 0; l < kLanesD; ++l) a.v[l] -= b.v[l];
    return a;
}
inline VecD mul(VecD a, VecD b) {
    for (int l = 0; l < kLanesD; ++l) a.v[l] *= b.v[l];
    return a;
}
inline VecD fma(VecD a, VecD b, VecD c) {  // a * b + c
    for (int l = 0; l < kLanesD; ++l) c.v[l] += a.v[l] * b.v[l];
    return c;
}
inline double hsum(VecD a) {  // sum of the lanes
    double s = 0;
    for (int l = 0; l < kLanesD; ++l) s += a.v[l];
    return s;
}

}  // namespace goose::ops::vec
