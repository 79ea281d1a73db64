// Philox4x32-10 and the named-stream Rng built on it.
#include "goose/core/rng.h"

#include <cmath>
#include <numbers>

#include "goose/core/error.h"

namespace goose {

namespace {
constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;  // Philox multipliers
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // key schedule (golden ratio, sqrt 3)

uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t fnv1a(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

PhiloxKey key_from(uint64_t a, uint64_t b) {
    const uint64_t k = splitmix64(a ^ splitmix64(b));
    return {static_cast<uint32_t>(k), static_cast<uint32_t>(k >> 32)};
}

double u32_pair_to_unit(uint32_t hi, uint32_t lo) {
    const uint64_t bits = (static_cast<uint64_t>(hi) << 21) ^ (lo >> 11);  // 53 bits
    return static_cast<double>(bits & ((uint64_t(1) << 53) - 1)) * 0x1.0p-53;
}

PhiloxCounter block_at(const PhiloxKey& key, uint64_t block) {
    return philox4x32_10({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0, 0},
                         key);
}
}  // namespace

PhiloxCounter philox4x32_10(PhiloxCounter c, PhiloxKey k) {
    for (int round = 0; round < 10; ++round) {
        const uint64_t p0 = static_cast<uint64_t>(kMul0) * c[0];
        const uint64_t p1 = static_cast<uint64_t>(kMul1) * c[2];
        c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
             static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
        k[0] += kWeyl0;
        k[1] += kWeyl1;
    }
    return c;
}

Rng::Rng(uint64_t seed, std::string_view stream) : key_(key_from(seed, fnv1a(stream))) {}

Rng Rng::fork(std::string_view name) const {
    Rng r;
    const uint64_t parent = (static_cast<uint64_t>(key_[1]) << 32) | key_[0];
    r.key_ = key_from(parent, fnv1a(name) ^ 0x5bd1e995ull);
    return r;
}

void Rng::seek(uint64_t words) {
    block_ = words / 4;
    lane_ = 4;
    const int skip = static_cast<int>(words % 4);
    if (skip) {
        buf_ = block_at(key_, block_++);
        lane_ = skip;
    }
}

uint32_t Rng::next_u32() {
    if (lane_ == 4) {
        buf_ = block_at(key_, block_++);
        lane_ = 0;
    }
    return buf_[static_cast<size_t>(lane_++)];
}

uint64_t Rng::next_u64() {
    const uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
}

double Rng::uniform() {
    const uint32_t hi = next_u32();
    return u32_pair_to_unit(hi, next_u32());
}

double Rng::normal() {
    double u1 = uniform();
    const double u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

int64_t Rng::randint(int64_t lo, int64_t hi) {
    if (hi <= lo) fail("randint: empty range [{}, {})", lo, hi);
    const uint64_t range = static_cast<uint64_t>(hi - lo);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t x;
    do x = next_u64();
    while (x >= limit);
    return lo + static_cast<int64_t>(x % range);
}

// Element i of a bulk fill uses the 4 words of block (start + i): two 53-bit uniforms.
void Rng::fill_uniform(std::span<double> out, double lo, double hi) {
    if (lane_ != 4) lane_ = 4;  // bulk fills start on a block boundary
    const uint64_t start = block_;
    const int64_t n = static_cast<int64_t>(out.size());
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
        const PhiloxCounter b = block_at(key_, start + static_cast<uint64_t>(i));
        out[static_cast<size_t>(i)] = lo + (hi - lo) * u32_pair_to_unit(b[0], b[1]);
    }
    block_ = start + static_cast<uint64_t>(n);
}

void Rng::fill_normal(std::span<double> out, double mean, double std) {
    if (lane_ != 4) lane_ = 4;
    const uint64_t start = block_;
    const int64_t n = static_cast<int64_t>(out.size());
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
        const PhiloxCounter b = block_at(key_, start + static_cast<uint64_t>(i));
        double u1 = u32_pair_to_unit(b[0], b[1]);
        const double u2 = u32_pair_to_unit(b[2], b[3]);
        if (u1 < 1e-300) u1 = 1e-300;
        out[static_cast<size_t>(i)] =
            mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    }
    block_ = start + static_cast<uint64_t>(n);
}

}  // namespace goose
