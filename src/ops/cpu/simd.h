// The one SIMD wrapper of the CPU backend. Kernels use VecF (float lanes) and its helpers; the
// width follows the build's target (AVX-512: 16, AVX2/FMA: 8, otherwise 1 = scalar). Every loop
// written with it ends with a scalar tail: `for (; i + kLanes <= n; i += kLanes) ...` then a
// plain loop over the rest. Intrinsics appear nowhere else.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#define GOOSE_SIMD_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GOOSE_SIMD_AVX2 1
#endif

namespace goose::simd {

// One bf16 value (the upper half of a float) as a float: a 16-bit left shift.
inline float bf16_to_f32(uint16_t h) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

#if defined(GOOSE_SIMD_AVX512)
inline constexpr int kLanes = 16;
struct VecF {
    __m512 v;
};
inline VecF load(const float* p) { return {_mm512_loadu_ps(p)}; }
inline void store(float* p, VecF a) { _mm512_storeu_ps(p, a.v); }
inline VecF broadcast(float x) { return {_mm512_set1_ps(x)}; }
inline VecF add(VecF a, VecF b) { return {_mm512_add_ps(a.v, b.v)}; }
inline VecF sub(VecF a, VecF b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline VecF mul(VecF a, VecF b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline VecF max(VecF a, VecF b) { return {_mm512_max_ps(a.v, b.v)}; }
inline VecF fma(VecF a, VecF b, VecF c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }  // a*b+c
inline float reduce_add(VecF a) { return _mm512_reduce_add_ps(a.v); }
inline float reduce_max(VecF a) { return _mm512_reduce_max_ps(a.v); }
// 16 bf16 values (the upper halves of floats) widened to floats: zero-extend, shift left 16.
inline VecF load_bf16(const uint16_t* p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))};
}
#elif defined(GOOSE_SIMD_AVX2)
inline constexpr int kLanes = 8;
struct VecF {
    __m256 v;
};
inline VecF load(const float* p) { return {_mm256_loadu_ps(p)}; }
inline void store(float* p, VecF a) { _mm256_storeu_ps(p, a.v); }
inline VecF broadcast(float x) { return {_mm256_set1_ps(x)}; }
inline VecF add(VecF a, VecF b) { return {_mm256_add_ps(a.v, b.v)}; }
inline VecF sub(VecF a, VecF b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline VecF mul(VecF a, VecF b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline VecF max(VecF a, VecF b) { return {_mm256_max_ps(a.v, b.v)}; }
inline VecF fma(VecF a, VecF b, VecF c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline float reduce_add(VecF a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
inline float reduce_max(VecF a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
// 8 bf16 values (the upper halves of floats) widened to floats: zero-extend, shift left 16.
inline VecF load_bf16(const uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))};
}
#else
inline constexpr int kLanes = 1;
struct VecF {
    float v;
};
inline VecF load(const float* p) { return {*p}; }
inline void store(float* p, VecF a) { *p = a.v; }
inline VecF broadcast(float x) { return {x}; }
inline VecF add(VecF a, VecF b) { return {a.v + b.v}; }
inline VecF sub(VecF a, VecF b) { return {a.v - b.v}; }
inline VecF mul(VecF a, VecF b) { return {a.v * b.v}; }
inline VecF max(VecF a, VecF b) { return {a.v > b.v ? a.v : b.v}; }
inline VecF fma(VecF a, VecF b, VecF c) { return {a.v * b.v + c.v}; }
inline float reduce_add(VecF a) { return a.v; }
inline float reduce_max(VecF a) { return a.v; }
inline VecF load_bf16(const uint16_t* p) { return {bf16_to_f32(*p)}; }
#endif

// sum(x[i] * y[i]) with SIMD accumulators and a scalar tail.
inline float dot(const float* x, const float* y, ptrdiff_t n) {
    VecF acc0 = broadcast(0.f), acc1 = broadcast(0.f);
    ptrdiff_t i = 0;
    for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
        acc0 = fma(load(x + i), load(y + i), acc0);
        acc1 = fma(load(x + i + kLanes), load(y + i + kLanes), acc1);
    }
    for (; i + kLanes <= n; i += kLanes) acc0 = fma(load(x + i), load(y + i), acc0);
    float s = reduce_add(add(acc0, acc1));
    for (; i < n; ++i) s += x[i] * y[i];
    return s;
}

// sum(x[i] * w[i]) for bf16 w (widened on the fly), with SIMD accumulators and a scalar tail.
inline float dot_bf16(const float* x, const uint16_t* w, ptrdiff_t n) {
    VecF acc0 = broadcast(0.f), acc1 = broadcast(0.f), acc2 = broadcast(0.f),
         acc3 = broadcast(0.f);
    ptrdiff_t i = 0;
    for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
        acc0 = fma(load(x + i), load_bf16(w + i), acc0);
        acc1 = fma(load(x + i + kLanes), load_bf16(w + i + kLanes), acc1);
        acc2 = fma(load(x + i + 2 * kLanes), load_bf16(w + i + 2 * kLanes), acc2);
        acc3 = fma(load(x + i + 3 * kLanes), load_bf16(w + i + 3 * kLanes), acc3);
    }
    for (; i + kLanes <= n; i += kLanes) acc0 = fma(load(x + i), load_bf16(w + i), acc0);
    float s = reduce_add(add(add(acc0, acc1), add(acc2, acc3)));
    for (; i < n; ++i) s += x[i] * bf16_to_f32(w[i]);
    return s;
}

