// Shared helpers for CUDA kernels (.cu files of src/ops/cuda and src/core/cuda): error checks,
// the current stream, bf16/f32 loads and stores (fp32 math inside), launch-size helpers and a
// float-dtype dispatch. Include only from .cu files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/cuda_check.h"  // GOOSE_CUDA_CHECK, GOOSE_CUDA_LAUNCH_CHECK
#include "goose/core/cuda.h"
#include "goose/core/dtype.h"

namespace goose::cuda_util {

using bf16 = __nv_bfloat16;

// The stream every Goose kernel and copy runs on (see goose::cuda::current_stream()).
inline cudaStream_t stream() {
    return static_cast<cudaStream_t>(goose::cuda::current_stream());
}

// ---- launch sizes ----
constexpr int kWarpSize = 32;
constexpr int kDefaultThreads = 256;

template <class T>
__host__ __device__ constexpr T ceil_div(T a, T b) {
    return (a + b - 1) / b;
}

// Streaming multiprocessors of device 0 (cached).
inline int num_sms() {
    static const int n = [] {
        int v = 0;
        GOOSE_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0));
        return v;
    }();
    return n;
}

// Blocks for a grid-stride loop over n elements: enough to fill the GPU (waves_per_sm blocks
// per SM), never more than the elements need, at least 1.
inline int grid_for(int64_t n, int threads = kDefaultThreads, int waves_per_sm = 8) {
    const int64_t need = ceil_div<int64_t>(n, threads);
    const int64_t cap = int64_t(num_sms()) * waves_per_sm;
    const int64_t g = need < cap ? need : cap;
    return static_cast<int>(g < 1 ? 1 : g);
}

// Blocks for one thread per element (no grid-stride loop); n < 2^31 * threads.
inline int grid_exact(int64_t n, int threads = kDefaultThreads) {
    const int64_t g = ceil_div<int64_t>(n, threads);
    return static_cast<int>(g < 1 ? 1 : g);
}

// Grid-stride loop: for (int64_t i : ...) style helper.
#define GOOSE_GRID_STRIDE_LOOP(i, n)                                          \
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
         i += int64_t(gridDim.x) * blockDim.x)

// ---- element loads and stores: compute in f32, store rounding to nearest even ----
__device__ __forceinline__ float load_f(const float* p) {
    return *p;
}
__device__ __forceinline__ float load_f(const bf16* p) {
    return __bfloat162float(*p);
}
__device__ __forceinline__ void store_f(float* p, float v) {
    *p = v;
}
__device__ __forceinline__ void store_f(bf16* p, float v) {
    *p = __float2bfloat16_rn(v);
}

__host__ __device__ __forceinline__ float to_f(float v) {
    return v;
}
__device__ __forceinline__ float to_f(bf16 v) {
    return __bfloat162float(v);
}
template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) {
    return v;
}
template <>
__device__ __forceinline__ bf16 from_f<bf16>(float v) {
    return __float2bfloat16_rn(v);
}

// Two adjacent bf16 (4-byte aligned) as float2, and back.
__device__ __forceinline__ float2 load_f2(const bf16* p) {
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
}
__device__ __forceinline__ void store_f2(bf16* p, float2 v) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __float22bfloat162_rn(v);
}

// Bit-level forms, matching goose::float_to_bf16 / bf16_to_float on the CPU exactly
// (round to nearest even, NaN stays NaN), for kernels that store bf16 as uint16_t.
__host__ __device__ __forceinline__ float bf16_bits_to_float(uint16_t h) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(static_cast<uint32_t>(h) << 16);
#else
    return goose::bf16_to_float(h);
#endif
}
__host__ __device__ __forceinline__ uint16_t float_to_bf16_bits(float f) {
#ifdef __CUDA_ARCH__
    uint32_t u = __float_as_uint(f);
#else
    uint32_t u;
    std::memcpy(&u, &f, 4);
#endif
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

// Calls fn(float{}) or fn(bf16{}) for a tensor dtype; other dtypes are a caller bug (the front
// end checks dtypes). Usage: dispatch_float(x.dtype(), [&](auto tag) { using T = decltype(tag); ...
// });
template <class Fn>
void dispatch_float(DType t, Fn&& fn) {
    switch (t) {
        case DType::f32:
            fn(float{});
            return;
        case DType::bf16:
            fn(bf16{});
            return;
        default:
            break;
    }
    GOOSE_CUDA_CHECK(cudaErrorInvalidValue);  // unreachable for checked inputs
}

}  // namespace goose::cuda_util
