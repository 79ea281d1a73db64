// Small memset nodes of a captured graph become kernel nodes (src/core/cuda/graph_memsets.h):
// the replayed graph writes exactly the bytes the memsets wrote (1-, 2- and 4-byte elements,
// pitched 2D regions, bytes around them untouched), in the captured order (overlapping
// memsets, a copy reading what one wrote), and memsets above the size limit stay memset nodes;
// a graph without small memsets is left as it is.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/cuda/graph_memsets.h"
#include "cuda/cuda_test_util.h"

namespace goose {
namespace {

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

int count_nodes(cudaGraph_t g, cudaGraphNodeType type) {
    size_t n = 0;
    EXPECT_EQ(cudaGraphGetNodes(g, nullptr, &n), cudaSuccess);
    std::vector<cudaGraphNode_t> nodes(n);
    EXPECT_EQ(cudaGraphGetNodes(g, nodes.data(), &n), cudaSuccess);
    int count = 0;
    for (cudaGraphNode_t node : nodes) {
        cudaGraphNodeType t{};
        EXPECT_EQ(cudaGraphNodeGetType(node, &t), cudaSuccess);
        count += t == type;
    }
    return count;
}

TEST(CudaGraphMemsets, SmallMemsetNodesBecomeKernelsThatWriteTheSameBytesInOrder) {
    GOOSE_REQUIRE_GPU();
    constexpr size_t kBig = cuda_detail::kMemsetNodeKernelMaxBytes + 4096;
    constexpr size_t kBytes = 8192 + kBig;
    uint8_t* buf = nullptr;
    CUDA_OK(cudaMalloc(&buf, kBytes));
    cudaStream_t st = nullptr;
    CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));

    // What the captured work writes, applied to a host copy in the same order.
    std::vector<uint8_t> want(kBytes, 0xAB);
    auto host_memset2d = [&](size_t off, size_t pitch, uint32_t value, size_t elem, size_t width,
                             size_t height) {
        for (size_t r = 0; r < height; ++r)
            for (size_t c = 0; c < width; ++c)
                std::memcpy(&want[off + r * pitch + c * elem], &value, elem);  // little endian
    };

    CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    CUDA_OK(cudaMemsetAsync(buf + 4, 0, 4, st));  // a workspace counter, as cuBLASLt's
    host_memset2d(4, 0, 0, 1, 4, 1);
    CUDA_OK(cudaMemsetAsync(buf + 13, 0x5C, 301, st));  // odd offset and length
    host_memset2d(13, 0, 0x5C, 1, 301, 1);
    CUDA_OK(cudaMemsetAsync(buf + 100, 0x11, 50, st));  // overlaps the last: order matters
    host_memset2d(100, 0, 0x11, 1, 50, 1);
    CUDA_OK(cudaMemset2DAsync(buf + 1024, 96, 0x7E, 40, 5, st));  // pitched rows
    host_memset2d(1024, 96, 0x7E, 1, 40, 5);
    // A copy reading bytes a memset wrote: the edge from the memset must survive.
    CUDA_OK(cudaMemcpyAsync(buf + 2048, buf + 13, 64, cudaMemcpyDeviceToDevice, st));
    std::memcpy(&want[2048], &want[13], 64);
    CUDA_OK(cudaMemsetAsync(buf + kBytes - kBig, 0x3D, kBig, st));  // above the limit
    host_memset2d(kBytes - kBig, 0, 0x3D, 1, kBig, 1);
    cudaGraph_t g = nullptr;
    CUDA_OK(cudaStreamEndCapture(st, &g));

