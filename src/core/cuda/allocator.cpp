// The caching device allocator: blocks rounded to size classes, kept in free lists when their
// tensor dies and handed out again, so steady-state work makes no cudaMalloc/cudaFree calls.
// Blocks are reused in the order of the current stream (all Goose work runs on it).
//
// While a CUDA graph is captured, allocations come from a pool private to that graph instead.
// The shared cache is emptied when the capture starts (its blocks would sit idle beside the
// graph's); the pool cudaMallocs segments (2 MiB ones shared by requests up to 1 MiB; for a
// larger request that no free range holds, one of the request's size) and carves each request,
// rounded to 512 bytes, out of them by best fit, splitting free ranges and merging neighbours on
// free (SegmentPool, graph_pool.h). A capture is one deterministic sequence, so the segments end
// close to the capture's peak of live bytes, where blocks kept per size class could serve only
// their own class. Every range freed during the capture stays in the pool, so the memory the
// replays write stays reserved for the graph until it is released; blocks allocated before the
// capture and freed inside it are kept whole for the graph too. On release each segment returns
// to the shared cache as one block; one still holding a live tensor does when that tensor dies.
// Stats: in_use counts live tensors (class- or 512-rounded); cached the shared cache plus the free
// bytes of graph segments and kept blocks; graph_cached the latter (a graph's footprint: its live
// tensors plus graph_cached). While work is issued on several streams at once
// (cuda::run_parallel), freed blocks are held back until the streams have joined again, so no
// block changes hands between concurrent streams.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_internal.h"
#include "core/cuda/graph_pool.h"
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

// A graph pool's segments: requests of at most kSmallRequest bytes share kSmallSegment ones (so
// that a small tensor living on after its graph pins little memory); a larger request that no
// free range holds gets a segment of its own size rounded to kSegmentGranule, carved by later
// requests once it is free. (Segments sized to the request fit the captured training steps best:
// on the traces of the L12 D768 step at B16 T512 and B8 T4096 they reserve 0.5% and 0.3% over
// the capture's peak of live bytes, where segments of at least 64-256 MiB leave 1-16% holes.)
constexpr size_t kSmallRequest = kMiB;
constexpr size_t kSmallSegment = 2 * kMiB;
constexpr size_t kSegmentGranule = 2 * kMiB;

size_t round_up(size_t n, size_t to) {
    return (n + to - 1) / to * to;
}

