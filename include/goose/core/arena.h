// Arena: bump allocation of step-scoped temporaries (kernel scratch, per-step buffers).
// Everything allocated after a mark() is released at once by reset(mark). Tensors handed out
// by the arena do not own memory; reset() asserts that none of them is still alive, so a
// dangling arena tensor is caught instead of silently reading reused memory.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "goose/core/tensor.h"

namespace goose {

class Arena {
public:
    explicit Arena(size_t block_bytes = size_t(16) << 20);
    ~Arena();
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

    void* allocate(size_t nbytes, size_t align = 64);
    Tensor tensor(const Shape& shape, DType dtype = DType::f32);  // uninitialised, contiguous

    struct Mark {
        size_t block;
        size_t used;
    };
    Mark mark() const { return {cur_, used_}; }
    void reset(Mark m);
    void reset() { reset(Mark{0, 0}); }

    size_t bytes_used() const;       // since construction or the last full reset
    size_t bytes_reserved() const;   // capacity of all blocks
    long live_tensors() const { return *live_; }

private:
    struct Block {
        std::unique_ptr<std::byte[], void (*)(std::byte*)> mem;
        size_t size;
    };
    std::vector<Block> blocks_;
    size_t cur_ = 0, used_ = 0, block_bytes_;
    std::shared_ptr<long> live_;
};

// Resets an arena to the mark taken at construction when the scope ends.
class ArenaScope {
public:
    explicit ArenaScope(Arena& a) : a_(a), m_(a.mark()) {}
    ~ArenaScope() { a_.reset(m_); }
    ArenaScope(const ArenaScope&) = delete;
    ArenaScope& operator=(const ArenaScope&) = delete;

private:
    Arena& a_;
    Arena::Mark m_;
};

}  // namespace goose
