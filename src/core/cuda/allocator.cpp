// The caching device allocator: blocks rounded to size classes, kept in free lists when their
// tensor dies and handed out again, so steady-state work makes no cudaMalloc/cudaFree calls.
// Blocks are reused in the order of the current stream (all Goose work runs on it). While a CUDA
// graph is captured, allocations come from (and frees go back to) a pool private to that graph,
// so the blocks its replays write stay reserved for it until the graph is released.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <memory>
#include <unordered_map>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_internal.h"
#include "goose/core/cuda.h"
#include "goose/core/error.h"

namespace goose {

namespace cuda_detail {
const std::string& why_no_device();

namespace {

constexpr size_t kMiB = size_t(1) << 20;

// Classes 512, 768, 1024, 1536, ... below 1 MiB; whole MiB above.
size_t size_class(size_t n) {
    if (n <= 512) return 512;
    if (n >= kMiB) return (n + kMiB - 1) / kMiB * kMiB;
    size_t p = 512;
    while (p < n) {
        if (p + p / 2 >= n) return p + p / 2;
        p *= 2;
    }
    return p;
}

class CachingAllocator final : public Allocator {
  public:
    void* allocate(size_t nbytes) override {
        const size_t cls = size_class(nbytes);
        // A cached block of the class, or (large sizes) one at most 1/8 larger.
        const size_t limit = cls >= kMiB ? cls + cls / 8 : cls;
        std::shared_ptr<Pool> pool;
        {
            std::lock_guard<std::mutex> lock(mu_);
            pool = capture_pool_;
            // While capturing: the graph's own freed blocks first, then the shared cache (the
            // block then belongs to the graph).
            if (pool) {
                if (void* p = pop(pool->free, cls, limit)) {
                    stats_.graph_cached -= cls_of_free_;
                    take(p, cls_of_free_);
                    ++stats_.reuses;
                    return p;
                }
            }
            if (void* p = pop(free_, cls, limit)) {
                take(p, cls_of_free_);
                if (pool) owner_[p] = pool;
                ++stats_.reuses;
                return p;
            }
        }
        if (cuda::device_count() == 0)
            fail("a CUDA tensor was requested but no CUDA device is available ({})",
                 why_no_device());
        void* p = nullptr;
        cudaError_t e;
        if (pool) {
            // The block is reserved for the graph, so a cudaMalloc is safe here: let it through
            // the capture's checks.
            cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
            GOOSE_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
            e = cudaMalloc(&p, cls);
            GOOSE_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
        } else {
            e = cudaMalloc(&p, cls);
            if (e == cudaErrorMemoryAllocation) {
                cudaGetLastError();
                empty_cache();
                e = cudaMalloc(&p, cls);
            }
        }
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            const cuda::MemoryStats s = stats();
            fail(
                "out of memory on cuda:0: could not allocate {:.1f} MiB ({:.1f} MiB in use by "
                "tensors, peak {:.1f} MiB)",
                double(cls) / kMiB, double(s.in_use) / kMiB, double(s.peak) / kMiB);
        }
        GOOSE_CUDA_CHECK(e);
        std::lock_guard<std::mutex> lock(mu_);
        take(p, cls);
        if (pool) owner_[p] = pool;
        ++stats_.device_allocs;
        return p;
    }

    void deallocate(void* p, size_t) override {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = live_.find(p);
        GOOSE_ASSERT(it != live_.end(), "freeing a device block this allocator does not own");
        const size_t size = it->second;
        live_.erase(it);
        stats_.in_use -= size;
        stats_.cached += size;
        auto o = owner_.find(p);
        if (o != owner_.end()) {
            o->second->free.emplace(size, p);  // stays reserved for its graph
            stats_.graph_cached += size;
            return;
        }
        free_.emplace(size, p);
    }

