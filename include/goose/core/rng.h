// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11, "Parallel random numbers:
// as easy as 1, 2, 3"). A stream is (key, counter); the key comes from a seed and a stream name,
// so `Rng(seed, "init")` and `Rng(seed, "data")` never overlap and each is reproducible alone.
// Output i of a stream depends only on (key, i): filling a tensor gives the same values whatever
// the number of threads.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace goose {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// One Philox4x32-10 block: 4 random 32-bit words for (counter, key).
PhiloxCounter philox4x32_10(PhiloxCounter ctr, PhiloxKey key);

class Rng {
public:
    explicit Rng(uint64_t seed = 0, std::string_view stream = "default");

    // A child stream whose key mixes this key with `name` (same parent + name -> same child).
    Rng fork(std::string_view name) const;

    uint32_t next_u32();
    uint64_t next_u64();
    double uniform();                    // [0, 1) with 53 random bits
    double normal();                     // N(0, 1), Box-Muller on two uniforms
    int64_t randint(int64_t lo, int64_t hi);  // [lo, hi), unbiased

    // Bulk fills. Element i uses draws at counter position (position() + f(i)) only, so the
    // result is independent of how the work is split across threads; the stream then advances
    // past everything used.
    void fill_uniform(std::span<double> out, double lo = 0, double hi = 1);
    void fill_normal(std::span<double> out, double mean = 0, double std = 1);

    uint64_t position() const { return block_ * 4 + lane_; }  // 32-bit words drawn so far
    const PhiloxKey& key() const { return key_; }
    void seek(uint64_t words);  // jump to a word position of this stream

private:
    PhiloxKey key_{};
    uint64_t block_ = 0;  // counter of the next block to generate
    int lane_ = 4;        // next word in buf_ (4 = empty)
    PhiloxCounter buf_{};
};

}  // namespace goose
