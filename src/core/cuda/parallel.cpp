// cuda::run_parallel: fork/join of work over side streams (created once, with their events, at
// the lowest priority: the default Goose stream has the highest, so the block scheduler serves
// branch 0 first and the side branches fill the SMs it leaves free), freed blocks held back by
// the allocator until the join.
#include <cuda_runtime_api.h>

#include <array>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_internal.h"
#include "goose/core/cuda.h"
#include "goose/core/error.h"

namespace goose::cuda {

namespace {

struct SideStreams {
    cudaEvent_t fork = nullptr;
    std::array<cudaStream_t, kMaxParallelBranches - 1> stream{};
    std::array<cudaEvent_t, kMaxParallelBranches - 1> done{};
};

SideStreams& side_streams() {
    static SideStreams* s = [] {
        // May run while a graph is captured: creating streams and events is safe there.
        cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
        GOOSE_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
        auto* r = new SideStreams();
        GOOSE_CUDA_CHECK(cudaEventCreateWithFlags(&r->fork, cudaEventDisableTiming));
        for (size_t i = 0; i < r->stream.size(); ++i) {
            int least = 0, greatest = 0;
            GOOSE_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
            GOOSE_CUDA_CHECK(
                cudaStreamCreateWithPriority(&r->stream[i], cudaStreamNonBlocking, least));
            GOOSE_CUDA_CHECK(cudaEventCreateWithFlags(&r->done[i], cudaEventDisableTiming));
        }
        GOOSE_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
        return r;
    }();
    return *s;
}

}  // namespace

void run_parallel(const std::vector<std::function<void()>>& branches) {
    if (branches.size() > kMaxParallelBranches)
        fail("cuda::run_parallel: {} branches, at most {}", branches.size(),
             kMaxParallelBranches);
    if (branches.size() <= 1 || !available()) {
        for (const auto& b : branches) b();
        return;
    }
    SideStreams& s = side_streams();
    const auto main = static_cast<cudaStream_t>(current_stream());
    GOOSE_CUDA_CHECK(cudaEventRecord(s.fork, main));
    cuda_detail::hold_frees(true);
    size_t forked = 0;  // side branches issued (their done events recorded)
    auto join = [&] {
        set_current_stream(main);
        for (size_t i = 0; i < forked; ++i)
            GOOSE_CUDA_CHECK(cudaStreamWaitEvent(main, s.done[i], 0));
        cuda_detail::hold_frees(false);
    };
    try {
        branches[0]();  // first: its kernels are queued before the side branches'
        for (size_t i = 1; i < branches.size(); ++i) {
            cudaStream_t side = s.stream[i - 1];
            GOOSE_CUDA_CHECK(cudaStreamWaitEvent(side, s.fork, 0));
            set_current_stream(side);
            try {
                branches[i]();
            } catch (...) {
                cudaEventRecord(s.done[i - 1], side);  // rejoin what was queued, then rethrow
                ++forked;
                throw;
            }
            GOOSE_CUDA_CHECK(cudaEventRecord(s.done[i - 1], side));
            ++forked;
            set_current_stream(main);
        }
    } catch (...) {
        join();
        throw;
    }
    join();
}

}  // namespace goose::cuda
