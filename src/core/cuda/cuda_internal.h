// What core's CPU files (tensor.cpp, storage.cpp) call in the CUDA build. No CUDA headers.
#pragma once
#include "goose/core/storage.h"
#include "goose/core/tensor.h"

namespace goose::cuda_detail {

// The caching device allocator for cuda:0 (allocating fails with a goose::Error when there is
// no usable device).
Allocator& device_allocator();
// dst = src elementwise (same shape, any strides and dtypes) where at least one is on CUDA.
void copy_strided(const Tensor& dst, const Tensor& src);
// Every element of t (on CUDA, any strides) set to value converted to t's dtype.
void fill(const Tensor& t, double value);

}  // namespace goose::cuda_detail
