// GOOSE_CUDA_CHECK / GOOSE_CUDA_LAUNCH_CHECK for host code of the CUDA build (g++ or nvcc):
// a failed CUDA call throws goose::Error naming the call, file:line and cudaGetErrorString.
#pragma once
#include <cuda_runtime_api.h>

namespace goose::cuda_detail {
// Throws goose::Error (no fmt here, so .cu files stay free of host-only headers).
[[noreturn]] void cuda_fail(cudaError_t err, const char* expr, const char* file, int line);
}  // namespace goose::cuda_detail

#define GOOSE_CUDA_CHECK(call)                                                           \
    do {                                                                                 \
        const cudaError_t goose_cuda_err_ = (call);                                      \
        if (goose_cuda_err_ != cudaSuccess)                                              \
            ::goose::cuda_detail::cuda_fail(goose_cuda_err_, #call, __FILE__, __LINE__); \
    } while (0)

// After a <<<...>>> launch: a bad configuration shows up here (execution errors at the next
// synchronising call).
#define GOOSE_CUDA_LAUNCH_CHECK() GOOSE_CUDA_CHECK(cudaGetLastError())
