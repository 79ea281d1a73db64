// The CUDA runtime as the rest of Goose sees it: device queries, the current stream and the
// caching device allocator's statistics. No CUDA headers here; a CPU-only build links stubs
// (available() is false, the queries return 0, and synchronize() does nothing).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace goose::cuda {

// True when this build has the CUDA backend and at least one device is usable.
bool available();
// Number of usable devices (0 without a driver, without a GPU, or in a CPU-only build).
int device_count();
// "NVIDIA H100 80GB HBM3" for device 0; "" when none.
std::string device_name(int device = 0);
// Compute capability as major * 10 + minor (90 for Hopper); 0 when none.
int compute_capability(int device = 0);

// The stream Goose launches its kernels and copies on, as a cudaStream_t. By default one
// non-blocking stream per process (created on first use); set_current_stream(s) makes this
// thread use `s` instead (nullptr restores the default). Allocator blocks are reused in stream
// order, so work on another stream must be synchronised by its owner.
void* current_stream();
void set_current_stream(void* stream);
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
};
MemoryStats memory_stats();
size_t memory_in_use();
size_t peak_memory();
void reset_peak_memory();
// Returns every cached block to the driver (cudaFree); live tensors are untouched.
void empty_cache();

}  // namespace goose::cuda
