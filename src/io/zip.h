// Minimal zip archives of stored (uncompressed) entries, as PyTorch's .pth container uses:
// a reader of the central directory (zip64 aware) and a writer with 64-byte-aligned payloads.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/atomic_writer.h"
#include "io/le_bytes.h"

namespace goose::io {

struct ZipEntry {
    std::string name;
    uint16_t method = 0;  // 0 = stored
    uint32_t crc = 0;
    uint64_t comp_size = 0, size = 0, local_offset = 0;
};

class ZipReader {
public:
    // Parses the end records and the central directory; goose::Error on anything malformed.
    explicit ZipReader(const ByteView& file);
    ZipReader(const ZipReader&) = delete;  // index_ points into entries_
    ZipReader& operator=(const ZipReader&) = delete;
    const std::vector<ZipEntry>& entries() const { return entries_; }
    const ZipEntry* find(std::string_view name) const;
    // File offset of the entry's bytes; checks that it is stored and lies inside the file.
    uint64_t data_offset(const ZipEntry& e) const;

private:
    ByteView f_;
    std::vector<ZipEntry> entries_;
    std::unordered_map<std::string_view, size_t> index_;  // name -> first entry of that name
};

class ZipWriter {
public:
    explicit ZipWriter(AtomicWriter& out) : out_(out) {}
    // Writes one stored entry whose payload starts at a multiple of 64 bytes in the file.
    void add(const std::string& name, const void* data, uint64_t n);
    void add(const std::string& name, std::string_view s) { add(name, s.data(), s.size()); }
    void finish();  // central directory, zip64 end record and locator, end record
    // CRCs of everything added so far, in order (PyTorch folds them into serialization_id).
    const std::vector<ZipEntry>& entries() const { return entries_; }

private:
    AtomicWriter& out_;
    std::vector<ZipEntry> entries_;
};

}  // namespace goose::io
