// SegmentPool: best-fit carving of a CUDA graph pool's segments, with splitting and merging of
// free ranges (see graph_pool.h).
#include "core/cuda/graph_pool.h"

#include <iterator>

#include "goose/core/error.h"

namespace goose::cuda_detail {

void SegmentPool::insert_free(uintptr_t at, size_t n) {
    free_by_addr_.emplace(at, n);
    free_by_size_.emplace(n, at);
}

void SegmentPool::erase_free(std::map<uintptr_t, size_t>::iterator it) {
    free_by_size_.erase({it->second, it->first});
    free_by_addr_.erase(it);
}

void SegmentPool::add(void* base, size_t size) {
    GOOSE_ASSERT(base != nullptr && size > 0 && size % kAlign == 0, "bad segment of {} bytes",
                 size);
    const auto at = reinterpret_cast<uintptr_t>(base);
    const bool fresh = segments_.emplace(at, SegmentState{size, 0}).second;
    GOOSE_ASSERT(fresh, "a segment added twice");
    insert_free(at, size);
    segment_bytes_ += size;
    free_bytes_ += size;
}

void* SegmentPool::take(size_t n) {
    GOOSE_ASSERT(n > 0 && n % kAlign == 0, "bad request of {} bytes", n);
    auto fit = free_by_size_.lower_bound({n, 0});
    if (fit == free_by_size_.end()) return nullptr;
    const auto [len, at] = *fit;
    erase_free(free_by_addr_.find(at));
    if (len > n) insert_free(at + n, len - n);
    auto seg = std::prev(segments_.upper_bound(at));
    seg->second.taken += n;
    free_bytes_ -= n;
    return reinterpret_cast<void*>(at);
}

std::optional<SegmentPool::Segment> SegmentPool::give(void* p, size_t n) {
    auto at = reinterpret_cast<uintptr_t>(p);
    auto seg = segments_.upper_bound(at);
    GOOSE_ASSERT(seg != segments_.begin(), "giving back a range of no segment");
    --seg;
    const uintptr_t seg_begin = seg->first, seg_end = seg_begin + seg->second.size;
    GOOSE_ASSERT(at + n <= seg_end && seg->second.taken >= n, "giving back a range of no segment");
    seg->second.taken -= n;
    free_bytes_ += n;
    // Merge with the free neighbours inside the segment.
    auto next = free_by_addr_.lower_bound(at);
    GOOSE_ASSERT(next == free_by_addr_.end() || next->first >= at + n, "range given back twice");
    if (next != free_by_addr_.end() && next->first == at + n && next->first < seg_end) {
        n += next->second;
        erase_free(next);
    }
    auto after = free_by_addr_.lower_bound(at);
    if (after != free_by_addr_.begin()) {
        auto prev = std::prev(after);
        GOOSE_ASSERT(prev->first + prev->second <= at, "range given back twice");
        if (prev->first >= seg_begin && prev->first + prev->second == at) {
            at = prev->first;
            n += prev->second;
            erase_free(prev);
        }
    }
    insert_free(at, n);
    if (seg->second.taken > 0) return std::nullopt;
    return Segment{reinterpret_cast<void*>(seg_begin), seg->second.size};
}

void SegmentPool::remove(const Segment& s) {
    const auto at = reinterpret_cast<uintptr_t>(s.base);
    auto seg = segments_.find(at);
    GOOSE_ASSERT(seg != segments_.end() && seg->second.taken == 0 && seg->second.size == s.size,
                 "removing a segment in use");
    auto range = free_by_addr_.find(at);
    GOOSE_ASSERT(range != free_by_addr_.end() && range->second == s.size,
                 "an unused segment is not one free range");
    erase_free(range);
    segments_.erase(seg);
    segment_bytes_ -= s.size;
    free_bytes_ -= s.size;
}

std::vector<SegmentPool::Segment> SegmentPool::remove_unused() {
    std::vector<Segment> unused;
    for (const auto& [at, state] : segments_)
        if (state.taken == 0) unused.push_back({reinterpret_cast<void*>(at), state.size});
    for (const Segment& s : unused) remove(s);
    return unused;
}

size_t SegmentPool::largest_free() const {
    return free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
}

}  // namespace goose::cuda_detail
