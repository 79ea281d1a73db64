// safetensors load (mmap + nlohmann-json header) and save (atomic, aligned layout).
#include "goose/io/safetensors.h"

#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include "io/atomic_writer.h"
#include "io/le_bytes.h"
#include "io/mapped_file.h"

namespace goose::io {

namespace {

constexpr uint64_t kMaxHeader = 100'000'000;  // the reference implementation's limit

struct DTypeName {
    const char* name;
    DType dtype;
};
constexpr DTypeName kDTypes[] = {
    {"BF16", DType::bf16}, {"F16", DType::f16}, {"F32", DType::f32}, {"F64", DType::f64},
    {"I32", DType::i32},   {"I64", DType::i64}, {"U8", DType::u8},   {"U16", DType::u16},
};

const char* st_name(DType t) {
    for (const auto& d : kDTypes)
        if (d.dtype == t) return d.name;
    return "?";
}

[[noreturn]] void bad_tensor(const std::string& path, const std::string& name,
                             const std::string& what) {
    fail("load_safetensors '{}': tensor '{}': {}", path, name, what);
}

}  // namespace

StateDict load_safetensors(const std::string& path) {
    auto map = MappedFile::open(path, "load_safetensors");
    const ByteView f{map->data(), map->size(), "load_safetensors", &path};
    const uint64_t hlen = f.u64(0, "header length");
    if (hlen > kMaxHeader || hlen > f.n - 8)
        fail("load_safetensors '{}': header length {} is impossible for a file of {} bytes "
             "(not a safetensors file, or truncated)", path, hlen, f.n);
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(f.p + 8, f.p + 8 + hlen);
    } catch (const nlohmann::json::exception& e) {
        fail("load_safetensors '{}': the header is not valid JSON: {}", path, e.what());
    }
    if (!header.is_object()) fail("load_safetensors '{}': the header is not a JSON object", path);
    const uint64_t base = 8 + hlen, data_size = f.n - base;
    StateDict sd;
    for (const auto& [name, info] : header.items()) {
        if (name == "__metadata__") continue;
        auto bad = [&](const std::string& what) { bad_tensor(path, name, what); };
        if (!info.is_object()) bad("the entry is not a JSON object");
        const auto dt = info.find("dtype");
        const auto sh = info.find("shape");
        const auto off = info.find("data_offsets");
        if (dt == info.end() || !dt->is_string() || sh == info.end() || !sh->is_array() ||
            off == info.end() || !off->is_array())
            bad("needs \"dtype\" (string), \"shape\" and \"data_offsets\" (arrays)");
        const std::string dname = dt->get<std::string>();
        const DTypeName* d = nullptr;
        for (const auto& x : kDTypes)
            if (dname == x.name) d = &x;
        if (!d)
            bad_tensor(path, name, fmt::format("dtype {} is not supported (BF16, F16, F32, F64, "
                                               "I32, I64, U8, U16 are)", dname));
        if (sh->size() > size_t(kMaxDims))
            bad(fmt::format("{} dimensions (at most {})", sh->size(), kMaxDims));
        std::vector<int64_t> shape;
        __int128 numel = 1;
        for (const auto& v : *sh) {
            if (!v.is_number_unsigned() || v.get<uint64_t>() > (uint64_t(1) << 48))
                bad("shape entries must be non-negative integers of sane size");
            shape.push_back(int64_t(v.get<uint64_t>()));
            numel *= shape.back();
            if (numel > (__int128(1) << 50)) bad("the shape is absurdly large");
        }
        if (off->size() != 2 || !(*off)[0].is_number_unsigned() ||
            !(*off)[1].is_number_unsigned())
            bad("data_offsets must be two non-negative integers");
        const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
        const uint64_t elem = dtype_size(d->dtype);
        if (begin > end || end > data_size)
            bad(fmt::format("data_offsets [{}, {}) lie outside the data section of {} bytes",
                            begin, end, data_size));
        if (numel * elem != __int128(end - begin))
            bad(fmt::format("shape [{}] of {} needs {} bytes but data_offsets span {}",
                            fmt::join(shape, ", "), dname, int64_t(numel * elem), end - begin));
        uint8_t* p = map->data() + base + begin;
        const size_t nbytes = end - begin;
        std::shared_ptr<Storage> st;
        if (reinterpret_cast<uintptr_t>(p) % elem == 0) {
            st = Storage::wrap(p, nbytes, Device::cpu(), [keep = map](void*) {});
        } else {
            st = Storage::allocate(nbytes, Device::cpu());
            if (nbytes) std::memcpy(st->data(), p, nbytes);
        }
        const Shape s(shape);
        sd.emplace(name, Tensor(std::move(st), s, contiguous_strides(s), 0, d->dtype));
    }
    return sd;
}

void save_safetensors(const std::string& path, const StateDict& sd,
                      const std::map<std::string, std::string>& metadata) {
    std::vector<std::pair<std::string, Tensor>> order;
    for (const auto& [name, t] : sd) {
        if (!t.defined()) fail("save_safetensors '{}': tensor '{}' is undefined", path, name);
        if (name == "__metadata__")
            fail("save_safetensors '{}': '__metadata__' is reserved and cannot name a tensor",
                 path);
        order.emplace_back(name, t);
    }
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
        return dtype_size(a.second.dtype()) > dtype_size(b.second.dtype());
    });
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const auto& [name, t] : order) {
        const uint64_t n = t.nbytes();
        header[name] = {{"dtype", st_name(t.dtype())},
                        {"shape", t.shape().vec()},
                        {"data_offsets", {offset, offset + n}}};
        offset += n;
    }
    std::string h;
    try {
        h = header.dump();
    } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not valid UTF-8
        fail("save_safetensors '{}': cannot encode the header: {}", path, e.what());
    }
    h.append((8 - h.size() % 8) % 8, ' ');
    std::string len;
    put_u64(len, h.size());
    AtomicWriter out(path);
    out.write(len);
    out.write(h);
    for (const auto& [name, t0] : order) {
        const Tensor t = t0.device().is_cpu() ? t0.contiguous() : t0.to(Device::cpu()).contiguous();
        if (t.numel()) out.write(t.raw_data(), t.nbytes());
    }
    out.commit();
}

}  // namespace goose::io
