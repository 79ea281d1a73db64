// Double-array trie construction from sorted keys (each state placed once, children together).
#include "text/byte_trie.h"

#include <algorithm>

namespace goose::text {

ByteTrie::ByteTrie(Keys keys) {
    std::sort(keys.begin(), keys.end());
    cells_.resize(512);
    cells_[0].check = -2;  // the root: never free
    insert(0, keys, 0, keys.size(), 0);
    cells_.resize(cells_.size() + 256);  // base + any byte stays inside the array
}

// Lowest base at which every child slot base + label is free (and not the root's slot 0).
int32_t ByteTrie::find_base(const unsigned char* labels, size_t n) {
    while (first_free_ < cells_.size() && cells_[first_free_].check != -1) ++first_free_;
    for (size_t slot = std::max<size_t>(first_free_, labels[0] + 1);; ++slot) {
        if (slot + 256 >= cells_.size()) cells_.resize(std::max(cells_.size() * 2, slot + 512));
        if (cells_[slot].check != -1) continue;
        const size_t base = slot - labels[0];
        bool fits = true;
        for (size_t k = 1; k < n && fits; ++k) fits = cells_[base + labels[k]].check == -1;
        if (fits) return static_cast<int32_t>(base);
    }
}

// keys[lo, hi) share their first `depth` bytes, which lead to `state`.
void ByteTrie::insert(int32_t state, const Keys& keys, size_t lo, size_t hi, size_t depth) {
    if (lo < hi && keys[lo].first.size() == depth) cells_[state].token = keys[lo++].second;
    if (lo == hi) return;
    unsigned char labels[256] = {};
    size_t starts[257], n = 0;
    for (size_t i = lo; i < hi; ++i) {
        const auto c = static_cast<unsigned char>(keys[i].first[depth]);
        if (n == 0 || labels[n - 1] != c) labels[n] = c, starts[n++] = i;
    }
    starts[n] = hi;
    const int32_t base = find_base(labels, n);
    cells_[state].base = base;
    for (size_t k = 0; k < n; ++k) cells_[base + labels[k]].check = state;
    for (size_t k = 0; k < n; ++k)
        insert(base + labels[k], keys, starts[k], starts[k + 1], depth + 1);
}

}  // namespace goose::text
