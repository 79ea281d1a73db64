// Small memset nodes of a captured graph turned into kernel nodes (graph_memsets.h).
#include <cuda.h>  // driver API types only: the functions come through the runtime's entry points
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/cuda/graph_memsets.h"

namespace goose::cuda_detail {

namespace {

// Writes `value` (its low elem_bytes bytes) to the width x height elements of a pitched
// region, as cudaMemset2DAsync does; elem_bytes is 1, 2 or 4.
__global__ void memset_node_kernel(unsigned char* dst, size_t pitch, unsigned value,
                                   unsigned elem_bytes, size_t width, size_t height) {
    const size_t n = width * height;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += size_t(gridDim.x) * blockDim.x) {
        unsigned char* p = dst + (i / width) * pitch + (i % width) * elem_bytes;
        if (elem_bytes == 4)
            *reinterpret_cast<uint32_t*>(p) = value;
        else if (elem_bytes == 2)
            *reinterpret_cast<uint16_t*>(p) = uint16_t(value);
        else
            *p = uint8_t(value);
    }
}

struct Edges {
    std::vector<cudaGraphNode_t> nodes;
    std::vector<cudaGraphEdgeData> data;
};

// Why the last copy was abandoned (with_memsets_as_kernels' `why`).
thread_local std::string g_why;

// The code alone: the calls mix runtime (cudaError_t) and driver (CUresult) codes, whose names
// differ for the same number.
bool failed(const char* call, int code) {
    g_why = std::string(call) + " returned " + std::to_string(code);
    return false;
}

// Every call returns its error instead of throwing: a graph this cannot copy is kept as it is.
#define GM_TRY(call)                                     \
    do {                                                 \
        const int gm_err_ = int(call);                   \
        if (gm_err_ != 0) return failed(#call, gm_err_); \
    } while (0)

// Kernel nodes are read and made through the driver API: cudaGraphKernelNodeGetParams fails on
// the kernels libraries launch with cuLaunchKernel (cuBLASLt's), which the driver's v2 parameters
// (CUfunction or CUkernel) describe. The functions come from the runtime's entry-point query, so
// nothing links libcuda directly.
struct DriverGraphApi {
    PFN_cuGraphKernelNodeGetParams_v12000 get_params = nullptr;
    PFN_cuGraphAddKernelNode_v12000 add_node = nullptr;
};

const DriverGraphApi* driver_graph_api() {
    static const DriverGraphApi api = [] {
        DriverGraphApi a;
        cudaDriverEntryPointQueryResult q{};
        void* fn = nullptr;
        if (cudaGetDriverEntryPointByVersion("cuGraphKernelNodeGetParams", &fn, 12000,
                                             cudaEnableDefault, &q) == cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            a.get_params = reinterpret_cast<PFN_cuGraphKernelNodeGetParams_v12000>(fn);
        fn = nullptr;
        if (cudaGetDriverEntryPointByVersion("cuGraphAddKernelNode", &fn, 12000, cudaEnableDefault,
                                             &q) == cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            a.add_node = reinterpret_cast<PFN_cuGraphAddKernelNode_v12000>(fn);
        cudaGetLastError();
        return a;
    }();
    return &api;
}

bool incoming(cudaGraphNode_t node, Edges* e) {
    size_t n = 0;
    GM_TRY(cudaGraphNodeGetDependencies(node, nullptr, nullptr, &n));
    e->nodes.resize(n);
    e->data.resize(n);
    if (n) GM_TRY(cudaGraphNodeGetDependencies(node, e->nodes.data(), e->data.data(), &n));
    return true;
}

bool neighbours(cudaGraphNode_t node, std::vector<cudaGraphNode_t>* out) {
    size_t n = 0;
    GM_TRY(cudaGraphNodeGetDependentNodes(node, nullptr, nullptr, &n));
    out->resize(n);
    if (n) GM_TRY(cudaGraphNodeGetDependentNodes(node, out->data(), nullptr, &n));
    return true;
}

bool small_memset(const cudaMemsetParams& m) {
    const size_t bytes = size_t(m.elementSize) * m.width * m.height;
    return bytes > 0 && bytes <= kMemsetNodeKernelMaxBytes &&
           (m.elementSize == 1 || m.elementSize == 2 || m.elementSize == 4);
}

// The priority of the first kernel node among the memset's dependents, then its dependencies:
// the stream it was captured on.
bool copy_neighbour_priority(cudaGraphNode_t old_node, const Edges& in, cudaGraphNode_t kernel) {
    std::vector<cudaGraphNode_t> out;
    if (!neighbours(old_node, &out)) return false;
    const std::vector<cudaGraphNode_t>* lists[] = {&out, &in.nodes};
    for (const auto* list : lists)
        for (cudaGraphNode_t n : *list) {
            cudaGraphNodeType t{};
            GM_TRY(cudaGraphNodeGetType(n, &t));
            if (t != cudaGraphNodeTypeKernel) continue;
            cudaLaunchAttributeValue v{};
            GM_TRY(cudaGraphKernelNodeGetAttribute(n, cudaLaunchAttributePriority, &v));
            GM_TRY(cudaGraphKernelNodeSetAttribute(kernel, cudaLaunchAttributePriority, &v));
            return true;
        }
    return true;
}

// Adds the copy of `node` (no edges yet) to `dst`.
bool copy_node(cudaGraphNode_t node, cudaGraph_t dst, const Edges& in, cudaGraphNode_t* made,
               size_t* replaced) {
    cudaGraphNodeType type{};
    GM_TRY(cudaGraphNodeGetType(node, &type));
    switch (type) {
        case cudaGraphNodeTypeKernel: {
            const DriverGraphApi* drv = driver_graph_api();
            if (!drv->get_params || !drv->add_node) {
                g_why = "the driver's graph kernel-node entry points are not available";
                return false;
            }
            CUDA_KERNEL_NODE_PARAMS_v2 p{};
            GM_TRY(drv->get_params(node, &p));
            GM_TRY(drv->add_node(made, dst, nullptr, 0, &p));
            GM_TRY(cudaGraphKernelNodeCopyAttributes(*made, node));
            return true;
        }
        case cudaGraphNodeTypeMemcpy: {
            cudaMemcpy3DParms p{};
            GM_TRY(cudaGraphMemcpyNodeGetParams(node, &p));
            GM_TRY(cudaGraphAddMemcpyNode(made, dst, nullptr, 0, &p));
            return true;
        }
        case cudaGraphNodeTypeEmpty:
            GM_TRY(cudaGraphAddEmptyNode(made, dst, nullptr, 0));
            return true;
        case cudaGraphNodeTypeMemset: {
            cudaMemsetParams m{};
            GM_TRY(cudaGraphMemsetNodeGetParams(node, &m));
            if (!small_memset(m)) {
                GM_TRY(cudaGraphAddMemsetNode(made, dst, nullptr, 0, &m));
                return true;
            }
            constexpr unsigned kThreads = 256;
            const size_t elements = m.width * m.height;
            auto* ptr = static_cast<unsigned char*>(m.dst);
            size_t pitch = m.pitch, width = m.width, height = m.height;
            unsigned value = m.value, elem_bytes = m.elementSize;
            void* args[] = {&ptr, &pitch, &value, &elem_bytes, &width, &height};
            cudaKernelNodeParams k{};
            k.func = reinterpret_cast<void*>(&memset_node_kernel);
            k.gridDim = dim3(unsigned(std::min<size_t>((elements + kThreads - 1) / kThreads, 64)));
            k.blockDim = dim3(kThreads);
            k.kernelParams = args;
            GM_TRY(cudaGraphAddKernelNode(made, dst, nullptr, 0, &k));
            if (!copy_neighbour_priority(node, in, *made)) return false;
            ++*replaced;
            return true;
        }
        default:  // events, host, child graphs, allocations, conditionals: not copied
            g_why = "a node of type " + std::to_string(int(type)) + " (not copied)";
            return false;
    }
}

bool build_copy(cudaGraph_t src, cudaGraph_t dst, size_t* replaced) {
    size_t count = 0;
    GM_TRY(cudaGraphGetNodes(src, nullptr, &count));
    std::vector<cudaGraphNode_t> nodes(count);
    if (count) GM_TRY(cudaGraphGetNodes(src, nodes.data(), &count));

    // Any small memset at all? Otherwise there is nothing to gain from a copy.
    bool any = false;
    for (cudaGraphNode_t n : nodes) {
        cudaGraphNodeType t{};
        GM_TRY(cudaGraphNodeGetType(n, &t));
        if (t != cudaGraphNodeTypeMemset) continue;
        cudaMemsetParams m{};
        GM_TRY(cudaGraphMemsetNodeGetParams(n, &m));
        any = any || small_memset(m);
    }
    if (!any) return false;  // nothing to convert: why stays empty

    // Capture order, made topological where a node's dependency comes later in the list (Kahn's
    // algorithm taking the earliest ready node): the instantiation maps the nodes to streams by
    // this order.
    std::unordered_map<cudaGraphNode_t, size_t> index;
    for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i]] = i;
    std::vector<Edges> in(nodes.size());
    std::vector<size_t> waiting(nodes.size());
    std::vector<std::vector<size_t>> users(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
        if (!incoming(nodes[i], &in[i])) return false;
        waiting[i] = in[i].nodes.size();
        for (cudaGraphNode_t d : in[i].nodes) users[index.at(d)].push_back(i);
    }
    std::vector<size_t> order, ready;
    for (size_t i = 0; i < nodes.size(); ++i)
        if (waiting[i] == 0) ready.push_back(i);
    while (!ready.empty()) {
        auto it = std::min_element(ready.begin(), ready.end());
        const size_t i = *it;
        ready.erase(it);
        order.push_back(i);
        for (size_t u : users[i])
            if (--waiting[u] == 0) ready.push_back(u);
    }
    if (order.size() != nodes.size()) {  // not a DAG: never from a capture
        g_why = "the graph has a cycle";
        return false;
    }

    std::unordered_map<cudaGraphNode_t, cudaGraphNode_t> copy_of;
    for (size_t i : order) {
        cudaGraphNode_t made = nullptr;
        if (!copy_node(nodes[i], dst, in[i], &made, replaced)) return false;
        copy_of[nodes[i]] = made;
        const size_t n = in[i].nodes.size();
        if (n == 0) continue;
        std::vector<cudaGraphNode_t> from(n), to(n, made);
        for (size_t j = 0; j < n; ++j) from[j] = copy_of.at(in[i].nodes[j]);
        GM_TRY(cudaGraphAddDependencies(dst, from.data(), to.data(), in[i].data.data(), n));
    }
    return true;
}

#undef GM_TRY

}  // namespace

cudaGraph_t with_memsets_as_kernels(cudaGraph_t graph, size_t* replaced, std::string* why) {
    size_t made = 0;
    if (replaced) *replaced = 0;
    if (why) why->clear();
    g_why.clear();
    cudaGraph_t copy = nullptr;
    if (cudaGraphCreate(&copy, 0) != cudaSuccess) {
        cudaGetLastError();
        if (why) *why = "cudaGraphCreate failed";
        return nullptr;
    }
    if (!build_copy(graph, copy, &made)) {
        cudaGraphDestroy(copy);
        cudaGetLastError();  // a node the runtime would not copy: keep the original graph
        if (why) *why = g_why;
        return nullptr;
    }
    if (replaced) *replaced = made;
    return copy;
}

}  // namespace goose::cuda_detail