    // Allocations go to a new private pool until end_pool(); returns its handle.
    std::shared_ptr<void> begin_pool() {
        std::lock_guard<std::mutex> lock(mu_);
        GOOSE_ASSERT(!capture_pool_, "a CUDA graph capture is already under way");
        capture_pool_ = std::make_shared<Pool>();
        return capture_pool_;
    }

    void end_pool() {
        std::lock_guard<std::mutex> lock(mu_);
        capture_pool_.reset();
    }

    // The graph is gone (its work finished): its free blocks return to the shared cache, and
    // its live ones will when their tensors die.
    void release_pool(const std::shared_ptr<void>& handle) {
        std::lock_guard<std::mutex> lock(mu_);
        auto pool = std::static_pointer_cast<Pool>(handle);
        for (auto it = owner_.begin(); it != owner_.end();)
            it = it->second == pool ? owner_.erase(it) : std::next(it);
        for (auto& [size, p] : pool->free) {
            free_.emplace(size, p);
            stats_.graph_cached -= size;
        }
        pool->free.clear();
    }

    Device device() const override { return Device::cuda(0); }

    cuda::MemoryStats stats() const {
        std::lock_guard<std::mutex> lock(mu_);
        return stats_;
    }

    void reset_peak() {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.peak = stats_.in_use;
    }

    void empty_cache() {
        std::lock_guard<std::mutex> lock(mu_);
        if (free_.empty() || capture_pool_) return;
        // Blocks may still be read by queued kernels: let them finish first.
        GOOSE_CUDA_CHECK(cudaDeviceSynchronize());
        for (auto& [size, p] : free_) GOOSE_CUDA_CHECK(cudaFree(p));
        free_.clear();
        stats_.cached = 0;
    }

  private:
    struct Pool {
        std::multimap<size_t, void*> free;  // the graph's blocks not held by a tensor
    };

    // A block of size in [cls, limit] taken from `from` (its size in cls_of_free_), or null.
    void* pop(std::multimap<size_t, void*>& from, size_t cls, size_t limit) {  // mu_ held
        auto it = from.lower_bound(cls);
        if (it == from.end() || it->first > limit) return nullptr;
        cls_of_free_ = it->first;
        void* p = it->second;
        from.erase(it);
        stats_.cached -= cls_of_free_;
        return p;
    }

    void take(void* p, size_t size) {  // mu_ held
        live_.emplace(p, size);
        stats_.in_use += size;
        stats_.peak = std::max(stats_.peak, stats_.in_use);
    }

    mutable std::mutex mu_;
    std::multimap<size_t, void*> free_;       // cached blocks by size
    std::unordered_map<void*, size_t> live_;  // block sizes of live allocations
    std::unordered_map<void*, std::shared_ptr<Pool>> owner_;  // blocks reserved for a graph
    std::shared_ptr<Pool> capture_pool_;                       // set while capturing
    size_t cls_of_free_ = 0;
    cuda::MemoryStats stats_;
};

CachingAllocator& caching_allocator() {
    static CachingAllocator* a =
        new CachingAllocator();  // never destroyed: storages may outlive statics
    return *a;
}

}  // namespace

Allocator& device_allocator() {
    return caching_allocator();
}

std::shared_ptr<void> begin_graph_pool() {
    return caching_allocator().begin_pool();
}
void end_graph_pool() {
    caching_allocator().end_pool();
}
void release_graph_pool(const std::shared_ptr<void>& pool) {
    caching_allocator().release_pool(pool);
}

}  // namespace cuda_detail

namespace cuda {

MemoryStats memory_stats() {
    return cuda_detail::caching_allocator().stats();
}
size_t memory_in_use() {
    return memory_stats().in_use;
}
size_t peak_memory() {
    return memory_stats().peak;
}
void reset_peak_memory() {
    cuda_detail::caching_allocator().reset_peak();
}
void empty_cache() {
    cuda_detail::caching_allocator().empty_cache();
}

}  // namespace cuda
}  // namespace goose
