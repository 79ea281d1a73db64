// Reference-counted storage: a block of bytes on one device. Tensors share it through
// std::shared_ptr<Storage>; the block goes back to its allocator when the last view dies.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "goose/core/device.h"

namespace goose {

// A device allocator. The CPU one is a caching pool (see pool.h); the CUDA one plugs in here.
class Allocator {
public:
    virtual ~Allocator() = default;
    virtual void* allocate(size_t nbytes) = 0;
    virtual void deallocate(void* p, size_t nbytes) = 0;
    virtual Device device() const = 0;
};

// The allocator new storages on `d` come from. Throws goose::Error for CUDA in a CPU-only build.
Allocator& allocator_for(Device d);
// Registered by a backend at start-up (the CUDA backend calls this; CPU is built in).
void register_allocator(DeviceKind kind, Allocator* a);

class Storage {
public:
    // nbytes from `alloc` (freed back to it on destruction). 64-byte aligned on CPU.
    static std::shared_ptr<Storage> allocate(size_t nbytes, Device d);
    // Wraps memory owned elsewhere (an mmap'd file, an arena block); `release` runs on destruction.
    static std::shared_ptr<Storage> wrap(void* data, size_t nbytes, Device d,
                                         std::function<void(void*)> release);

    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    ~Storage();

    void* data() const { return data_; }
    size_t nbytes() const { return nbytes_; }
    Device device() const { return device_; }

private:
    Storage() = default;
    void* data_ = nullptr;
    size_t nbytes_ = 0;
    Device device_{};
    Allocator* alloc_ = nullptr;
    std::function<void(void*)> release_;
};

}  // namespace goose
