// Zip reader (central directory, zip64 extensions) and writer (stored entries, aligned data).
#include "io/zip.h"

#include <algorithm>

#include "io/crc32.h"

namespace goose::io {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;
constexpr uint64_t kAlign = 64;

[[noreturn]] void bad(const ByteView& f, const std::string& what) {
    fail("{} '{}': not a valid zip archive: {}", f.who, *f.path, what);
}

}  // namespace

ZipReader::ZipReader(const ByteView& f) : f_(f) {
    if (f.n < 22) bad(f, fmt::format("the file has only {} bytes", f.n));
    // The end record is in the last 22 + 65535 (comment) bytes; search backwards.
    uint64_t end = UINT64_MAX;
    const uint64_t lowest = f.n > 22 + 65535 ? f.n - 22 - 65535 : 0;
    for (uint64_t pos = f.n - 22;; --pos) {
        if (f.u32(pos, "end record") == kEndSig &&
            pos + 22 + f.u16(pos + 20, "end record") <= f.n) {
            end = pos;
            break;
        }
        if (pos == lowest) break;
    }
    if (end == UINT64_MAX) bad(f, "no end-of-central-directory record (wrong magic or truncated)");
    uint64_t count = f.u16(end + 10, "end record");
    uint64_t cd_size = f.u32(end + 12, "end record");
    uint64_t cd_offset = f.u32(end + 16, "end record");
    if (f.u16(end + 4, "end record") != 0 || f.u16(end + 6, "end record") != 0)
        bad(f, "multi-disk archives are not supported");
    // zip64: a locator right before the end record points at the zip64 end record.
    if (end >= 20 && f.u32(end - 20, "zip64 locator") == kLocator64Sig) {
        const uint64_t e64 = f.u64(end - 20 + 8, "zip64 locator");
        if (f.u32(e64, "zip64 end record") != kEnd64Sig)
            bad(f, fmt::format("the zip64 locator points at offset {} which holds no zip64 end "
                               "record", e64));
        count = f.u64(e64 + 32, "zip64 end record");
        cd_size = f.u64(e64 + 40, "zip64 end record");
        cd_offset = f.u64(e64 + 48, "zip64 end record");
    }
    if (!f.has(cd_offset, cd_size))
        bad(f, fmt::format("the central directory [{}, +{}) lies outside the file ({} bytes)",
                           cd_offset, cd_size, f.n));
    if (count > cd_size / 46)
        bad(f, fmt::format("{} entries cannot fit in a central directory of {} bytes", count,
                           cd_size));
    entries_.reserve(count);
    uint64_t pos = cd_offset;
    const uint64_t cd_end = cd_offset + cd_size;
    for (uint64_t i = 0; i < count; ++i) {
        if (pos + 46 > cd_end || f.u32(pos, "central directory") != kCentralSig)
            bad(f, fmt::format("central directory entry {} at offset {} is malformed", i, pos));
        ZipEntry e;
        e.method = f.u16(pos + 10, "central directory");
        e.crc = f.u32(pos + 16, "central directory");
        e.comp_size = f.u32(pos + 20, "central directory");
        e.size = f.u32(pos + 24, "central directory");
        const uint64_t name_len = f.u16(pos + 28, "central directory");
        const uint64_t extra_len = f.u16(pos + 30, "central directory");
        const uint64_t comment_len = f.u16(pos + 32, "central directory");
        e.local_offset = f.u32(pos + 42, "central directory");
        const uint64_t next = pos + 46 + name_len + extra_len + comment_len;
        if (next > cd_end)
            bad(f, fmt::format("central directory entry {} overruns the directory", i));
        e.name.assign(reinterpret_cast<const char*>(f.p + pos + 46), name_len);
        // zip64 extra field (id 1): 64-bit values for the fields saturated at 0xFFFFFFFF.
        uint64_t x = pos + 46 + name_len;
        const uint64_t x_end = x + extra_len;
        while (x + 4 <= x_end) {
            const uint16_t id = f.u16(x, "extra field");
            const uint64_t len = f.u16(x + 2, "extra field");
            if (x + 4 + len > x_end) bad(f, fmt::format("entry '{}': bad extra field", e.name));
            if (id == 1) {
                uint64_t q = x + 4;
                auto take = [&](uint64_t& field) {
                    if (field != 0xFFFFFFFFu) return;
                    if (q + 8 > x + 4 + len)
                        bad(f, fmt::format("entry '{}': short zip64 extra field", e.name));
                    field = f.u64(q, "zip64 extra field");
                    q += 8;
                };
                take(e.size);
                take(e.comp_size);
                take(e.local_offset);
            }
            x += 4 + len;
        }
        entries_.push_back(std::move(e));
        pos = next;
    }
    for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].name, i);
}

const ZipEntry* ZipReader::find(std::string_view name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
}

