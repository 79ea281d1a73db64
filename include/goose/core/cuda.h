// The CUDA runtime as the rest of Goose sees it: device queries, the current stream and the
// caching device allocator's statistics. No CUDA headers here; a CPU-only build links stubs
// (available() is false, the queries return 0, and synchronize() does nothing).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace goose::cuda {

// True when this build has the CUDA backend and at least one device is usable.
bool available();
// Number of usable devices (0 without a driver, without a GPU, or in a CPU-only build).
int device_count();
// "NVIDIA H100 80GB HBM3" for device 0; "" when none.
std::string device_name(int device = 0);
// Compute capability as major * 10 + minor (90 for Hopper); 0 when none.
int compute_capability(int device = 0);
// Streaming multiprocessors of the device (132 on an H100 SXM); 0 when none.
int multiprocessor_count(int device = 0);

// The stream Goose launches its kernels and copies on, as a cudaStream_t. By default one
// non-blocking stream per process (created on first use); set_current_stream(s) makes this
// thread use `s` instead (nullptr restores the default). Allocator blocks are reused in stream
// order, so work on another stream must be synchronised by its owner.
void* current_stream();
void set_current_stream(void* stream);
// Issues the branches as concurrent work (fork/join): branch 0 on the current stream, each
// other one on a side stream of low priority that first waits for everything queued on the
// current stream before the call; the current stream then waits for all of them, so later work
// sees every branch's results and a CUDA graph captured around the call holds parallel
// branches. The host runs the branches one after another, branch 0 first; device blocks freed
// meanwhile return to the cache only after the join.
// Without a device, or with one branch, the branches simply run in order. At most
// kMaxParallelBranches branches (four side streams: one per LoRA chain of an RWKV-7 time mix).
constexpr size_t kMaxParallelBranches = 5;
void run_parallel(const std::vector<std::function<void()>>& branches);
// While one lives, this thread's GEMMs are planned for `sms` SMs instead of the whole device
// (cuBLASLt's SM-count target): for work beside a kernel that holds the others (0: all).
class SmTarget {
  public:
    explicit SmTarget(int sms);
    ~SmTarget();
    SmTarget(const SmTarget&) = delete;
    SmTarget& operator=(const SmTarget&) = delete;

  private:
    int prev_;
};
int sm_target();
// GEMM autotuning: when on, a cuBLASLt plan made outside CUDA-graph capture times up to 16 of
// the heuristic's algorithms on the call's own operands (the output goes to a scratch buffer)
// and keeps the fastest; off, the heuristic's first choice is taken. Off by default; the
// environment variable GOOSE_GEMM_TUNE=0/1 overrides the setting.
void set_gemm_autotune(bool on);
bool gemm_autotune();
// Device memory held by the GEMM workspaces (one per stream that ran a GEMM; outside the caching
// allocator, so not in peak_memory()); 0 without CUDA.
size_t gemm_workspace_bytes();
// Waits for all work on the current stream, then checks for asynchronous errors
// (throws goose::Error naming the CUDA error).
void synchronize();

// The caching device allocator: freed blocks stay cached in size classes and are reused, so a
// training step issues no cudaMalloc after the first.
struct MemoryStats {
    size_t in_use = 0;           // bytes held by live tensors (rounded to size classes)
    size_t peak = 0;             // highest in_use since start or reset_peak_memory()
    size_t cached = 0;           // bytes in the free lists, ready for reuse
    uint64_t device_allocs = 0;  // cudaMalloc calls made
    uint64_t reuses = 0;         // allocations served from the free lists
    size_t graph_cached = 0;     // of `cached`: blocks reserved for live CUDA graphs (their
                                 // replays' temporaries); a graph's footprint is in_use + this
};
MemoryStats memory_stats();
size_t memory_in_use();
size_t peak_memory();
void reset_peak_memory();
// Returns every cached block to the driver (cudaFree); live tensors are untouched. Blocks
// reserved for a live CUDA graph stay.
void empty_cache();

// True while the current stream is being captured into a CUDA graph (false without a device).
bool capturing();

// Device-side checks: under capture, ops that validate indices (embedding ids, cross-entropy
// targets) launch a check kernel instead of reading the indices on the host. The first failure
// is recorded on the device and reported here as a goose::Error naming the op and the value
// (then cleared). synchronize() and every device-to-host copy call it, so a bad id in a
// replayed graph fails at the next sync point.
void check_device_errors();

// A CUDA graph of work on the current stream. capture(work) runs `work` once under stream
// capture (nothing executes; no host syncs or host copies are allowed inside) and instantiates
// the graph; replay() launches it on the current stream. Every block the captured work allocates
// comes from a pool private to this graph and stays reserved for it until the Graph dies, so
// tensors created during capture (and kept alive by the caller) are written again by each
// replay at the same addresses. Host code inside `work` does not run on replay: the work must
// depend only on device buffers whose addresses stay fixed. CPU-only builds: capture() fails.
class Graph {
  public:
    Graph();
    ~Graph();
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;

    void capture(const std::function<void()>& work);
    void replay();
    bool captured() const;
    size_t nodes() const;  // kernel, copy and memset nodes of the captured graph
    // Few-byte memset nodes (cuBLASLt's workspace counters) the capture turned into kernel nodes,
    // so the kernel after each starts without the 6-12 us a memset node costs; and, when the
    // graph had such memsets but kept them, why (empty otherwise).
    size_t memsets_as_kernels() const;
    std::string memsets_kept_why() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace goose::cuda