    // 2- and 4-byte elements: memset nodes added directly (the runtime's memset calls are bytes).
    cudaGraphNode_t last = nullptr;
    {
        size_t n = 0;
        CUDA_OK(cudaGraphGetNodes(g, nullptr, &n));
        std::vector<cudaGraphNode_t> nodes(n);
        CUDA_OK(cudaGraphGetNodes(g, nodes.data(), &n));
        for (cudaGraphNode_t node : nodes) {  // the sink: the big memset
            size_t out = 0;
            CUDA_OK(cudaGraphNodeGetDependentNodes(node, nullptr, nullptr, &out));
            if (out == 0) last = node;
        }
    }
    ASSERT_NE(last, nullptr);
    // A memset node after `after`, and the same write on the host copy.
    auto add_memset = [&](cudaGraphNode_t after, size_t off, size_t pitch, uint32_t value,
                          unsigned elem, size_t width, size_t height) {
        cudaMemsetParams p{};
        p.dst = buf + off;
        p.pitch = pitch;
        p.value = value;
        p.elementSize = elem;
        p.width = width;
        p.height = height;
        cudaGraphNode_t node = nullptr;
        EXPECT_EQ(cudaGraphAddMemsetNode(&node, g, &after, 1, &p), cudaSuccess);
        host_memset2d(off, pitch, value, elem, width, height);
        return node;
    };
    const cudaGraphNode_t n16 = add_memset(last, 4096, 64, 0xBEEF, 2, 7, 3);
    ASSERT_NE(add_memset(n16, 6000, 0, 0xDEADBEEF, 4, 33, 1), nullptr);

    ASSERT_EQ(count_nodes(g, cudaGraphNodeTypeMemset), 7);
    const int copies = count_nodes(g, cudaGraphNodeTypeMemcpy);
    size_t replaced = 0;
    cudaGraph_t converted = cuda_detail::with_memsets_as_kernels(g, &replaced);
    ASSERT_NE(converted, nullptr);
    CUDA_OK(cudaGraphDestroy(g));
    g = converted;
    EXPECT_EQ(replaced, 6u);
    EXPECT_EQ(count_nodes(g, cudaGraphNodeTypeMemset), 1);  // the one above the limit
    EXPECT_EQ(count_nodes(g, cudaGraphNodeTypeKernel), 6);
    EXPECT_EQ(count_nodes(g, cudaGraphNodeTypeMemcpy), copies);

    cudaGraphExec_t exec = nullptr;
    CUDA_OK(cudaGraphInstantiate(&exec, g, 0));
    for (int replay = 0; replay < 2; ++replay) {
        CUDA_OK(cudaMemsetAsync(buf, 0xAB, kBytes, st));
        CUDA_OK(cudaGraphLaunch(exec, st));
        CUDA_OK(cudaStreamSynchronize(st));
        std::vector<uint8_t> got(kBytes);
        CUDA_OK(cudaMemcpy(got.data(), buf, kBytes, cudaMemcpyDeviceToHost));
        size_t bad = 0, first = kBytes;
        for (size_t i = 0; i < kBytes; ++i)
            if (got[i] != want[i]) {
                ++bad;
                first = std::min(first, i);
            }
        EXPECT_EQ(bad, 0u) << "replay " << replay << ": first wrong byte at " << first;
    }
    CUDA_OK(cudaGraphExecDestroy(exec));
    CUDA_OK(cudaGraphDestroy(g));
    CUDA_OK(cudaStreamDestroy(st));
    CUDA_OK(cudaFree(buf));
}

TEST(CudaGraphMemsets, GraphWithoutSmallMemsetsIsKept) {
    GOOSE_REQUIRE_GPU();
    constexpr size_t kBig = cuda_detail::kMemsetNodeKernelMaxBytes + 1;
    uint8_t* buf = nullptr;
    CUDA_OK(cudaMalloc(&buf, kBig));
    cudaStream_t st = nullptr;
    CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    CUDA_OK(cudaMemsetAsync(buf, 1, kBig, st));
    cudaGraph_t g = nullptr;
    CUDA_OK(cudaStreamEndCapture(st, &g));
    size_t replaced = 7;
    std::string why = "unset";
    EXPECT_EQ(cuda_detail::with_memsets_as_kernels(g, &replaced, &why), nullptr);
    EXPECT_EQ(replaced, 0u);
    EXPECT_EQ(why, "");  // nothing to convert is not a failure
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    CUDA_OK(cudaGraphDestroy(g));
    CUDA_OK(cudaStreamDestroy(st));
    CUDA_OK(cudaFree(buf));
}

}  // namespace
}  // namespace goose
