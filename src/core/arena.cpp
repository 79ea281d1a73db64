// Arena: blocks of memory handed out by bumping a pointer; reset to a mark.
#include "goose/core/arena.h"

#include <cstdlib>

namespace goose {

namespace {
void free_block(std::byte* p) { std::free(p); }
size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }
}  // namespace

Arena::Arena(size_t block_bytes) : block_bytes_(block_bytes), live_(std::make_shared<long>(0)) {}

Arena::~Arena() {
    GOOSE_ASSERT(*live_ == 0, "arena destroyed while {} of its tensors are alive", *live_);
}

void* Arena::allocate(size_t nbytes, size_t align) {
    GOOSE_ASSERT(align && (align & (align - 1)) == 0 && align <= 4096);
    while (true) {
        if (cur_ < blocks_.size()) {
            const size_t start = align_up(used_, align);
            if (start + nbytes <= blocks_[cur_].size) {
                used_ = start + nbytes;
                return blocks_[cur_].mem.get() + start;
            }
            ++cur_;
            used_ = 0;
            continue;
        }
        const size_t size = align_up(std::max(block_bytes_, nbytes + align), 4096);
        auto* p = static_cast<std::byte*>(std::aligned_alloc(4096, size));
        if (!p)
            throw OutOfMemory(
                fmt::format("out of memory: arena could not allocate {} bytes", size));
        blocks_.push_back(Block{{p, free_block}, size});
        cur_ = blocks_.size() - 1;
        used_ = 0;
    }
}

Tensor Arena::tensor(const Shape& shape, DType dtype) {
    const size_t nbytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
    void* p = allocate(nbytes);
    ++*live_;
    std::weak_ptr<long> live = live_;
    auto st = Storage::wrap(p, nbytes, Device::cpu(), [live](void*) {
        if (auto l = live.lock()) --*l;
    });
    return Tensor(std::move(st), shape, contiguous_strides(shape), 0, dtype);
}

void Arena::reset(Mark m) {
    GOOSE_ASSERT(*live_ == 0, "arena reset while {} of its tensors are alive", *live_);
    cur_ = m.block;
    used_ = m.used;
}

size_t Arena::bytes_used() const {
    size_t n = used_;
    for (size_t i = 0; i < cur_ && i < blocks_.size(); ++i) n += blocks_[i].size;
    return n;
}

size_t Arena::bytes_reserved() const {
    size_t n = 0;
    for (const auto& b : blocks_) n += b.size;
    return n;
}

}  // namespace goose