uint64_t ZipReader::data_offset(const ZipEntry& e) const {
    if (e.method != 0)
        fail("{} '{}': zip entry '{}' is compressed (method {}); only stored entries are "
             "supported (torch.save writes them stored)", f_.who, *f_.path, e.name, e.method);
    if (e.comp_size != e.size)
        bad(f_, fmt::format("stored entry '{}' has compressed size {} != size {}", e.name,
                            e.comp_size, e.size));
    if (f_.u32(e.local_offset, "local header") != kLocalSig)
        bad(f_, fmt::format("entry '{}': no local header at offset {}", e.name, e.local_offset));
    const uint64_t data = e.local_offset + 30 + f_.u16(e.local_offset + 26, "local header") +
                          f_.u16(e.local_offset + 28, "local header");
    if (!f_.has(data, e.size))
        bad(f_, fmt::format("entry '{}' ([{}, +{})) extends past the end of the file ({} bytes)",
                            e.name, data, e.size, f_.n));
    return data;
}

void ZipWriter::add(const std::string& name, const void* data, uint64_t n) {
    ZipEntry e;
    e.name = name;
    e.size = e.comp_size = n;
    e.crc = crc32_update(0, data, n);
    e.local_offset = out_.position();
    const bool big = n >= 0xFFFFFFFFu;
    std::string h;
    put_u32(h, kLocalSig);
    put_u16(h, big ? 45 : 20);  // version needed
    put_u16(h, 0);              // flags
    put_u16(h, 0);              // stored
    put_u16(h, 0);              // time
    put_u16(h, 0);              // date
    put_u32(h, e.crc);
    put_u32(h, big ? 0xFFFFFFFFu : uint32_t(n));
    put_u32(h, big ? 0xFFFFFFFFu : uint32_t(n));
    put_u16(h, uint16_t(name.size()));
    std::string extra;
    if (big) {
        put_u16(extra, 1);
        put_u16(extra, 16);
        put_u64(extra, n);
        put_u64(extra, n);
    }
    // Padding extra field (PyTorch's "FB" id, filled with 'Z') so that the data is aligned.
    const uint64_t before = e.local_offset + 30 + name.size() + extra.size();
    uint64_t pad = (kAlign - (before + 4) % kAlign) % kAlign;
    put_u16(extra, 0x4246);
    put_u16(extra, uint16_t(pad));
    extra.append(pad, 'Z');
    put_u16(h, uint16_t(extra.size()));
    h += name;
    h += extra;
    out_.write(h);
    out_.write(data, n);
    entries_.push_back(std::move(e));
}

void ZipWriter::finish() {
    const uint64_t cd_offset = out_.position();
    std::string cd;
    for (const auto& e : entries_) {
        std::string extra;
        const bool big_size = e.size >= 0xFFFFFFFFu, big_off = e.local_offset >= 0xFFFFFFFFu;
        if (big_size || big_off) {
            put_u16(extra, 1);
            put_u16(extra, uint16_t((big_size ? 16 : 0) + (big_off ? 8 : 0)));
            if (big_size) {
                put_u64(extra, e.size);
                put_u64(extra, e.comp_size);
            }
            if (big_off) put_u64(extra, e.local_offset);
        }
        put_u32(cd, kCentralSig);
        put_u16(cd, 45);  // made by
        put_u16(cd, (big_size || big_off) ? 45 : 20);
        put_u16(cd, 0);
        put_u16(cd, 0);
        put_u16(cd, 0);
        put_u16(cd, 0);
        put_u32(cd, e.crc);
        put_u32(cd, big_size ? 0xFFFFFFFFu : uint32_t(e.comp_size));
        put_u32(cd, big_size ? 0xFFFFFFFFu : uint32_t(e.size));
        put_u16(cd, uint16_t(e.name.size()));
        put_u16(cd, uint16_t(extra.size()));
        put_u16(cd, 0);  // comment
        put_u16(cd, 0);  // disk
        put_u16(cd, 0);  // internal attributes
        put_u32(cd, 0);  // external attributes
        put_u32(cd, big_off ? 0xFFFFFFFFu : uint32_t(e.local_offset));
        cd += e.name;
        cd += extra;
    }
    const uint64_t count = entries_.size(), cd_size = cd.size();
    const uint64_t end64 = cd_offset + cd_size;
    // zip64 end record + locator (PyTorch always writes them), then the classic end record.
    put_u32(cd, kEnd64Sig);
    put_u64(cd, 44);
    put_u16(cd, 45);
    put_u16(cd, 45);
    put_u32(cd, 0);
    put_u32(cd, 0);
    put_u64(cd, count);
    put_u64(cd, count);
    put_u64(cd, cd_size);
    put_u64(cd, cd_offset);
    put_u32(cd, kLocator64Sig);
    put_u32(cd, 0);
    put_u64(cd, end64);
    put_u32(cd, 1);
    put_u32(cd, kEndSig);
    put_u16(cd, 0);
    put_u16(cd, 0);
    put_u16(cd, uint16_t(std::min<uint64_t>(count, 0xFFFF)));
    put_u16(cd, uint16_t(std::min<uint64_t>(count, 0xFFFF)));
    put_u32(cd, uint32_t(std::min<uint64_t>(cd_size, 0xFFFFFFFFu)));
    put_u32(cd, uint32_t(std::min<uint64_t>(cd_offset, 0xFFFFFFFFu)));
    put_u16(cd, 0);
    out_.write(cd);
}

}  // namespace goose::io
