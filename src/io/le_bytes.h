// Little-endian integers: appending to a byte string, and bounds-checked reads from a buffer
// (a read past the end throws goose::Error "<who> '<path>': <what>: truncated ...").
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

#include "goose/core/error.h"

namespace goose::io {

inline void put_u16(std::string& s, uint16_t v) {
    const char b[2] = {char(v & 0xff), char(v >> 8)};
    s.append(b, 2);
}
inline void put_u32(std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
}
inline void put_u64(std::string& s, uint64_t v) {
    for (int i = 0; i < 8; ++i) s.push_back(char((v >> (8 * i)) & 0xffu));
}

// A read-only byte range of a named file; every read checks bounds.
struct ByteView {
    const uint8_t* p = nullptr;
    uint64_t n = 0;
    const char* who = "";
    const std::string* path = nullptr;

    bool has(uint64_t off, uint64_t len) const { return off <= n && len <= n - off; }
    void need(uint64_t off, uint64_t len, const char* what) const {
        if (!has(off, len))
            fail("{} '{}': {}: needs bytes [{}, {}) but the file has {} bytes (truncated or "
                 "corrupt)", who, *path, what, off, off + len, n);
    }
    uint16_t u16(uint64_t off, const char* what) const {
        need(off, 2, what);
        return uint16_t(p[off] | (p[off + 1] << 8));
    }
    uint32_t u32(uint64_t off, const char* what) const {
        need(off, 4, what);
        uint32_t v = 0;
        for (int i = 3; i >= 0; --i) v = (v << 8) | p[off + uint64_t(i)];
        return v;
    }
    uint64_t u64(uint64_t off, const char* what) const {
        need(off, 8, what);
        uint64_t v = 0;
        for (int i = 7; i >= 0; --i) v = (v << 8) | p[off + uint64_t(i)];
        return v;
    }
};

}  // namespace goose::io
