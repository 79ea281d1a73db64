// Small memset nodes of a captured CUDA graph turned into kernel nodes (cuda::Graph::capture).
//
// cuBLASLt zeroes a few bytes of its workspace (a split-K / stream-K counter) with
// cudaMemsetAsync before some of its kernels. Captured, that is a memset node, and the kernel
// after a memset node starts 6-12 us after it (kernel trace, H100: 0.22 ms of idle per B16 T512
// training step, 28 such nodes), where a kernel after a kernel starts in about 1 us. A kernel
// node that writes the same bytes keeps the work in one launch queue.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

namespace goose::cuda_detail {

// Memsets of at most this many bytes are converted; larger ones stay memset nodes (their own
// time hides the start-up, and the copy engine writes them at full bandwidth).
constexpr size_t kMemsetNodeKernelMaxBytes = 64 * 1024;

// A copy of `graph` in which every memset node that writes at most kMemsetNodeKernelMaxBytes is a
// kernel node writing the same value to the same bytes, with the same edges and the priority of
// the kernel node it feeds (or is fed by); every other node is copied as it is, with its
// attributes and edge data. Returns nullptr (and leaves the CUDA error state clear) when there is
// no such memset (*why empty), or when the graph holds a node type other than kernel, memcpy,
// memset and empty, or a node the runtime cannot copy: the caller keeps `graph` then, and *why
// says which.
// *replaced: how many memsets became kernels.
cudaGraph_t with_memsets_as_kernels(cudaGraph_t graph, size_t* replaced = nullptr,
                                    std::string* why = nullptr);

}  // namespace goose::cuda_detail
