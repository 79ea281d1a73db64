// Small helper kernels of the CUDA matmul/linear glue (see matmul_kernels.h).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "ops/cuda/matmul_kernels.h"

namespace goose::matmul_kernels {

namespace {

using gemm_lt::GemmType;

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(e));
}

int blocks_for(int64_t n) {
    return static_cast<int>(std::clamp<int64_t>((n + 255) / 256, 1, 8192));
}

__device__ __forceinline__ float to_acc(float v) {
    return v;
}
__device__ __forceinline__ double to_acc(double v) {
    return v;
}
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) {
    return __bfloat162float(v);
}
template <class T, class A>
__device__ __forceinline__ T from_acc(A v) {
    return T(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16, float>(float v) {
    return __float2bfloat16_rn(v);
}

__global__ void f32_to_bf16_kernel(const float* src, __nv_bfloat16* dst, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

template <class T>
__global__ void fill_rows_kernel(T* y, const T* bias, int64_t rows, int64_t cols) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * cols;
         i += int64_t(gridDim.x) * blockDim.x)
        y[i] = bias[i % cols];
}

// A 32 x 8 block: 32 columns, 8 row-strided partial sums per column, summed in a fixed order.
template <class T, class A>
__global__ void column_sum_kernel(const T* g, T* out, int64_t rows, int64_t cols) {
    __shared__ A part[8][33];
    const int64_t c = blockIdx.x * 32 + threadIdx.x;
    A acc = 0;
    if (c < cols)
        for (int64_t r = threadIdx.y; r < rows; r += 8) acc += to_acc(g[r * cols + c]);
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        A s = 0;
        for (int q = 0; q < 8; ++q) s += part[q][threadIdx.x];
        out[c] = from_acc<T, A>(s);
    }
}

}  // namespace

void zero(void* p, size_t bytes, void* stream) {
    if (bytes == 0) return;
    check(cudaMemsetAsync(p, 0, bytes, static_cast<cudaStream_t>(stream)), "cudaMemsetAsync");
}

void f32_to_bf16(const float* src, void* dst, int64_t n, void* stream) {
    if (n <= 0) return;
    f32_to_bf16_kernel<<<blocks_for(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        src, static_cast<__nv_bfloat16*>(dst), n);
    check(cudaGetLastError(), "f32_to_bf16 launch");
}

void fill_rows(void* y, const void* bias, int64_t rows, int64_t cols, GemmType t, void* stream) {
    if (rows * cols <= 0) return;
    auto s = static_cast<cudaStream_t>(stream);
    const int b = blocks_for(rows * cols);
    if (t == GemmType::f32)
        fill_rows_kernel<float>
            <<<b, 256, 0, s>>>(static_cast<float*>(y), static_cast<const float*>(bias), rows, cols);
    else if (t == GemmType::f64)
        fill_rows_kernel<double><<<b, 256, 0, s>>>(static_cast<double*>(y),
                                                   static_cast<const double*>(bias), rows, cols);
    else
        fill_rows_kernel<__nv_bfloat16><<<b, 256, 0, s>>>(
            static_cast<__nv_bfloat16*>(y), static_cast<const __nv_bfloat16*>(bias), rows, cols);
    check(cudaGetLastError(), "fill_rows launch");
}

void column_sum(const void* g, void* out, int64_t rows, int64_t cols, GemmType t, void* stream) {
    if (cols <= 0) return;
    auto s = static_cast<cudaStream_t>(stream);
    const dim3 block(32, 8);
    const unsigned blocks = unsigned((cols + 31) / 32);
    if (t == GemmType::f32)
        column_sum_kernel<float, float><<<blocks, block, 0, s>>>(
            static_cast<const float*>(g), static_cast<float*>(out), rows, cols);
    else if (t == GemmType::f64)
        column_sum_kernel<double, double><<<blocks, block, 0, s>>>(
            static_cast<const double*>(g), static_cast<double*>(out), rows, cols);
    else
        column_sum_kernel<__nv_bfloat16, float><<<blocks, block, 0, s>>>(
            static_cast<const __nv_bfloat16*>(g), static_cast<__nv_bfloat16*>(out), rows, cols);
    check(cudaGetLastError(), "column_sum launch");
}

}  // namespace goose::matmul_kernels
