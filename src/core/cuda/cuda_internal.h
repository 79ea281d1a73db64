// What core's CPU files (tensor.cpp, storage.cpp) call in the CUDA build. No CUDA headers.
#pragma once
#include <memory>

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

// CUDA graph pools (see cuda::Graph): between begin and end every device allocation comes from
// a new pool private to the graph being captured; release returns its blocks to the cache.
std::shared_ptr<void> begin_graph_pool();
void end_graph_pool();
void release_graph_pool(const std::shared_ptr<void>& pool);
// hold_frees(true) .. hold_frees(false) (nestable): freed device blocks are held back and
// returned to the cache only at the outermost release (see cuda::run_parallel).
void hold_frees(bool on);

}  // namespace goose::cuda_detail