class CachingAllocator final : public Allocator {
  public:
    void* allocate(size_t nbytes) override {
        std::shared_ptr<Pool> pool;
        {
            std::lock_guard<std::mutex> lock(mu_);
            pool = capture_pool_;
            if (pool) {  // while capturing: a range of the graph's segments
                const size_t n = pool_bytes(nbytes);
                if (void* p = pool->part(n).take(n)) {
                    stats_.cached -= n;
                    stats_.graph_cached -= n;
                    take(p, n);
                    owner_[p] = pool;
                    ++stats_.reuses;
                    return p;
                }
            } else {
                // A cached block of the class, or (large sizes) one at most 1/8 larger.
                const size_t cls = size_class(nbytes);
                const size_t limit = cls >= kMiB ? cls + cls / 8 : cls;
                if (void* p = pop(free_, cls, limit)) {
                    take(p, cls_of_free_);
                    ++stats_.reuses;
                    return p;
                }
            }
        }
        if (cuda::device_count() == 0)
            fail("a CUDA tensor was requested but no CUDA device is available ({})",
                 why_no_device());
        if (pool) return allocate_in_new_segment(pool, pool_bytes(nbytes));
        const size_t cls = size_class(nbytes);
        void* p = nullptr;
        cudaError_t e = cudaMalloc(&p, cls);
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            empty_cache();
            e = cudaMalloc(&p, cls);
        }
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            fail_out_of_memory(cls);
        }
        GOOSE_CUDA_CHECK(e);
        std::lock_guard<std::mutex> lock(mu_);
        take(p, cls);
        ++stats_.device_allocs;
        return p;
    }

    void deallocate(void* p, size_t) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (hold_depth_ > 0) {
            held_.push_back(p);
            return;
        }
        release_block(p);
    }

    // Between hold(true) and the matching hold(false), freed blocks stay out of the free lists.
    void hold(bool on) {
        std::lock_guard<std::mutex> lock(mu_);
        if (on) {
            ++hold_depth_;
            return;
        }
        GOOSE_ASSERT(hold_depth_ > 0, "allocator hold released more often than taken");
        if (--hold_depth_ > 0) return;
        for (void* p : held_) release_block(p);
        held_.clear();
    }

    // Allocations go to a new private pool until end_pool(); returns its handle. The shared
    // cache is emptied first (the stream is idle): the graph's segments take its place.
    std::shared_ptr<void> begin_pool() {
        std::lock_guard<std::mutex> lock(mu_);
        GOOSE_ASSERT(!capture_pool_, "a CUDA graph capture is already under way");
        free_shared_cache();
        capture_pool_ = std::make_shared<Pool>();
        return capture_pool_;
    }

    void end_pool() {
        std::lock_guard<std::mutex> lock(mu_);
        capture_pool_.reset();
    }

    // The graph is gone (its work finished): its segments return to the shared cache as whole
    // blocks, those still holding a live tensor when their last such tensor dies.
    void release_pool(const std::shared_ptr<void>& handle) {
        std::lock_guard<std::mutex> lock(mu_);
        auto pool = std::static_pointer_cast<Pool>(handle);
        pool->released = true;
        for (SegmentPool* part : {&pool->small, &pool->large})
            for (const SegmentPool::Segment& s : part->remove_unused()) retire(s);
        for (const SegmentPool::Segment& s : pool->held) retire(s);
        pool->held.clear();
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
        if (capture_pool_) return;
        free_shared_cache();
    }

  private:
    // A freed block back to its graph's segments or to the shared cache.
    void release_block(void* p) {  // mu_ held
        auto it = live_.find(p);
        GOOSE_ASSERT(it != live_.end(), "freeing a device block this allocator does not own");
        const size_t size = it->second;
        live_.erase(it);
        stats_.in_use -= size;
        stats_.cached += size;
        auto o = owner_.find(p);
        if (o != owner_.end()) {  // a range of a graph's segment: stays reserved for its graph
            const std::shared_ptr<Pool> pool = std::move(o->second);
            owner_.erase(o);
            stats_.graph_cached += size;
            SegmentPool& part = pool->part(size);
            const std::optional<SegmentPool::Segment> unused = part.give(p, size);
            if (unused && pool->released) {  // its graph is gone and now so is its last tensor
                part.remove(*unused);
                retire(*unused);
            }
            return;
        }
        if (capture_pool_) {
            // A block allocated before the capture and freed inside it: the captured work may
            // read it, so it is reserved for the graph too (whole, until the graph is released).
            capture_pool_->held.push_back({p, size});
            stats_.graph_cached += size;
            return;
        }
        free_.emplace(size, p);
    }

    // The memory of one graph: ranges of its segments (small requests apart from large ones),
    // and whole blocks it adopted.
    struct Pool {
        SegmentPool small, large;
        std::vector<SegmentPool::Segment> held;  // freed inside the capture, allocated before
        bool released = false;                   // the graph is gone; live tensors remain
        SegmentPool& part(size_t n) { return n <= kSmallRequest ? small : large; }
    };

    static size_t pool_bytes(size_t nbytes) {
        return std::max(SegmentPool::kAlign, round_up(nbytes, SegmentPool::kAlign));
    }

    // n bytes (pool_bytes) from a new segment of the capture's pool.
    void* allocate_in_new_segment(const std::shared_ptr<Pool>& pool, size_t n) {
        const size_t seg = n <= kSmallRequest ? kSmallSegment : round_up(n, kSegmentGranule);
        // The segment is reserved for the graph, so a cudaMalloc is safe here: let it through
        // the capture's checks.
        cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
        GOOSE_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
        void* base = nullptr;
        const cudaError_t e = cudaMalloc(&base, seg);
        GOOSE_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            fail_out_of_memory(seg);
        }
        GOOSE_CUDA_CHECK(e);
        std::lock_guard<std::mutex> lock(mu_);
        SegmentPool& part = pool->part(n);
        part.add(base, seg);
        stats_.cached += seg;
        stats_.graph_cached += seg;
        ++stats_.device_allocs;
        void* p = part.take(n);
        GOOSE_ASSERT(p != nullptr, "a new segment of {} bytes cannot hold {}", seg, n);
        stats_.cached -= n;
        stats_.graph_cached -= n;
        take(p, n);
        owner_[p] = pool;
        return p;
    }

    [[noreturn]] void fail_out_of_memory(size_t bytes) {
        const cuda::MemoryStats s = stats();
        throw OutOfMemory(fmt::format(
            "out of memory on cuda:0: could not allocate {:.1f} MiB ({:.1f} MiB in use by "
            "tensors, peak {:.1f} MiB)",
            double(bytes) / kMiB, double(s.in_use) / kMiB, double(s.peak) / kMiB));
    }

    // A whole segment or block no graph needs any more: to the capture under way if any (its
    // work may have used it), else to the shared cache.
    void retire(const SegmentPool::Segment& s) {  // mu_ held
        if (capture_pool_) {
            capture_pool_->held.push_back(s);
            return;
        }
        free_.emplace(s.size, s.base);
        stats_.graph_cached -= s.size;
    }

    void free_shared_cache() {  // mu_ held, not capturing
        if (free_.empty()) return;
        // Blocks may still be read by queued kernels: let them finish first.
        GOOSE_CUDA_CHECK(cudaDeviceSynchronize());
        for (auto& [size, p] : free_) {
            GOOSE_CUDA_CHECK(cudaFree(p));
            stats_.cached -= size;
        }
        free_.clear();
    }

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
    std::multimap<size_t, void*> free_;       // the shared cache: free blocks by size
    std::unordered_map<void*, size_t> live_;  // sizes of live allocations
    std::unordered_map<void*, std::shared_ptr<Pool>> owner_;  // live ranges of graph segments
    std::shared_ptr<Pool> capture_pool_;                       // set while capturing
    size_t cls_of_free_ = 0;
    int hold_depth_ = 0;       // > 0 while several streams run at once
    std::vector<void*> held_;  // blocks freed meanwhile
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
void hold_frees(bool on) {
    caching_allocator().hold(on);
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
