// Small helper kernels of the CUDA matmul/linear glue on raw pointers (no CUDA headers here):
// zero fill, f32 -> bf16, bias rows and bias-gradient column sums. stream: a cudaStream_t.
// Each throws std::runtime_error on a launch error.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops/cuda/gemm_lt.h"

namespace goose::matmul_kernels {

void zero(void* p, size_t bytes, void* stream);
void f32_to_bf16(const float* src, void* dst, int64_t n, void* stream);
// y (rows, cols) packed = bias (cols) on every row.
void fill_rows(void* y, const void* bias, int64_t rows, int64_t cols, gemm_lt::GemmType t,
               void* stream);
// out (cols) = the column sums of g (rows, cols) packed, accumulated in f32 (f64 for f64).
void column_sum(const void* g, void* out, int64_t rows, int64_t cols, gemm_lt::GemmType t,
                void* stream);

}  // namespace goose::matmul_kernels
