// .pth load (mmap + zip directory + restricted unpickler) and save (torch.save's layout).
#include "goose/io/pth.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "io/atomic_writer.h"
#include "io/crc32.h"
#include "io/mapped_file.h"
#include "io/torch_pickle.h"
#include "io/zip.h"

namespace goose::io {

namespace {

constexpr std::string_view kStripPrefix = "_forward_module.";

// The "<top>/" folder: the one holding data.pkl directly.
std::string find_top(const ZipReader& zip, const std::string& path) {
    for (const auto& e : zip.entries()) {
        const auto slash = e.name.find('/');
        if (slash != std::string::npos && e.name.substr(slash + 1) == "data.pkl")
            return e.name.substr(0, slash + 1);
    }
    fail("load_pth '{}': the archive has no '<folder>/data.pkl' entry (is this a torch.save "
         "file of torch >= 1.6?)", path);
}

}  // namespace

StateDict load_pth(const std::string& path) {
    auto map = MappedFile::open(path, "load_pth");
    const ByteView file{map->data(), map->size(), "load_pth", &path};
    if (file.n >= 2 && file.p[0] == 0x80 && file.p[1] <= 5)
        fail("load_pth '{}': this is a bare pickle (the legacy torch.save format of torch < 1.6 "
             "or _use_new_zipfile_serialization=False), which is not supported; re-save it with "
             "a current torch.save", path);
    const ZipReader zip(file);
    const std::string top = find_top(zip, path);
    const ZipEntry& pkl_entry = *zip.find(top + "data.pkl");
    const uint64_t pkl_off = zip.data_offset(pkl_entry);
    if (crc32_update(0, map->data() + pkl_off, pkl_entry.size) != pkl_entry.crc)
        fail("load_pth '{}': {}data.pkl fails its CRC-32 check (the file is corrupt)", path, top);
    const ByteView pkl{map->data() + pkl_off, pkl_entry.size, "load_pth", &path};

    auto load_storage = [&](DType dtype, const std::string& type_name, const std::string& key,
                            int64_t numel) -> std::shared_ptr<Storage> {
        const ZipEntry* e = zip.find(top + "data/" + key);
        if (!e)
            fail("load_pth '{}': storage '{}' ({}) has no entry '{}data/{}' in the archive", path,
                 key, type_name, top, key);
        const uint64_t off = zip.data_offset(*e);
        const uint64_t elem = dtype_size(dtype);
        if (uint64_t(numel) > e->size / elem)
            fail("load_pth '{}': storage '{}' ({}) declares {} elements ({} bytes) but its entry "
                 "has {} bytes", path, key, type_name, numel, uint64_t(numel) * elem, e->size);
        const size_t nbytes = size_t(numel) * elem;
        uint8_t* p = map->data() + off;
        if (reinterpret_cast<uintptr_t>(p) % elem == 0)
            return Storage::wrap(p, nbytes, Device::cpu(), [keep = map](void*) {});
        auto s = Storage::allocate(nbytes, Device::cpu());  // misaligned: copy
        if (nbytes) std::memcpy(s->data(), p, nbytes);
        return s;
    };

    StateDict sd;
    for (auto& [key, t] : unpickle_state_dict(pkl, load_storage)) {
        std::string k = key.starts_with(kStripPrefix) ? key.substr(kStripPrefix.size()) : key;
        if (sd.count(k)) fail("load_pth '{}': key '{}' appears twice", path, k);
        sd.emplace(std::move(k), std::move(t));
    }
    return sd;
}

// ---- save -----------------------------------------------------------------------------------

namespace {

// Emits pickle protocol 2 the way CPython's C pickler does for torch.save's state dicts.
class PickleWriter {
public:
    std::string out;

