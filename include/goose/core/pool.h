// Caching pool allocator for CPU memory: freed blocks are kept in size classes and reused, so a
// training step that allocates the same temporaries every step stops calling malloc after the
// first one. Size classes are 64 and then 2^k and 1.5*2^k bytes from 128 (at most 1/3 waste). Thread-safe.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

#include "goose/core/storage.h"

namespace goose {

struct PoolStats {
    size_t bytes_in_use = 0;     // handed out and not yet returned
    size_t bytes_cached = 0;     // returned and kept for reuse
    size_t peak_bytes_in_use = 0;
    size_t system_allocs = 0;    // calls that reached the system allocator
    size_t reuses = 0;           // requests served from the cache
};

class CpuPool final : public Allocator {
public:
    explicit CpuPool(size_t max_cached_bytes = size_t(1) << 31);
    ~CpuPool() override;
    void* allocate(size_t nbytes) override;
    void deallocate(void* p, size_t nbytes) override;
    Device device() const override { return Device::cpu(); }

    PoolStats stats() const;
    void release_cached();  // returns every cached block to the system
    static size_t size_class(size_t nbytes);

private:
    mutable std::mutex mu_;
    std::map<size_t, std::vector<void*>> free_;
    size_t max_cached_;
    PoolStats stats_;
};

CpuPool& cpu_pool();

}  // namespace goose
