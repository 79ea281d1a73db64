// goose::cuda queries (device count and name, the current stream, synchronize, which also
// reports device-side check failures) and the CUDA error path of GOOSE_CUDA_CHECK.
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/cuda/cuda_check.h"
#include "goose/core/cuda.h"
#include "goose/core/error.h"
#include "ops/cuda/gemm_lt.h"

namespace goose {

namespace cuda_detail {

void cuda_fail(cudaError_t err, const char* expr, const char* file, int line) {
    cudaGetLastError();  // clear a non-sticky error so later calls can proceed
    fail("CUDA error {} ({}) in `{}` at {}:{}", cudaGetErrorName(err), cudaGetErrorString(err),
         expr, file, line);
}

// Device count probed once; the reason is kept for "no CUDA device" messages.
struct Probe {
    int count = 0;
    std::string why_none;
};

const Probe& probe() {
    static const Probe p = [] {
        Probe r;
        const cudaError_t e = cudaGetDeviceCount(&r.count);
        if (e != cudaSuccess) {
            cudaGetLastError();
            r.count = 0;
            r.why_none = fmt::format("{}: {}", cudaGetErrorName(e), cudaGetErrorString(e));
        } else if (r.count == 0) {
            r.why_none = "the driver reports 0 devices";
        }
        return r;
    }();
    return p;
}

const std::string& why_no_device() {
    return probe().why_none;
}

}  // namespace cuda_detail

namespace cuda {

namespace {
thread_local cudaStream_t t_stream = nullptr;
thread_local bool t_stream_set = false;
thread_local int t_sm_target = 0;

// The process's default Goose stream: blocking with respect to the legacy default stream, so a
// stray launch on stream 0 stays ordered, yet capturable into CUDA graphs; of the highest
// priority (run_parallel's side streams have the lowest).
cudaStream_t default_stream() {
    static cudaStream_t s = [] {
        cudaStream_t st = nullptr;
        int least = 0, greatest = 0;
        GOOSE_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
        GOOSE_CUDA_CHECK(cudaStreamCreateWithPriority(&st, cudaStreamDefault, greatest));
        return st;
    }();
    return s;
}

void require_device(const char* what) {
    if (device_count() == 0)
        fail("{}: no CUDA device is available ({})", what, cuda_detail::why_no_device());
}
}  // namespace

bool available() {
    return device_count() > 0;
}

int device_count() {
    return cuda_detail::probe().count;
}

std::string device_name(int device) {
    if (device < 0 || device >= device_count()) return "";
    cudaDeviceProp prop{};
    GOOSE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    return prop.name;
}

int compute_capability(int device) {
    if (device < 0 || device >= device_count()) return 0;
    int major = 0, minor = 0;
    GOOSE_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    GOOSE_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    return major * 10 + minor;
}

int multiprocessor_count(int device) {
    if (device < 0 || device >= device_count()) return 0;
    int n = 0;
    GOOSE_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    return n;
}

void* current_stream() {
    if (t_stream_set) return t_stream;
    require_device("cuda::current_stream");
    return default_stream();
}

void set_current_stream(void* stream) {
    t_stream = static_cast<cudaStream_t>(stream);
    t_stream_set = stream != nullptr;
}

SmTarget::SmTarget(int sms) : prev_(t_sm_target) {
    t_sm_target = sms > 0 ? sms : 0;
}
SmTarget::~SmTarget() {
    t_sm_target = prev_;
}
int sm_target() {
    return t_sm_target;
}

namespace {
std::atomic<bool> g_gemm_autotune{false};
}  // namespace
void set_gemm_autotune(bool on) {
    g_gemm_autotune = on;
}
bool gemm_autotune() {
    static const int env = [] {  // -1: unset
        const char* v = std::getenv("GOOSE_GEMM_TUNE");
        if (!v || !*v) return -1;
        const std::string s = v;
        if (s == "0") return 0;
        if (s == "1") return 1;
        fail("GOOSE_GEMM_TUNE='{}': expected 0 or 1", s);
    }();
    return env >= 0 ? env == 1 : g_gemm_autotune.load();
}

size_t gemm_workspace_bytes() {
    return gemm_lt::workspace_bytes();
}

void synchronize() {
    if (!available()) return;
    GOOSE_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(current_stream())));
    GOOSE_CUDA_CHECK(cudaGetLastError());
    check_device_errors();
}

}  // namespace cuda
}  // namespace goose
