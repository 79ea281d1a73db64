// A byte trie laid out flat as a double array: the child of state s on byte c is t = base[s] + c
// when check[t] == s. Greedy longest match walks it with no allocation and one cell per byte.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace goose::text {

class ByteTrie {
  public:
    // keys: (bytes, id > 0) with distinct non-empty byte strings.
    explicit ByteTrie(std::vector<std::pair<std::string, int32_t>> keys);

    // The id and length of the longest key that is a prefix of s[pos...], or {0, 0} if none.
    std::pair<int32_t, size_t> longest_prefix(std::string_view s, size_t pos) const {
        const auto* p = reinterpret_cast<const unsigned char*>(s.data());
        const Cell* cells = cells_.data();
        int32_t state = 0, best = 0;
        size_t best_end = pos;
        for (size_t q = pos; q < s.size();) {
            const int32_t next = cells[state].base + p[q];
            if (cells[next].check != state) break;
            state = next;
            ++q;
            if (cells[state].token != 0) best = cells[state].token, best_end = q;
        }
        return {best, best_end - pos};
    }

    size_t cells() const { return cells_.size(); }

  private:
    struct Cell {
        int32_t base = 0;    // children of this state are at base + byte
        int32_t check = -1;  // the parent state; -1: free
        int32_t token = 0;   // the id of the key ending here; 0: none
    };
    using Keys = std::vector<std::pair<std::string, int32_t>>;
    void insert(int32_t state, const Keys& keys, size_t lo, size_t hi, size_t depth);
    int32_t find_base(const unsigned char* labels, size_t n);

    std::vector<Cell> cells_;
    size_t first_free_ = 1;
};

}  // namespace goose::text
