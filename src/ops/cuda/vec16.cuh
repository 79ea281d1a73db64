// Vector loads and stores as floats for memory-bound kernels: 16 bytes of f32 (4) or bf16 (8)
// elements, and 8 bytes of bf16 (4) where registers are short. Pointers aligned to the vector
// size. Include only from .cu files.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

namespace goose::cuda_util {

// Elements of T in 16 bytes.
template <class T>
constexpr int vec16_of() {
    return 16 / static_cast<int>(sizeof(T));
}

// Row kernels with a warp per row of c channels (lane l holds vectors l + 32 k, k < NV): calls
// f(std::integral_constant<int, NV>) with NV = 1..4 the vectors per lane c needs and returns
// true, or returns false when c is not a whole number of vectors or needs more than 4 per lane.
template <class T, class F>
bool with_lane_vectors(int64_t c, F&& f) {
    constexpr int V = vec16_of<T>();
    if (c % V != 0 || c > 32 * 4 * V) return false;
    switch ((c / V + 31) / 32) {
        case 1: f(std::integral_constant<int, 1>{}); return true;
        case 2: f(std::integral_constant<int, 2>{}); return true;
        case 3: f(std::integral_constant<int, 3>{}); return true;
        default: f(std::integral_constant<int, 4>{}); return true;
    }
}

__device__ __forceinline__ void ldv(const float* p, float (&v)[4]) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
}
__device__ __forceinline__ void ldv(const __nv_bfloat16* p, float (&v)[8]) {
    const uint4 q = *reinterpret_cast<const uint4*>(p);
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {  // element 2i is the low half (little endian)
        v[2 * i] = __uint_as_float(w[i] << 16);
        v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}
__device__ __forceinline__ void ldv(const __nv_bfloat16* p, float (&v)[4]) {
    const uint2 q = *reinterpret_cast<const uint2*>(p);
    v[0] = __uint_as_float(q.x << 16);
    v[1] = __uint_as_float(q.x & 0xffff0000u);
    v[2] = __uint_as_float(q.y << 16);
    v[3] = __uint_as_float(q.y & 0xffff0000u);
}
__device__ __forceinline__ void stv(float* p, const float (&v)[4]) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
// Rounds to nearest even, as store_f.
__device__ __forceinline__ void stv(__nv_bfloat16* p, const float (&v)[8]) {
    uint4 q;
    uint32_t* w = &q.x;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
        w[i] = *reinterpret_cast<const uint32_t*>(&h);
    }
    *reinterpret_cast<uint4*>(p) = q;
}

__device__ __forceinline__ void stv(__nv_bfloat16* p, const float (&v)[4]) {
    const __nv_bfloat162 a = __floats2bfloat162_rn(v[0], v[1]);
    const __nv_bfloat162 b = __floats2bfloat162_rn(v[2], v[3]);
    *reinterpret_cast<uint2*>(p) =
        make_uint2(*reinterpret_cast<const uint32_t*>(&a), *reinterpret_cast<const uint32_t*>(&b));
}

template <int V>
__device__ __forceinline__ void zero_v(float (&v)[V]) {
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = 0.f;
}

// The 16-byte alignment the vector forms need (null counts as aligned: absent tensors).
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace goose::cuda_util