    void op(uint8_t c) { out.push_back(char(c)); }
    uint32_t put() {  // memoize the top of the stack
        const uint32_t k = next_++;
        if (k < 256) {
            op('q');
            op(uint8_t(k));
        } else {
            op('r');
            put_u32(out, k);
        }
        return k;
    }
    void get(uint32_t k) {
        if (k < 256) {
            op('h');
            op(uint8_t(k));
        } else {
            op('j');
            put_u32(out, k);
        }
    }
    void str(std::string_view s) {
        op('X');
        put_u32(out, uint32_t(s.size()));
        out += s;
    }
    uint32_t str_memo(std::string_view s) {
        str(s);
        return put();
    }
    void integer(int64_t v) {
        if (v >= 0 && v <= 0xff) {
            op('K');
            op(uint8_t(v));
        } else if (v >= 0 && v <= 0xffff) {
            op('M');
            put_u16(out, uint16_t(v));
        } else if (v >= INT32_MIN && v <= INT32_MAX) {
            op('J');
            put_u32(out, uint32_t(int32_t(v)));
        } else {  // LONG1: minimal little-endian two's complement
            std::string b;
            auto u = uint64_t(v);
            for (int k = 0; k < 8; ++k) b.push_back(char((u >> (8 * k)) & 0xff));
            while (b.size() > 1) {
                const auto last = uint8_t(b.back()), prev = uint8_t(b[b.size() - 2]);
                if ((last == 0 && !(prev & 0x80)) || (last == 0xff && (prev & 0x80)))
                    b.pop_back();
                else
                    break;
            }
            op(0x8a);
            op(uint8_t(b.size()));
            out += b;
        }
    }
    void global(std::string_view module, std::string_view name) {
        op('c');
        out += module;
        out += '\n';
        out += name;
        out += '\n';
    }
    void int_tuple(const std::vector<int64_t>& v) {  // memoized unless empty
        if (v.empty()) {
            op(')');
            return;
        }
        if (v.size() > 3) op('(');
        for (int64_t x : v) integer(x);
        op(v.size() > 3 ? 't' : uint8_t(0x84 + v.size()));
        put();
    }

private:
    uint32_t next_ = 0;
};

const char* storage_class_name(DType t) {
    switch (t) {
        case DType::bf16: return "BFloat16Storage";
        case DType::f16: return "HalfStorage";
        case DType::f32: return "FloatStorage";
        case DType::f64: return "DoubleStorage";
        case DType::i32: return "IntStorage";
        case DType::i64: return "LongStorage";
        case DType::u8: return "ByteStorage";
        case DType::u16: break;
    }
    return nullptr;
}

std::string archive_stem(const std::string& path) {
    std::string stem = std::filesystem::path(path).filename().string();
    const auto dot = stem.find('.');
    if (dot != std::string::npos) stem.resize(dot);
    return stem.empty() ? "archive" : stem;
}

}  // namespace

void save_pth(const std::string& path, const StateDict& sd) {
    for (const auto& [key, t] : sd) {
        if (!t.defined()) fail("save_pth '{}': tensor '{}' is undefined", path, key);
        if (!storage_class_name(t.dtype()))
            fail("save_pth '{}': tensor '{}' is {}, which PyTorch cannot store; convert it "
                 "(bf16, f16, f32, f64, i32, i64 and u8 are supported)", path, key,
                 dtype_name(t.dtype()));
    }
    // data.pkl: OrderedDict() then its items; each value is
    // _rebuild_tensor_v2(persistent storage, 0, size, stride, False, OrderedDict()).
    PickleWriter w;
    w.op(0x80);
    w.op(2);
    w.global("collections", "OrderedDict");
    const uint32_t odict = w.put();
    w.op(')');
    w.op('R');
    w.put();
    std::optional<uint32_t> rebuild, storage_str, cpu_str;
    std::map<DType, uint32_t> class_memo;
    size_t index = 0;
    auto it = sd.begin();
    while (it != sd.end()) {  // batches of at most 1000 items, as CPython's pickler writes
        const size_t n = std::min<size_t>(1000, size_t(std::distance(it, sd.end())));
        if (n > 1) w.op('(');
        for (size_t b = 0; b < n; ++b, ++it, ++index) {
            const Tensor& t = it->second;
            w.str_memo(it->first);
            if (rebuild) {
                w.get(*rebuild);
            } else {
                w.global("torch._utils", "_rebuild_tensor_v2");
                rebuild = w.put();
            }
            w.op('(');
            w.op('(');
            if (storage_str) w.get(*storage_str); else storage_str = w.str_memo("storage");
            if (auto c = class_memo.find(t.dtype()); c != class_memo.end()) {
                w.get(c->second);
            } else {
                w.global("torch", storage_class_name(t.dtype()));
                class_memo[t.dtype()] = w.put();
            }
            w.str_memo(std::to_string(index));
            if (cpu_str) w.get(*cpu_str); else cpu_str = w.str_memo("cpu");
            w.integer(t.numel());
            w.op('t');
            w.put();
            w.op('Q');
            w.integer(0);
            w.int_tuple(t.shape().vec());
            w.int_tuple(contiguous_strides(t.shape()).vec());
            w.op(0x89);  // requires_grad = False
            w.get(odict);
            w.op(')');
            w.op('R');
            w.put();
            w.op('t');
            w.put();
            w.op('R');
            w.put();
        }
        w.op(n > 1 ? 'u' : 's');
        if (n < 1000) break;
    }
    w.op('.');

    const std::string dir = archive_stem(path) + "/";
    AtomicWriter out(path);
    ZipWriter zip(out);
    zip.add(dir + "data.pkl", w.out);
    zip.add(dir + ".format_version", "1");
    zip.add(dir + ".storage_alignment", "64");
    zip.add(dir + "byteorder", "little");
    index = 0;
    for (const auto& [key, t0] : sd) {
        const Tensor t = t0.device().is_cpu() ? t0.contiguous() : t0.to(Device::cpu()).contiguous();
        zip.add(dir + "data/" + std::to_string(index++), t.numel() ? t.raw_data() : nullptr,
                t.nbytes());
    }
    zip.add(dir + "version", "3\n");
    // serialization_id: 40 decimal digits derived from the record names and contents.
    uint64_t name_hash = 1469598103934665603ull, crcs = 0;
    for (const auto& e : zip.entries()) {
        for (char c : e.name) name_hash = (name_hash ^ uint8_t(c)) * 1099511628211ull;
        crcs = crcs * 31 + e.crc;
    }
    zip.add(dir + ".data/serialization_id", fmt::format("{:020}{:020}", name_hash, crcs));
    zip.finish();
    out.commit();
}

}  // namespace goose::io
