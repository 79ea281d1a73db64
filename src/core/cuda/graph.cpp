// cuda::Graph: stream capture of a piece of work into a CUDA graph (allocations from a private
// pool, see allocator.cpp), its instantiation and replay; cuda::capturing().
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <string>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_internal.h"
#include "core/cuda/device_check.h"
#include "core/cuda/graph_memsets.h"
#include "goose/core/cuda.h"
#include "goose/core/error.h"

namespace goose::cuda {

bool capturing() {
    if (!available()) return false;
    cudaStreamCaptureStatus s = cudaStreamCaptureStatusNone;
    GOOSE_CUDA_CHECK(cudaStreamIsCapturing(static_cast<cudaStream_t>(current_stream()), &s));
    return s != cudaStreamCaptureStatusNone;
}

struct Graph::Impl {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    std::shared_ptr<void> pool;  // the blocks the graph's work uses
    size_t nodes = 0;
    size_t memset_kernels = 0;
    std::string memsets_kept_why;

    void release() {
        if (exec || pool) synchronize();  // replays may still be running
        if (exec) cudaGraphExecDestroy(exec);
        if (graph) cudaGraphDestroy(graph);
        exec = nullptr;
        graph = nullptr;
        if (pool) cuda_detail::release_graph_pool(pool);
        pool.reset();
        nodes = 0;
        memset_kernels = 0;
        memsets_kept_why.clear();
    }
};

Graph::Graph() : impl_(std::make_unique<Impl>()) {}

Graph::~Graph() {
    try {
        impl_->release();
    } catch (...) {  // a destructor must not throw; the CUDA error stays for the next check
    }
}

void Graph::capture(const std::function<void()>& work) {
    if (!available()) fail("cuda::Graph::capture: no CUDA device is available");
    if (capturing()) fail("cuda::Graph::capture: the current stream is already being captured");
    impl_->release();
    auto st = static_cast<cudaStream_t>(current_stream());
    if (st == nullptr || st == cudaStreamLegacy || st == cudaStreamPerThread)
        fail("cuda::Graph::capture: the current stream is the default stream, which cannot be "
             "captured (use cuda::set_current_stream with a stream of your own, or the default "
             "Goose stream)");
    synchronize();
    check_device_errors();
    cuda_detail::prepare_device_checks();
    impl_->pool = cuda_detail::begin_graph_pool();
    GOOSE_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t g = nullptr;
    try {
        work();
    } catch (...) {
        cudaStreamEndCapture(st, &g);
        cudaGetLastError();
        if (g) cudaGraphDestroy(g);
        cuda_detail::end_graph_pool();
        impl_->release();
        throw;
    }
    const cudaError_t e = cudaStreamEndCapture(st, &g);
    cuda_detail::end_graph_pool();
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (g) cudaGraphDestroy(g);
        impl_->release();
        fail("cuda::Graph::capture: the capture failed with {} ({}): the work did something a "
             "CUDA graph cannot hold (a host sync, a copy to or from pageable host memory, or "
             "work on another stream)",
             cudaGetErrorName(e), cudaGetErrorString(e));
    }
    // cuBLASLt's few-byte workspace memsets as kernel nodes: no idle start-up after each.
    if (!std::getenv("GOOSE_KEEP_MEMSET_NODES")) {
        std::string why;
        if (cudaGraph_t copy =
                cuda_detail::with_memsets_as_kernels(g, &impl_->memset_kernels, &why)) {
            cudaGraphDestroy(g);
            g = copy;
        } else {
            impl_->memsets_kept_why = why;  // empty when there was nothing to convert
        }
    }
    impl_->graph = g;
    GOOSE_CUDA_CHECK(cudaGraphGetNodes(g, nullptr, &impl_->nodes));
    // Kernel nodes keep the priority of the stream they were captured on (cuda::run_parallel).
    GOOSE_CUDA_CHECK(
        cudaGraphInstantiate(&impl_->exec, g, cudaGraphInstantiateFlagUseNodePriority));
    GOOSE_CUDA_CHECK(cudaGraphUpload(impl_->exec, st));
}

void Graph::replay() {
    if (!impl_->exec) fail("cuda::Graph::replay: nothing has been captured");
    GOOSE_CUDA_CHECK(cudaGraphLaunch(impl_->exec, static_cast<cudaStream_t>(current_stream())));
    cuda_detail::device_checks_pending();
}

bool Graph::captured() const {
    return impl_->exec != nullptr;
}

size_t Graph::nodes() const {
    return impl_->nodes;
}

size_t Graph::memsets_as_kernels() const {
    return impl_->memset_kernels;
}

std::string Graph::memsets_kept_why() const {
    return impl_->memsets_kept_why;
}

}  // namespace goose::cuda
