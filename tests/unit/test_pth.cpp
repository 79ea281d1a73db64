// .pth checkpoints: a real torch.save fixture, round trips, torch 2.x layout, hand-built pickles,
// corrupt archives (truncated, flipped bytes) and, when available, loading our files in PyTorch.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "goose/io/pth.h"
#include "io/crc32.h"
#include "io/le_bytes.h"
#include "io/zip.h"
#include "io_test_util.h"

namespace goose {
namespace {

using iotest::expect_error;
using iotest::expect_same;
using iotest::read_bytes;
using iotest::sample;
using iotest::TempDir;
using iotest::write_bytes;

std::string fixture(const std::string& name) {
    return (std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures" / name)
        .string();
}

DType dtype_from_torch(const std::string& s) {
    if (s == "bfloat16") return DType::bf16;
    if (s == "float16") return DType::f16;
    if (s == "float32") return DType::f32;
    if (s == "float64") return DType::f64;
    if (s == "int32") return DType::i32;
    if (s == "int64") return DType::i64;
    if (s == "uint8") return DType::u8;
    ADD_FAILURE() << "unexpected torch dtype " << s;
    return DType::f32;
}

// ---- hand-built archives and pickles ---------------------------------------------------------

struct Entry {
    std::string name, data;
    uint16_t method = 0;
};

// A zip of stored entries; with `misalign`, every payload starts at an offset = 1 (mod 8).
std::string make_zip(const std::vector<Entry>& entries, bool misalign = false) {
    std::string z, cd;
    for (const auto& e : entries) {
        const uint32_t crc = io::crc32_update(0, e.data.data(), e.data.size());
        const uint64_t off = z.size();
        std::string extra;
        if (misalign) {
            const uint64_t before = off + 30 + e.name.size() + 4;
            const uint64_t pad = (1 + 8 - before % 8) % 8;
            io::put_u16(extra, 0x4246);
            io::put_u16(extra, uint16_t(pad));
            extra.append(pad, 'Z');
        }
        io::put_u32(z, 0x04034b50);
        io::put_u16(z, 20);
        io::put_u16(z, 0);
        io::put_u16(z, e.method);
        io::put_u32(z, 0);
        io::put_u32(z, crc);
        io::put_u32(z, uint32_t(e.data.size()));
        io::put_u32(z, uint32_t(e.data.size()));
        io::put_u16(z, uint16_t(e.name.size()));
        io::put_u16(z, uint16_t(extra.size()));
        z += e.name + extra + e.data;
        io::put_u32(cd, 0x02014b50);
        io::put_u16(cd, 20);
        io::put_u16(cd, 20);
        io::put_u16(cd, 0);
        io::put_u16(cd, e.method);
        io::put_u32(cd, 0);
        io::put_u32(cd, crc);
        io::put_u32(cd, uint32_t(e.data.size()));
        io::put_u32(cd, uint32_t(e.data.size()));
        io::put_u16(cd, uint16_t(e.name.size()));
        io::put_u32(cd, 0);  // extra, comment lengths
        io::put_u32(cd, 0);  // disk, internal attributes
        io::put_u32(cd, 0);  // external attributes
        io::put_u32(cd, uint32_t(off));
        cd += e.name;
    }
    const uint64_t cd_off = z.size();
    z += cd;
    io::put_u32(z, 0x06054b50);
    io::put_u32(z, 0);
    io::put_u16(z, uint16_t(entries.size()));
    io::put_u16(z, uint16_t(entries.size()));
    io::put_u32(z, uint32_t(cd.size()));
    io::put_u32(z, uint32_t(cd_off));
    io::put_u16(z, 0);
    return z;
}

std::string pk_str(const std::string& s) {
    std::string r = "X";
    io::put_u32(r, uint32_t(s.size()));
    return r + s;
}
std::string pk_int(int64_t v) {
    std::string r = "J";
    io::put_u32(r, uint32_t(int32_t(v)));
    return r;
}
std::string pk_global(const std::string& m, const std::string& n) {
    return "c" + m + "\n" + n + "\n";
}
std::string pk_ints(const std::vector<int64_t>& v) {
    std::string r = "(";
    for (auto x : v) r += pk_int(x);
    return r + "t";
}
// _rebuild_tensor_v2(('storage', torch.<cls>, key, 'cpu', numel), offset, size, stride, ...)
std::string pk_tensor(const std::string& cls, const std::string& key, int64_t numel,
                      int64_t offset, const std::vector<int64_t>& size,
                      const std::vector<int64_t>& stride) {
    return pk_global("torch._utils", "_rebuild_tensor_v2") + "((" + pk_str("storage") +
           pk_global("torch", cls) + pk_str(key) + pk_str("cpu") + pk_int(numel) + "tQ" +
           pk_int(offset) + pk_ints(size) + pk_ints(stride) + "\x89" +
           pk_global("collections", "OrderedDict") + ")Rt" + "R";
}
std::string pk_dict(const std::vector<std::pair<std::string, std::string>>& items) {
    std::string r = "\x80\x02}(";
    for (const auto& [k, v] : items) r += pk_str(k) + v;
    return r + "u.";
}
std::string floats(std::initializer_list<float> v) {
    std::string r(v.size() * 4, '\0');
    std::memcpy(r.data(), v.begin(), r.size());
    return r;
}

// End-of-central-directory offset and central directory offset of a small archive.
std::pair<size_t, size_t> zip_directory(const std::string& z) {
    const size_t end = z.rfind(std::string("PK\x05\x06", 4));
    EXPECT_NE(end, std::string::npos);
    uint32_t cd = 0;
    std::memcpy(&cd, z.data() + end + 16, 4);
    return {end, cd};
}

// Loads a file that may be corrupt: it must load or throw goose::Error (never crash).
bool loads_or_errors(const std::string& path) {
    try {
        io::load_pth(path);
        return true;
    } catch (const Error&) {
        return false;
    }
}

// ---- a real torch.save file ------------------------------------------------------------------

TEST(Pth, LoadsTorchFixtureExactly) {
    const auto sd = io::load_pth(fixture("torch_small.pth"));
    const auto ref = nlohmann::json::parse(read_bytes(fixture("torch_small.json")));
    const auto& tensors = ref["tensors"];
    ASSERT_EQ(sd.size(), tensors.size());
    for (const auto& [name, want] : tensors.items()) {
        SCOPED_TRACE(name);
        ASSERT_TRUE(sd.count(name)) << "missing key " << name;
        const Tensor& t = sd.at(name);
        EXPECT_EQ(t.dtype(), dtype_from_torch(want["dtype"]));
        EXPECT_EQ(t.shape().vec(), want["shape"].get<std::vector<int64_t>>());
        EXPECT_EQ(t.strides().vec(), want["stride"].get<std::vector<int64_t>>());
        EXPECT_EQ(t.offset(), want["offset"].get<int64_t>());
        EXPECT_EQ(t.to_vector(), want["values"].get<std::vector<double>>());
    }
    EXPECT_EQ(sd.at("transposed").strides(), (Strides{1, 5}));
    EXPECT_TRUE(sd.at("shared_a").shares_storage(sd.at("shared_b")));
    EXPECT_FALSE(sd.count("_forward_module.head.weight"));
    // Views of the mapping are writable (copy-on-write) and the file stays untouched.
    const std::string before = read_bytes(fixture("torch_small.pth"));
    Tensor f32 = sd.at("f32");
    f32.set({0}, 123.0);
    EXPECT_EQ(f32.get({0}), 123.0);
    EXPECT_EQ(read_bytes(fixture("torch_small.pth")), before);
}

// ---- round trips -----------------------------------------------------------------------------

TEST(Pth, RoundTripsEveryDTypeAndLayout) {
    TempDir dir("pth_rt");
    io::StateDict sd;
    const DType dtypes[] = {DType::bf16, DType::f16, DType::f32, DType::f64,
                            DType::i32,  DType::i64, DType::u8};
    uint64_t seed = 1;
    for (DType dt : dtypes) sd[std::string("x.") + std::string(dtype_name(dt))] =
        sample(Shape{3, 7}, dt, seed++);
    Tensor m = sample(Shape{4, 6}, DType::f32, 99);
    sd["transposed"] = m.transpose(0, 1);              // strided view
    sd["sliced"] = m.slice(1, 1, 5, 2).select(0, 2);  // offset + stride
    sd["shared_a"] = m.slice(0, 0, 2);                 // shares m's storage with the two above
    sd["scalar"] = Tensor::scalar(-3.5, DType::f64);
    sd["empty"] = Tensor::zeros(Shape{0, 3}, DType::bf16);
    sd["five_d"] = sample(Shape{2, 1, 3, 1, 2}, DType::f16, 7);
    const std::string path = dir.path("model.pth");
    io::save_pth(path, sd);
    const auto back = io::load_pth(path);
    ASSERT_EQ(back.size(), sd.size());
    for (const auto& [k, t] : sd) {
        ASSERT_TRUE(back.count(k)) << k;
        expect_same(back.at(k), t, k);
        EXPECT_TRUE(back.at(k).is_contiguous()) << k;
    }
    // Saving again over the same path replaces it atomically (no leftovers).
    io::save_pth(path, back);
    for (auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos);
}

TEST(Pth, SavedLayoutIsTorch2s) {
    TempDir dir("pth_layout");
    io::StateDict sd{{"a", sample(Shape{3, 5}, DType::bf16, 1)},
                     {"b", sample(Shape{7}, DType::f32, 2)},
                     {"c", sample(Shape{1}, DType::u8, 3)}};
    const std::string path = dir.path("ckpt.v1.pth");
    io::save_pth(path, sd);
    const std::string z = read_bytes(path);
    const io::ByteView view{reinterpret_cast<const uint8_t*>(z.data()), z.size(), "test", &path};
    const io::ZipReader zip(view);
    std::vector<std::string> names;
    for (const auto& e : zip.entries()) {
        names.push_back(e.name);
        const uint64_t off = zip.data_offset(e);
        EXPECT_EQ(off % 64, 0u) << e.name;
        EXPECT_EQ(io::crc32_update(0, z.data() + off, e.size), e.crc) << e.name;
    }
    const std::vector<std::string> want = {
        "ckpt/data.pkl", "ckpt/.format_version", "ckpt/.storage_alignment", "ckpt/byteorder",
        "ckpt/data/0",   "ckpt/data/1",          "ckpt/data/2",             "ckpt/version",
        "ckpt/.data/serialization_id"};
    EXPECT_EQ(names, want);
    auto text = [&](const std::string& name) {
        const auto* e = zip.find(name);
        return std::string(z.data() + zip.data_offset(*e), e->size);
    };
    EXPECT_EQ(text("ckpt/.format_version"), "1");
    EXPECT_EQ(text("ckpt/.storage_alignment"), "64");
    EXPECT_EQ(text("ckpt/byteorder"), "little");
    EXPECT_EQ(text("ckpt/version"), "3\n");
    EXPECT_EQ(text("ckpt/.data/serialization_id").size(), 40u);
    const std::string pkl = text("ckpt/data.pkl");
    EXPECT_EQ(pkl.substr(0, 2), "\x80\x02");
    EXPECT_NE(pkl.find("ccollections\nOrderedDict\n"), std::string::npos);
    EXPECT_NE(pkl.find("ctorch._utils\n_rebuild_tensor_v2\n"), std::string::npos);
    EXPECT_NE(pkl.find("ctorch\nBFloat16Storage\n"), std::string::npos);
    EXPECT_NE(pkl.find("ctorch\nByteStorage\n"), std::string::npos);
    EXPECT_EQ(pkl.back(), '.');
}

TEST(Pth, ManyKeysUseSetitemsBatchesAndLongMemo) {
    TempDir dir("pth_many");
    io::StateDict sd;
    for (int i = 0; i < 1203; ++i)
        sd[fmt::format("k{}", i)] = Tensor::full(Shape{2}, double(i % 50), DType::f32);
    io::save_pth(dir.path("many.pth"), sd);
    const auto back = io::load_pth(dir.path("many.pth"));
    ASSERT_EQ(back.size(), sd.size());
    for (const auto& [k, t] : sd) expect_same(back.at(k), t, k);
}

TEST(Pth, SaveErrors) {
    TempDir dir("pth_save_err");
    const Tensor u16 = Tensor::zeros(Shape{2}, DType::u16), f32 = Tensor::zeros(Shape{2});
    expect_error([&] { io::save_pth(dir.path("a.pth"), {{"w", u16}}); },
                 {"save_pth", "a.pth", "'w'", "u16"});
    expect_error([&] { io::save_pth(dir.path("a.pth"), {{"w", Tensor()}}); }, {"'w'", "undefined"});
    expect_error([&] { io::save_pth(dir.path("no/such/dir.pth"), {{"w", f32}}); },
                 {"dir.pth"});
    EXPECT_FALSE(std::filesystem::exists(dir.path("a.pth")));
}

// ---- hand-built pickles ----------------------------------------------------------------------

TEST(Pth, HandBuiltVariants) {
    TempDir dir("pth_hand");
    const std::string path = dir.path("h.pth");
    // A plain dict, a parameter wrapper, an f32 storage shared by two tensors, and payloads that
    // are misaligned in the file (so the loader must copy them).
    const std::string pkl =
        pk_dict({{"p", pk_global("torch._utils", "_rebuild_parameter") + "(" +
                           pk_tensor("FloatStorage", "0", 4, 1, {3}, {1}) + "\x88" +
                           pk_global("collections", "OrderedDict") + ")Rt" + "R"},
                 {"q", pk_tensor("FloatStorage", "0", 4, 0, {2, 2}, {1, 2})},
                 {"_forward_module.r", pk_tensor("LongStorage", "1", 1, 0, {}, {})}});
    int64_t seven = 7;
    std::string i64(8, '\0');
    std::memcpy(i64.data(), &seven, 8);
    for (bool misalign : {false, true}) {
        write_bytes(path, make_zip({{"top/data.pkl", pkl},
                                    {"top/data/0", floats({1, 2, 3, 4})},
                                    {"top/data/1", i64}},
                                   misalign));
        const auto sd = io::load_pth(path);
        ASSERT_EQ(sd.size(), 3u);
        EXPECT_EQ(sd.at("p").to_vector(), (std::vector<double>{2, 3, 4}));
        EXPECT_EQ(sd.at("q").to_vector(), (std::vector<double>{1, 3, 2, 4}));
        EXPECT_TRUE(sd.at("p").shares_storage(sd.at("q")));
        EXPECT_EQ(sd.at("r").item(), 7.0);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(sd.at("q").raw_data()) % 4, 0u);
    }
}

TEST(Pth, ErrorsNameTheFileAndTheProblem) {
    TempDir dir("pth_err");
    const std::string path = dir.path("bad.pth");
    const std::string ok_tensor = pk_tensor("FloatStorage", "0", 4, 0, {4}, {1});
    const std::string data0 = floats({1, 2, 3, 4});
    auto with_pkl = [&](const std::string& pkl) {
        write_bytes(path, make_zip({{"a/data.pkl", pkl}, {"a/data/0", data0}}));
    };
    with_pkl(pk_dict({{"w", ok_tensor}}));
    EXPECT_EQ(io::load_pth(path).at("w").to_vector(), (std::vector<double>{1, 2, 3, 4}));

    with_pkl("\x80\x02}\xff.");
    expect_error([&] { io::load_pth(path); }, {"bad.pth", "opcode 0xff"});
    with_pkl("\x80\x02" + pk_global("os", "system") + ".");
    expect_error([&] { io::load_pth(path); }, {"bad.pth", "unsupported global 'os.system'"});
    with_pkl(pk_dict({{"w", pk_tensor("BoolStorage", "0", 4, 0, {4}, {1})}}));
    expect_error([&] { io::load_pth(path); }, {"torch.BoolStorage"});
    with_pkl(pk_dict({{"w", pk_tensor("FloatStorage", "0", 4, 1, {4}, {1})}}));
    expect_error([&] { io::load_pth(path); }, {"bad.pth", "storage too small"});
    with_pkl(pk_dict({{"w", pk_tensor("FloatStorage", "0", 4, 0, {3, 2}, {1, 2})}}));
    expect_error([&] { io::load_pth(path); }, {"storage too small"});
    with_pkl(pk_dict({{"w", pk_tensor("FloatStorage", "0", 5, 0, {5}, {1})}}));
    expect_error([&] { io::load_pth(path); }, {"storage '0'", "16 bytes"});
    with_pkl(pk_dict({{"w", pk_tensor("FloatStorage", "0", int64_t(1) << 30, 0, {4}, {1})}}));
    expect_error([&] { io::load_pth(path); }, {"storage '0'"});
    with_pkl(pk_dict({{"w", pk_tensor("FloatStorage", "9", 4, 0, {4}, {1})}}));
    expect_error([&] { io::load_pth(path); }, {"a/data/9"});
    with_pkl(pk_dict({{"w", pk_tensor("FloatStorage", "0", 4, 0, {1, 1, 1, 1, 1, 4},
                                      {4, 4, 4, 4, 4, 1})}}));
    expect_error([&] { io::load_pth(path); }, {"dimensions"});
    with_pkl(pk_dict({{"w", pk_tensor("FloatStorage", "0", 4, 0, {-1}, {1})}}));
    expect_error([&] { io::load_pth(path); }, {"negative"});
    with_pkl(pk_dict({{"w", pk_int(3)}}));
    expect_error([&] { io::load_pth(path); }, {"'w'", "not a tensor"});
    with_pkl("\x80\x02" + pk_str("x") + ".");
    expect_error([&] { io::load_pth(path); }, {"not a dict"});
    with_pkl("\x80\x02}(" + pk_str("w") + "u.");
    expect_error([&] { io::load_pth(path); }, {"odd number"});
    with_pkl("\x80\x02h\x05.");
    expect_error([&] { io::load_pth(path); }, {"memo"});
    with_pkl("\x80\x02t.");
    expect_error([&] { io::load_pth(path); }, {"MARK"});
    with_pkl("\x80\x02R.");
    expect_error([&] { io::load_pth(path); }, {"underflow"});

    write_bytes(path, make_zip({{"a/other", "x"}}));
    expect_error([&] { io::load_pth(path); }, {"bad.pth", "data.pkl"});
    write_bytes(path,
                make_zip({{"a/data.pkl", pk_dict({{"w", ok_tensor}}), 8}, {"a/data/0", data0}}));
    expect_error([&] { io::load_pth(path); }, {"bad.pth", "compressed"});
    write_bytes(path, "this is not a zip file at all, just some text that is long enough");
    expect_error([&] { io::load_pth(path); }, {"bad.pth", "zip"});
    write_bytes(path, "\x80\x02\x8a\x0alegacy torch pickle");
    expect_error([&] { io::load_pth(path); }, {"bad.pth", "legacy"});
    write_bytes(path, "");
    expect_error([&] { io::load_pth(path); }, {"bad.pth"});
    expect_error([&] { io::load_pth(dir.path("missing.pth")); }, {"missing.pth"});
    expect_error([&] { io::load_pth(dir.path("")); }, {"load_pth"});
}

// ---- corrupt files never crash ---------------------------------------------------------------

TEST(Pth, TruncatedFilesAreErrors) {
    TempDir dir("pth_trunc");
    for (const std::string& src : {fixture("torch_small.pth"), dir.path("ours.pth")}) {
        if (src == dir.path("ours.pth"))
            io::save_pth(src, {{"a", sample(Shape{5, 3}, DType::f32, 1)},
                               {"b", sample(Shape{4}, DType::bf16, 2)}});
        const std::string z = read_bytes(src);
        for (size_t n = 0; n < z.size(); n += (n < 64 || n + 200 > z.size()) ? 1 : 13) {
            write_bytes(dir.path("t.pth"), z.substr(0, n));
            EXPECT_THROW(io::load_pth(dir.path("t.pth")), Error) << src << " cut at " << n;
        }
    }
}

TEST(Pth, FlippedDirectoryBytesNeverCrash) {
    TempDir dir("pth_flip");
    const std::string z = read_bytes(fixture("torch_small.pth"));
    const auto [end, cd] = zip_directory(z);
    ASSERT_LT(cd, end);
    int errors = 0, total = 0;
    for (size_t i = cd; i < z.size(); ++i) {
        for (uint8_t x : {uint8_t(0xff), uint8_t(0x01)}) {
            std::string c = z;
            c[i] = char(uint8_t(c[i]) ^ x);
            write_bytes(dir.path("f.pth"), c);
            errors += !loads_or_errors(dir.path("f.pth"));
            ++total;
        }
    }
    EXPECT_GT(errors, total / 4);  // most flips are detected; none may crash
}

TEST(Pth, CorruptPicklesNeverCrash) {
    TempDir dir("pth_fuzz");
    // The data.pkl of a real save, re-zipped with a correct CRC after each mutation, so the
    // unpickler itself sees the damage.
    io::save_pth(dir.path("src.pth"), {{"a", sample(Shape{2, 3}, DType::f32, 1)},
                                       {"b", sample(Shape{3}, DType::bf16, 2)}});
    const std::string z = read_bytes(dir.path("src.pth"));
    const std::string path = dir.path("src.pth");
    const io::ByteView view{reinterpret_cast<const uint8_t*>(z.data()), z.size(), "test", &path};
    const io::ZipReader zip(view);
    std::vector<Entry> entries;
    for (const auto& e : zip.entries())
        entries.push_back({e.name, z.substr(zip.data_offset(e), e.size)});
    ASSERT_EQ(entries[0].name, "src/data.pkl");
    const std::string pkl = entries[0].data;
    auto try_pkl = [&](const std::string& p) {
        entries[0].data = p;
        write_bytes(dir.path("m.pth"), make_zip(entries));
        return loads_or_errors(dir.path("m.pth"));
    };
    EXPECT_TRUE(try_pkl(pkl));
    for (size_t n = 0; n < pkl.size(); ++n)
        EXPECT_FALSE(try_pkl(pkl.substr(0, n))) << "pickle cut at " << n;
    for (size_t i = 0; i < pkl.size(); ++i)
        for (uint8_t v : {uint8_t(0x00), uint8_t(0xff), uint8_t('('), uint8_t('t'), uint8_t('R'),
                          uint8_t('h'), uint8_t('.'), uint8_t(pkl[i] ^ 0x01)}) {
            std::string p = pkl;
            p[i] = char(v);
            try_pkl(p);  // must not crash; success or goose::Error are both fine
        }
    // Deep nesting and self-reference are torn down without recursion or leaks.
    try_pkl("\x80\x02" + std::string(200000, ']') + std::string(199999, 'a') + ".");
    EXPECT_FALSE(try_pkl(std::string("\x80\x02]q\x00h\x00a.", 9)));
}

// ---- PyTorch reads what we write -------------------------------------------------------------

TEST(Pth, TorchLoadsOurFiles) {
    if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "/usr/bin/python3 has no torch; skipping the PyTorch interop check";
    TempDir dir("pth_torch");
    io::StateDict sd;
    uint64_t seed = 10;
    for (DType dt : {DType::bf16, DType::f16, DType::f32, DType::f64, DType::i32, DType::i64,
                     DType::u8})
        sd["t." + std::string(dtype_name(dt))] = sample(Shape{3, 4}, dt, seed++);
    sd["strided"] = sample(Shape{4, 6}, DType::f32, 3).transpose(0, 1).slice(0, 1, 6, 2);
    sd["scalar"] = Tensor::scalar(0.75, DType::f32);
    sd["big_numel"] = Tensor::zeros(Shape{70000}, DType::u8);  // BININT for numel
    const std::string pth = dir.path("ours.pth"), out = dir.path("out.json");
    io::save_pth(pth, sd);
    write_bytes(dir.path("check.py"), R"(import json, sys, zipfile
import torch
path, out = sys.argv[1], sys.argv[2]
assert zipfile.ZipFile(path).testzip() is None
sd = torch.load(path, weights_only=True)
res = {"type": type(sd).__name__, "tensors": {}}
for k, v in sd.items():
    res["tensors"][k] = {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
                         "values": v.double().flatten().tolist()}
json.dump(res, open(out, "w"))
)");
    const std::string cmd = "/usr/bin/python3 " + dir.path("check.py") + " " + pth + " " + out;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const auto res = nlohmann::json::parse(read_bytes(out));
    EXPECT_EQ(res["type"], "OrderedDict");
    ASSERT_EQ(res["tensors"].size(), sd.size());
    for (const auto& [k, t] : sd) {
        SCOPED_TRACE(k);
        const auto& r = res["tensors"][k];
        EXPECT_EQ(dtype_from_torch(r["dtype"]), t.dtype());
        EXPECT_EQ(r["shape"].get<std::vector<int64_t>>(), t.shape().vec());
        EXPECT_EQ(r["values"].get<std::vector<double>>(), t.to_vector());
    }
}

}  // namespace
}  // namespace goose
