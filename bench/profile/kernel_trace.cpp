// CUPTI injection library: the start and end of every kernel, memory copy and memset a program
// runs on the GPU, CUDA-graph replays included, written as CSV when the program exits. Unlike ncu (which serialises kernels
// and flushes caches between them), this is the timeline as it ran: concurrent streams, warm
// caches, gaps. bench/profile/timeline.py turns it into a per-step table.
//
//   make build CUDA=1 TARGETS=kernel_trace   (build-cuda/libkernel_trace.so), or plain nvcc:
//   nvcc -O2 -shared -Xcompiler -fPIC bench/profile/kernel_trace.cpp -lcupti -o libkernel_trace.so
//   CUDA_INJECTION64_PATH=$PWD/libkernel_trace.so GOOSE_KERNEL_TRACE=trace.csv goose bench ...
//
// Columns: start_ns,end_ns,stream,graph_node,grid,block,name (mangled; "memcpy N bytes" and
// "memset N bytes" for those). Times are the GPU's nanosecond clock; only differences mean
// anything.
#include <cupti.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Row {
    uint64_t start, end, graph_node;
    uint32_t stream;
    int32_t grid[3], block[3];
    std::string name;
};

std::mutex g_mutex;
std::vector<Row>* g_rows = nullptr;  // never freed: written from the atexit handler
constexpr size_t kBufferBytes = 8u << 20;

void check(CUptiResult r, const char* what) {
    if (r == CUPTI_SUCCESS) return;
    const char* msg = nullptr;
    cuptiGetResultString(r, &msg);
    std::fprintf(stderr, "kernel_trace: %s failed: %s\n", what, msg ? msg : "?");
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
    *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
    *size = kBufferBytes;
    *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
    CUpti_Activity* rec = nullptr;
    std::lock_guard<std::mutex> lock(g_mutex);
    while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
        if (rec->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
            const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(rec);
            g_rows->push_back({m->start, m->end, m->graphNodeId, m->streamId, {0, 0, 0}, {0, 0, 0},
                               "memcpy " + std::to_string(m->bytes) + " bytes"});
            continue;
        }
        if (rec->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
            const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(rec);
            g_rows->push_back({m->start, m->end, m->graphNodeId, m->streamId, {0, 0, 0}, {0, 0, 0},
                               "memset " + std::to_string(m->bytes) + " bytes"});
            continue;
        }
        if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
        const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
        g_rows->push_back({k->start, k->end, k->graphNodeId, k->streamId,
                           {k->gridX, k->gridY, k->gridZ},
                           {k->blockX, k->blockY, k->blockZ},
                           k->name ? k->name : "?"});
    }
    std::free(buffer);
}

void write_trace() {
    cuptiActivityFlushAll(1);
    const char* path = std::getenv("GOOSE_KERNEL_TRACE");
    if (!path || !*path) path = "kernel_trace.csv";
    const std::string tmp = std::string(path) + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f) {
        std::fprintf(stderr, "kernel_trace: cannot write %s\n", tmp.c_str());
        return;
    }
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fprintf(f, "start_ns,end_ns,stream,graph_node,grid,block,name\n");
    for (const Row& r : *g_rows)
        std::fprintf(f, "%llu,%llu,%u,%llu,%dx%dx%d,%dx%dx%d,%s\n", (unsigned long long)r.start,
                     (unsigned long long)r.end, r.stream, (unsigned long long)r.graph_node,
                     r.grid[0], r.grid[1], r.grid[2], r.block[0], r.block[1], r.block[2],
                     r.name.c_str());
    std::fclose(f);
    if (std::rename(tmp.c_str(), path) != 0)
        std::fprintf(stderr, "kernel_trace: cannot rename %s to %s\n", tmp.c_str(), path);
    else
        std::fprintf(stderr, "kernel_trace: %zu kernels written to %s\n", g_rows->size(), path);
}

}  // namespace

// Called by the CUDA driver when CUDA_INJECTION64_PATH names this library.
extern "C" int InitializeInjection() {
    g_rows = new std::vector<Row>();
    g_rows->reserve(1 << 16);
    check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed),
          "cuptiActivityRegisterCallbacks");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable kernel");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "cuptiActivityEnable memcpy");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET), "cuptiActivityEnable memset");
    std::atexit(write_trace);
    return 1;
}
