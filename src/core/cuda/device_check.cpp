// Device-side index checks: a registry of check sites (op, noun, shape, bound), one record in
// device memory that the check kernel fills, and check_device_errors(), which reads it back
// (only when a check may have run since the last read) and turns it into a goose::Error.
#include "core/cuda/device_check.h"

#include <cuda_runtime_api.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/cuda/device_check_kernel.h"
#include "goose/core/cuda.h"
#include "goose/core/error.h"

namespace goose::cuda_detail {

namespace {

struct Site {
    std::string op, noun, desc, suffix;
    Shape shape;
    int64_t hi = 0;
};

struct Checks {
    std::mutex mu;
    std::vector<Site> sites;           // site k + 1 is sites[k]
    DeviceCheckRecord* dev = nullptr;  // device memory
    DeviceCheckRecord* host = nullptr; // pinned, the read-back
    std::atomic<bool> pending{false};
};

Checks& checks() {
    static Checks* c = new Checks();  // never destroyed: used until exit
    return *c;
}

void ensure_record(Checks& c) {  // mu held
    if (c.dev) return;
    GOOSE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&c.dev), sizeof(DeviceCheckRecord)));
    GOOSE_CUDA_CHECK(cudaMemset(c.dev, 0, sizeof(DeviceCheckRecord)));
    GOOSE_CUDA_CHECK(
        cudaMallocHost(reinterpret_cast<void**>(&c.host), sizeof(DeviceCheckRecord)));
    GOOSE_CUDA_CHECK(cudaDeviceSynchronize());
}

std::string position_of(int64_t k, const Shape& s) {
    std::vector<int64_t> idx(static_cast<size_t>(s.ndim()));
    for (int d = s.ndim() - 1; d >= 0; --d) {
        idx[static_cast<size_t>(d)] = s[d] > 0 ? k % s[d] : 0;
        k = s[d] > 0 ? k / s[d] : 0;
    }
    std::string p = "[";
    for (size_t d = 0; d < idx.size(); ++d) p += (d ? ", " : "") + std::to_string(idx[d]);
    return p + "]";
}

}  // namespace

void prepare_device_checks() {
    Checks& c = checks();
    std::lock_guard<std::mutex> lock(c.mu);
    ensure_record(c);
}

void device_checks_pending() {
    checks().pending = true;
}

void check_indices_on_device(const Tensor& idx, int64_t hi, std::optional<int64_t> ignore,
                             const std::string& op, const std::string& noun,
                             const std::string& suffix) {
    if (idx.numel() == 0) return;
    const Tensor packed = idx.contiguous();
    Checks& c = checks();
    int32_t site = 0;
    {
        std::lock_guard<std::mutex> lock(c.mu);
        if (!c.dev) {
            if (cuda::capturing())
                fail("{}: the device-side check was not prepared before the CUDA graph capture",
                     op);
            ensure_record(c);
        }
        c.sites.push_back({op, noun, idx.desc(), suffix, idx.shape(), hi});
        site = static_cast<int32_t>(c.sites.size());
    }
    if (!launch_index_check(packed.raw_data(), packed.dtype() == DType::i64, packed.numel(), hi,
                            ignore.has_value(), ignore.value_or(0), site, c.dev,
                            cuda::current_stream()))
        fail("{}: the device-side index check could not be launched", op);
    c.pending = true;
}

}  // namespace goose::cuda_detail

namespace goose::cuda {

void check_device_errors() {
    using namespace cuda_detail;
    Checks& c = checks();
    if (!c.pending || capturing()) return;
    auto st = static_cast<cudaStream_t>(current_stream());
    DeviceCheckRecord r;
    Site s;
    {
        std::lock_guard<std::mutex> lock(c.mu);
        GOOSE_CUDA_CHECK(cudaMemcpyAsync(c.host, c.dev, sizeof(DeviceCheckRecord),
                                         cudaMemcpyDeviceToHost, st));
        GOOSE_CUDA_CHECK(cudaStreamSynchronize(st));
        r = *c.host;
        c.pending = false;
        if (r.site == 0) return;
        GOOSE_CUDA_CHECK(cudaMemsetAsync(c.dev, 0, sizeof(DeviceCheckRecord), st));
        GOOSE_CUDA_CHECK(cudaStreamSynchronize(st));
        s = c.sites.at(static_cast<size_t>(r.site - 1));
    }
    fail("{}: {} {} at position {} of {} is outside [0, {}){} (found by a device-side check)",
         s.op, s.noun, r.value, position_of(r.position, s.shape), s.desc, s.hi, s.suffix);
}

}  // namespace goose::cuda
