// Storage lifetime, the CPU caching pool, and the per-device allocator registry.
#include "goose/core/storage.h"

#include <cstdlib>
#include <new>

#include "goose/core/error.h"
#include "goose/core/pool.h"
#ifdef GOOSE_CUDA
#include "core/cuda/cuda_internal.h"
#endif

namespace goose {

namespace {
Allocator* g_cuda_allocator = nullptr;
}

void register_allocator(DeviceKind kind, Allocator* a) {
    GOOSE_ASSERT(kind == DeviceKind::cuda, "the CPU allocator is built in");
    g_cuda_allocator = a;
}

Allocator& allocator_for(Device d) {
    if (d.is_cpu()) return cpu_pool();
#ifdef GOOSE_CUDA
    if (d.index != 0) fail("device {} requested, but only cuda:0 is supported", d.str());
    if (!g_cuda_allocator) return cuda_detail::device_allocator();  // built in, lazily
#endif
    if (!g_cuda_allocator) {
        if (!cuda_compiled())
            fail("device {} requested but this build has no CUDA backend (rebuild with "
                 "`make build CUDA=1`)", d.str());
        fail("device {} requested but no CUDA device is available", d.str());
    }
    return *g_cuda_allocator;
}

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device d) {
    Allocator& a = allocator_for(d);
    std::shared_ptr<Storage> s(new Storage());
    s->data_ = nbytes ? a.allocate(nbytes) : nullptr;
    s->nbytes_ = nbytes;
    s->device_ = d;
    s->alloc_ = &a;
    return s;
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, Device d,
                                       std::function<void(void*)> release) {
    std::shared_ptr<Storage> s(new Storage());
    s->data_ = data;
    s->nbytes_ = nbytes;
    s->device_ = d;
    s->release_ = std::move(release);
    return s;
}

Storage::~Storage() {
    if (alloc_ && data_) alloc_->deallocate(data_, nbytes_);
    if (release_) release_(data_);
}

// ---- CpuPool ---------------------------------------------------------------------------------

CpuPool::CpuPool(size_t max_cached_bytes) : max_cached_(max_cached_bytes) {}

CpuPool::~CpuPool() { release_cached(); }

size_t CpuPool::size_class(size_t n) {
    // Classes 64, 128, 192, 256, 384, 512, ...: all multiples of 64 (aligned_alloc needs it).
    if (n <= 64) return 64;
    size_t p = 64;
    while (p < n) {
        if (p >= 128 && p + p / 2 >= n) return p + p / 2;
        p *= 2;
    }
    return p;
}

void* CpuPool::allocate(size_t nbytes) {
    const size_t cls = size_class(nbytes);
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = free_.find(cls);
        if (it != free_.end() && !it->second.empty()) {
            void* p = it->second.back();
            it->second.pop_back();
            stats_.bytes_cached -= cls;
            stats_.bytes_in_use += cls;
            stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
            ++stats_.reuses;
            return p;
        }
    }
    void* p = std::aligned_alloc(64, cls);
    if (!p) {
        release_cached();
        p = std::aligned_alloc(64, cls);
    }
    if (!p)
        throw OutOfMemory(
            fmt::format("out of memory: could not allocate {} bytes on the CPU", cls));
    std::lock_guard<std::mutex> lock(mu_);
    stats_.bytes_in_use += cls;
    stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
    ++stats_.system_allocs;
    return p;
}

void CpuPool::deallocate(void* p, size_t nbytes) {
    const size_t cls = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.bytes_in_use -= cls;
    if (stats_.bytes_cached + cls > max_cached_) {
        std::free(p);
        return;
    }
    free_[cls].push_back(p);
    stats_.bytes_cached += cls;
}

PoolStats CpuPool::stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
}

void CpuPool::release_cached() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [cls, v] : free_)
        for (void* p : v) std::free(p);
    free_.clear();
    stats_.bytes_cached = 0;
}

CpuPool& cpu_pool() {
    static CpuPool* pool = new CpuPool();  // never destroyed: storages may outlive statics
    return *pool;
}

}  // namespace goose
