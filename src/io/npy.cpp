// .npy save (format 1.0, header padded to 64 bytes) and load (validated header, copy out).
#include "goose/io/npy.h"

#include <fmt/ranges.h>

#include <cstring>
#include <string_view>
#include <vector>

#include "io/atomic_writer.h"
#include "io/le_bytes.h"
#include "io/mapped_file.h"

namespace goose::io {

namespace {

struct NpyType {
    std::string_view descr;  // as written; on load '=' and '<' are the same for these
    DType dtype;
};
constexpr NpyType kTypes[] = {
    {"<f4", DType::f32}, {"<f8", DType::f64}, {"<f2", DType::f16}, {"<i4", DType::i32},
    {"<i8", DType::i64}, {"<u2", DType::u16}, {"|u1", DType::u8},
};

constexpr std::string_view kMagic = "\x93NUMPY";

// A parser for the header's Python dict literal.
class HeaderParser {
public:
    HeaderParser(std::string_view s, const std::string& path) : s_(s), path_(path) {}

    void parse(std::string& descr, bool& fortran, std::vector<int64_t>& shape) {
        bool have_descr = false, have_fortran = false, have_shape = false;
        expect('{');
        while (true) {
            ws();
            if (peek() == '}') break;
            const std::string key = string();
            expect(':');
            if (key == "descr") {
                descr = string();
                have_descr = true;
            } else if (key == "fortran_order") {
                ws();
                if (s_.substr(i_).starts_with("True")) {
                    fortran = true;
                    i_ += 4;
                } else if (s_.substr(i_).starts_with("False")) {
                    fortran = false;
                    i_ += 5;
                } else {
                    bad("fortran_order must be True or False");
                }
                have_fortran = true;
            } else if (key == "shape") {
                expect('(');
                while (true) {
                    ws();
                    if (peek() == ')') break;
                    shape.push_back(integer());
                    ws();
                    if (peek() == ',') ++i_;
                    else if (peek() != ')') bad("bad shape tuple");
                }
                ++i_;
                have_shape = true;
            } else {
                bad(fmt::format("unexpected key '{}'", key));
            }
            ws();
            if (peek() == ',') ++i_;
            else if (peek() != '}') bad("expected ',' or '}'");
        }
        if (!have_descr || !have_fortran || !have_shape)
            bad("the header needs 'descr', 'fortran_order' and 'shape'");
    }

private:
    [[noreturn]] void bad(const std::string& what) const {
        fail("load_npy '{}': malformed header ({}): {}", path_, what, std::string(s_));
    }
    char peek() const {
        if (i_ >= s_.size()) bad("ends early");
        return s_[i_];
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n')) ++i_;
    }
    void expect(char c) {
        ws();
        if (peek() != c) bad(fmt::format("expected '{}'", c));
        ++i_;
    }
    std::string string() {
        ws();
        const char q = peek();
        if (q != '\'' && q != '"') bad("expected a quoted string");
        const size_t end = s_.find(q, i_ + 1);
        if (end == std::string_view::npos) bad("unterminated string");
        std::string r(s_.substr(i_ + 1, end - i_ - 1));
        i_ = end + 1;
        return r;
    }
    int64_t integer() {
        int64_t v = 0;
        size_t digits = 0;
        while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
            if (v > (int64_t(1) << 48)) bad("dimension too large");
            v = v * 10 + (s_[i_++] - '0');
            ++digits;
        }
        if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 longs
        if (!digits) bad("expected a non-negative integer");
        return v;
    }

    std::string_view s_;
    const std::string& path_;
    size_t i_ = 0;
};

}  // namespace

void save_npy(const std::string& path, const Tensor& t0) {
    if (!t0.defined()) fail("save_npy '{}': the tensor is undefined", path);
    const NpyType* type = nullptr;
    for (const auto& x : kTypes)
        if (x.dtype == t0.dtype()) type = &x;
    if (!type)
        fail("save_npy '{}': {} has no NumPy dtype; convert it first (e.g. .to(DType::f32))",
             path, dtype_name(t0.dtype()));
    const Tensor t = t0.device().is_cpu() ? t0.contiguous() : t0.to(Device::cpu()).contiguous();
    const auto dims = t.shape().vec();
    std::string shape = dims.size() == 1 ? fmt::format("({},)", dims[0])
                                         : fmt::format("({})", fmt::join(dims, ", "));
    std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                     type->descr, shape);
    // magic(6) + version(2) + length(2) + header + '\n' is a multiple of 64
    const size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header.push_back('\n');
    std::string prefix(kMagic);
    prefix.push_back('\x01');
    prefix.push_back('\x00');
    put_u16(prefix, uint16_t(header.size()));
    AtomicWriter out(path);
    out.write(prefix);
    out.write(header);
    if (t.numel()) out.write(t.raw_data(), t.nbytes());
    out.commit();
}

Tensor load_npy(const std::string& path) {
    auto map = MappedFile::open(path, "load_npy");
    const ByteView f{map->data(), map->size(), "load_npy", &path};
    f.need(0, 10, "magic and version");
    if (std::string_view(reinterpret_cast<const char*>(f.p), 6) != kMagic)
        fail("load_npy '{}': not a .npy file (wrong magic)", path);
    const uint8_t major = f.p[6];
    uint64_t hlen, hstart;
    if (major == 1) {
        hlen = f.u16(8, "header length");
        hstart = 10;
    } else if (major == 2 || major == 3) {
        hlen = f.u32(8, "header length");
        hstart = 12;
    } else {
        fail("load_npy '{}': format version {}.{} is not supported", path, major, f.p[7]);
    }
    f.need(hstart, hlen, "header");
    std::string descr;
    bool fortran = false;
    std::vector<int64_t> dims;
    HeaderParser(std::string_view(reinterpret_cast<const char*>(f.p + hstart), hlen), path)
        .parse(descr, fortran, dims);
    if (fortran) fail("load_npy '{}': fortran_order True is not supported (save C order)", path);
    if (descr.size() == 3 && descr[0] == '=') descr[0] = '<';
    if (descr == "<u1" || descr == "=u1") descr = "|u1";
    const NpyType* type = nullptr;
    for (const auto& x : kTypes)
        if (x.descr == descr) type = &x;
    if (!type)
        fail("load_npy '{}': dtype '{}' is not supported (<f4 <f8 <f2 <i4 <i8 <u2 |u1 are)",
             path, descr);
    if (dims.size() > size_t(kMaxDims))
        fail("load_npy '{}': {} dimensions (at most {})", path, dims.size(), kMaxDims);
    __int128 numel = 1;
    for (int64_t d : dims) {
        numel *= d;
        if (numel > (__int128(1) << 50))
            fail("load_npy '{}': shape ({}) is absurdly large", path, fmt::join(dims, ", "));
    }
    const __int128 nbytes = numel * __int128(dtype_size(type->dtype));
    const uint64_t data = hstart + hlen;
    if (nbytes != __int128(f.n - data))
        fail("load_npy '{}': shape ({}) of {} needs {} data bytes but the file has {}", path,
             fmt::join(dims, ", "), descr, int64_t(nbytes), f.n - data);
    Tensor t = Tensor::empty(Shape(dims), type->dtype);
    if (nbytes) std::memcpy(t.raw_data(), f.p + data, size_t(nbytes));
    return t;
}

}  // namespace goose::io
