// SegmentPool: best-fit carving of device memory segments for a CUDA graph's private pool.
//
// The caching allocator (allocator.cpp) serves a capture from segments: large device blocks it
// adds here. A request takes the smallest free range that holds it (the lowest address among
// equal sizes) and is cut from the range's start, the rest staying free; a range given back is
// merged with its free neighbours of the same segment, so the free space of a segment is always
// a set of maximal ranges. A capture is one deterministic sequence of allocations and frees, so
// the pool's footprint follows the capture's peak of live bytes closely instead of keeping one
// set of blocks per size class. This class is host bookkeeping only: it never touches the device
// and never reads or writes the memory it hands out.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace goose::cuda_detail {

class SegmentPool {
  public:
    // Every range handed out starts at a multiple of this from its segment's base (cudaMalloc
    // bases are at least 256-byte aligned; cuBLASLt and the vectorised kernels want 256 B).
    static constexpr size_t kAlign = 512;

    struct Segment {
        void* base = nullptr;
        size_t size = 0;
    };

    // Adds [base, base + size) as a segment, all free (size a multiple of kAlign).
    void add(void* base, size_t size);
    // The start of n free bytes (n > 0, a multiple of kAlign) by best fit, or null if no free
    // range holds n.
    void* take(size_t n);
    // Gives back n bytes at p (a take(n) result); returns p's segment when nothing of it is
    // taken any more.
    std::optional<Segment> give(void* p, size_t n);
    // Removes the segment at base (nothing of it may be taken).
    void remove(const Segment& s);
    // Removes and returns every segment of which nothing is taken.
    std::vector<Segment> remove_unused();

    size_t segment_bytes() const { return segment_bytes_; }
    size_t free_bytes() const { return free_bytes_; }
    size_t largest_free() const;
    bool empty() const { return segments_.empty(); }

  private:
    struct SegmentState {
        size_t size = 0;
        size_t taken = 0;  // bytes handed out and not given back
    };
    void insert_free(uintptr_t at, size_t n);
    void erase_free(std::map<uintptr_t, size_t>::iterator it);

    std::map<uintptr_t, SegmentState> segments_;        // by base address
    std::map<uintptr_t, size_t> free_by_addr_;          // free range start -> length
    std::set<std::pair<size_t, uintptr_t>> free_by_size_;  // (length, start): best fit
    size_t segment_bytes_ = 0, free_bytes_ = 0;
};

}  // namespace goose::cuda_detail