// sum(x[i])
inline float sum(const float* x, ptrdiff_t n) {
    VecF acc = broadcast(0.f);
    ptrdiff_t i = 0;
    for (; i + kLanes <= n; i += kLanes) acc = add(acc, load(x + i));
    float s = reduce_add(acc);
    for (; i < n; ++i) s += x[i];
    return s;
}

// max(x[i]); n >= 1
inline float max_of(const float* x, ptrdiff_t n) {
    ptrdiff_t i = 0;
    float m = x[0];
    if (n >= kLanes) {
        VecF acc = load(x);
        for (i = kLanes; i + kLanes <= n; i += kLanes) acc = max(acc, load(x + i));
        m = reduce_max(acc);
    }
    for (; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

// y[i] += a * x[i]
inline void axpy(float a, const float* x, float* y, ptrdiff_t n) {
    const VecF va = broadcast(a);
    ptrdiff_t i = 0;
    for (; i + kLanes <= n; i += kLanes) store(y + i, fma(va, load(x + i), load(y + i)));
    for (; i < n; ++i) y[i] += a * x[i];
}

// ---- additions for the inference engine: int8 weights, vector exp / sigmoid / tanh ----------

#if defined(GOOSE_SIMD_AVX512)
// kLanes int8 values sign-extended and converted to floats.
inline VecF load_i8(const int8_t* p) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return {_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))};
}
inline VecF min(VecF a, VecF b) { return {_mm512_min_ps(a.v, b.v)}; }
inline VecF div(VecF a, VecF b) { return {_mm512_div_ps(a.v, b.v)}; }
// 2^n for integral n in [-126, 127] held as floats.
inline VecF pow2i(VecF n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(e, 23))};
}
inline VecF round_nearest(VecF a) {
    return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
#elif defined(GOOSE_SIMD_AVX2)
inline VecF load_i8(const int8_t* p) {
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))};
}
inline VecF min(VecF a, VecF b) { return {_mm256_min_ps(a.v, b.v)}; }
inline VecF div(VecF a, VecF b) { return {_mm256_div_ps(a.v, b.v)}; }
inline VecF pow2i(VecF n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
}
inline VecF round_nearest(VecF a) {
    return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
#else
inline VecF load_i8(const int8_t* p) { return {static_cast<float>(*p)}; }
inline VecF min(VecF a, VecF b) { return {a.v < b.v ? a.v : b.v}; }
inline VecF div(VecF a, VecF b) { return {a.v / b.v}; }
inline VecF pow2i(VecF n) {
    uint32_t u = static_cast<uint32_t>(static_cast<int32_t>(n.v) + 127) << 23;
    float f;
    std::memcpy(&f, &u, 4);
    return {f};
}
inline VecF round_nearest(VecF a) { return {__builtin_nearbyintf(a.v)}; }
#endif

// exp(x) in f32 within ~2 ulp; x is clamped to [-87, 88] (results in [1.6e-38, 1.7e38]), NaN
// stays NaN: 2^n p(x - n ln 2), two-part ln 2, degree-7 Taylor polynomial on |r| <= 0.35.
inline VecF exp(VecF x) {
    x = min(broadcast(88.f), max(broadcast(-87.f), x));  // max/min return x when it is NaN
    const VecF n = round_nearest(mul(x, broadcast(1.44269504088896341f)));
    VecF r = fma(n, broadcast(-0.693359375f), x);
    r = fma(n, broadcast(2.12194440e-4f), r);
    VecF p = broadcast(1.f / 5040);
    p = fma(p, r, broadcast(1.f / 720));
    p = fma(p, r, broadcast(1.f / 120));
    p = fma(p, r, broadcast(1.f / 24));
    p = fma(p, r, broadcast(1.f / 6));
    p = fma(p, r, broadcast(0.5f));
    p = fma(p, r, broadcast(1.f));
    p = fma(p, r, broadcast(1.f));
    return mul(p, pow2i(n));
}
// 1 / (1 + exp(-x))
inline VecF sigmoid(VecF x) {
    const VecF one = broadcast(1.f);
    return div(one, add(one, exp(sub(broadcast(0.f), x))));
}
// 1 - 2 / (exp(2x) + 1): absolute error ~1e-7 near 0, exactly +-1 far out.
inline VecF tanh(VecF x) {
    const VecF one = broadcast(1.f);
    return sub(one, div(broadcast(2.f), add(exp(add(x, x)), one)));
}

}  // namespace goose::simd
