// CPU-only builds: the goose::cuda queries with no device (the CUDA build has src/core/cuda/).
#include "goose/core/cuda.h"
#include "goose/core/error.h"

#ifndef GOOSE_CUDA
namespace goose::cuda {

bool available() {
    return false;
}
int device_count() {
    return 0;
}
std::string device_name(int) {
    return "";
}
int compute_capability(int) {
    return 0;
}
int multiprocessor_count(int) {
    return 0;
}
void* current_stream() {
    return nullptr;
}
void set_current_stream(void*) {}
SmTarget::SmTarget(int) : prev_(0) {}
SmTarget::~SmTarget() = default;
int sm_target() {
    return 0;
}
namespace {
bool g_gemm_autotune = false;  // no GEMMs to tune without CUDA; kept for symmetry
}  // namespace
void set_gemm_autotune(bool on) {
    g_gemm_autotune = on;
}
bool gemm_autotune() {
    return g_gemm_autotune;
}
size_t gemm_workspace_bytes() {
    return 0;
}
void run_parallel(const std::vector<std::function<void()>>& branches) {
    for (const auto& b : branches) b();
}
void synchronize() {}
MemoryStats memory_stats() {
    return {};
}
size_t memory_in_use() {
    return 0;
}
size_t peak_memory() {
    return 0;
}
void reset_peak_memory() {}
void empty_cache() {}
bool capturing() {
    return false;
}
void check_device_errors() {}

struct Graph::Impl {};
Graph::Graph() = default;
Graph::~Graph() = default;
void Graph::capture(const std::function<void()>&) {
    fail("cuda::Graph: this build has no CUDA backend (make build CUDA=1)");
}
void Graph::replay() {
    fail("cuda::Graph: this build has no CUDA backend (make build CUDA=1)");
}
bool Graph::captured() const {
    return false;
}
size_t Graph::nodes() const {
    return 0;
}
size_t Graph::memsets_as_kernels() const {
    return 0;
}
std::string Graph::memsets_kept_why() const {
    return {};
}

}  // namespace goose::cuda
#endif
