// The device-side index check: a grid-stride scan; the first thread to find a bad index claims
// the record with an atomic compare-and-swap and writes the value and its position.
#include <cuda_runtime.h>

#include <algorithm>

#include "core/cuda/device_check_kernel.h"

namespace goose::cuda_detail {

namespace {

template <class I>
__global__ void index_check_kernel(const I* __restrict__ idx, int64_t n, int64_t hi,
                                   bool use_ignore, int64_t ignore, int32_t site,
                                   DeviceCheckRecord* record) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t v = int64_t(idx[i]);
        if ((v < 0 || v >= hi) && !(use_ignore && v == ignore)) {
            if (atomicCAS(&record->site, 0, site) == 0) {
                record->value = v;
                record->position = i;
            }
            return;
        }
    }
}

}  // namespace

bool launch_index_check(const void* idx, bool i64, int64_t n, int64_t hi, bool use_ignore,
                        int64_t ignore, int32_t site, DeviceCheckRecord* record, void* stream) {
    if (n <= 0) return true;
    constexpr int kThreads = 256;
    const unsigned blocks = unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 1024));
    auto st = static_cast<cudaStream_t>(stream);
    if (i64)
        index_check_kernel<<<blocks, kThreads, 0, st>>>(static_cast<const int64_t*>(idx), n, hi,
                                                        use_ignore, ignore, site, record);
    else
        index_check_kernel<<<blocks, kThreads, 0, st>>>(static_cast<const int32_t*>(idx), n, hi,
                                                        use_ignore, ignore, site, record);
    return cudaGetLastError() == cudaSuccess;
}

}  // namespace goose::cuda_detail
