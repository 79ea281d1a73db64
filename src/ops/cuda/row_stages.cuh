// Rows staged through shared memory for memory-bound row kernels: a thread copies its own 8 or
// 16 bytes of several tensors' rows some rows ahead with cp.async (no registers held while they
// are in flight) and reads back only what it copied (no block barrier). Include only from .cu
// files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace goose::cuda_util {

// A thread's V elements of one row as copied (8 or 16 bytes).
template <class T, int V>
struct RawOf;
template <>
struct RawOf<float, 4> {
    using type = float4;
};
template <>
struct RawOf<__nv_bfloat16, 4> {
    using type = uint2;
};
template <>
struct RawOf<__nv_bfloat16, 8> {
    using type = uint4;
};
template <class T, int V>
using Raw = typename RawOf<T, V>::type;

__device__ __forceinline__ void unpack(const float4& q, float (&v)[4]) {
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
}
__device__ __forceinline__ void unpack(const uint2& q, float (&v)[4]) {
    v[0] = __uint_as_float(q.x << 16);  // element 2i is the low half (little endian)
    v[1] = __uint_as_float(q.x & 0xffff0000u);
    v[2] = __uint_as_float(q.y << 16);
    v[3] = __uint_as_float(q.y & 0xffff0000u);
}
__device__ __forceinline__ void unpack(const uint4& q, float (&v)[8]) {
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        v[2 * i] = __uint_as_float(w[i] << 16);
        v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

// An asynchronous copy of B bytes from global src to shared dst; zeros where !ok (nothing read).
template <int B>
__device__ __forceinline__ void cp_async(void* dst, const void* src, bool ok) {
    const auto d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    if constexpr (B == 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src),
                     "r"(ok ? 16 : 0)
                     : "memory");
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(d), "l"(src), "n"(B),
                     "r"(ok ? B : 0)
                     : "memory");
}
__device__ __forceinline__ void cp_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// The row pipeline of a thread: S stages of K tensors' V elements in shared memory. Row i goes
// to stage i % S; the loop queues row i + S - 1, waits for row i and reads it, so S - 1 rows are
// in flight while one is worked on, and no registers hold them. A thread reads back only what it
// copied (no block barrier). Layout [stage][tensor][thread]: conflict-free.
template <class T, int V, int K, int S>
struct Stages {
    static constexpr int kBytes = V * static_cast<int>(sizeof(T));
    static constexpr int kPerThread = S * K * kBytes;  // shared bytes a thread needs
    char* mine;
    int stride;  // bytes between tensors
    __device__ explicit Stages(void* smem)
        : mine(static_cast<char*>(smem) + threadIdx.x * kBytes), stride(blockDim.x * kBytes) {}
    // Queues src[k] + off for the tensors with src[k] != null (zeros where !ok), one group.
    __device__ __forceinline__ void queue(int i, const T* const (&src)[K], int64_t off,
                                          bool ok) {
        char* at = mine + (i % S) * K * stride;
#pragma unroll
        for (int k = 0; k < K; ++k)
            if (src[k]) cp_async<kBytes>(at + k * stride, ok ? src[k] + off : src[k], ok);
        cp_commit();
    }
    // Where tensor k of row i goes, for copies queued by hand (then cp_commit(), one group a row).
    __device__ __forceinline__ char* at(int i, int k) { return mine + ((i % S) * K + k) * stride; }
    __device__ __forceinline__ void wait() { cp_wait<S - 1>(); }
    __device__ __forceinline__ void get(int i, int k, float (&v)[V]) const {
        unpack(*reinterpret_cast<const Raw<T, V>*>(mine + ((i % S) * K + k) * stride), v);
    }
};

// Lets `kernel` take smem bytes of dynamic shared memory (over 48 KiB needs asking); asks once
// per kernel and size.
inline cudaError_t allow_dynamic_smem(const void* kernel, size_t smem) {
    static std::mutex mu;
    static std::unordered_map<const void*, size_t> allowed;
    const std::lock_guard<std::mutex> lock(mu);
    size_t& have = allowed[kernel];
    if (smem <= std::max<size_t>(have, 48 * 1024)) return cudaSuccess;
    const cudaError_t e = cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e == cudaSuccess) have = smem;
    return e;
}

}  // namespace goose::cuda_util
