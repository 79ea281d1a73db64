// CRC-32 (IEEE 802.3, the zip/zlib polynomial), slicing-by-8.
#pragma once
#include <cstddef>
#include <cstdint>

namespace goose::io {

// Continues a running CRC: crc32_update(0, ...) starts one; feed pieces in order.
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);

}  // namespace goose::io
