// Argument checks shared by op front ends. Each throws goose::Error naming the op and the
// offending tensors (dtype, shape, device), so a user sees what to fix.
#pragma once
#include <initializer_list>

#include "goose/core/tensor.h"

namespace goose::check {

void defined(const char* op, const Tensor& t, const char* what);
void float_dtype(const char* op, const Tensor& t);  // f32 or f64 (the compute dtypes); bf16 on CUDA
// A saved statistic of x (mean, rstd, log-sum-exp): x's dtype, or f32 when x is bf16.
void stats_dtype(const char* op, const Tensor& stat, const Tensor& x, const char* what);
void index_dtype(const char* op, const Tensor& t);  // i32 or i64
void same_dtype(const char* op, const Tensor& a, const Tensor& b);
void same_shape(const char* op, const Tensor& a, const Tensor& b);
void ndim(const char* op, const Tensor& t, int n, const char* what);
void ndim_between(const char* op, const Tensor& t, int lo, int hi, const char* what);
void dim_equals(const char* op, const Tensor& t, int dim, int64_t size, const char* what);

}  // namespace goose::check
