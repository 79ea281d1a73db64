// safetensors: round trips of every dtype, header layout, misaligned payloads, and corrupt files
// (truncated, absurd header lengths, malformed headers, flipped bytes) that must never crash.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstring>

#include "goose/io/safetensors.h"
#include "io/le_bytes.h"
#include "io_test_util.h"

namespace goose {
namespace {

using iotest::expect_error;
using iotest::expect_same;
using iotest::read_bytes;
using iotest::sample;
using iotest::TempDir;
using iotest::write_bytes;

// A file from a header (padded with `pad` spaces) and a data section.
std::string make_file(const std::string& header, const std::string& data, size_t pad = 0) {
    std::string h = header + std::string(pad, ' ');
    std::string f;
    io::put_u64(f, h.size());
    return f + h + data;
}

bool loads_or_errors(const std::string& path) {
    try {
        io::load_safetensors(path);
        return true;
    } catch (const Error&) {
        return false;
    }
}

TEST(Safetensors, RoundTripsEveryDType) {
    TempDir dir("st_rt");
    io::StateDict sd;
    uint64_t seed = 1;
    for (DType dt : kAllDTypes)
        sd["x." + std::string(dtype_name(dt))] = sample(Shape{3, 5}, dt, seed++);
    Tensor m = sample(Shape{4, 6}, DType::f32, 50);
    sd["strided"] = m.transpose(0, 1).slice(0, 1, 6, 2);
    sd["scalar"] = Tensor::scalar(1.5, DType::f64);
    sd["empty"] = Tensor::zeros(Shape{0, 4}, DType::bf16);
    sd["odd"] = sample(Shape{3}, DType::u8, 9);  // 3 bytes: would misalign what follows
    const std::string path = dir.path("m.safetensors");
    io::save_safetensors(path, sd, {{"format", "pt"}, {"note", "goose test"}});
    const auto back = io::load_safetensors(path);
    ASSERT_EQ(back.size(), sd.size());
    for (const auto& [k, t] : sd) {
        ASSERT_TRUE(back.count(k)) << k;
        expect_same(back.at(k), t, k);
        // Laid out by decreasing element size: every view of the mapping is aligned.
        EXPECT_EQ(reinterpret_cast<uintptr_t>(back.at(k).raw_data()) % dtype_size(t.dtype()), 0u)
            << k;
    }
    const std::string f = read_bytes(path);
    uint64_t hlen = 0;
    std::memcpy(&hlen, f.data(), 8);
    EXPECT_EQ(hlen % 8, 0u);
    const auto header = nlohmann::json::parse(f.substr(8, hlen));
    EXPECT_EQ(header["__metadata__"]["format"], "pt");
    EXPECT_EQ(header["x.bf16"]["dtype"], "BF16");
    EXPECT_EQ(header["x.u16"]["dtype"], "U16");
    EXPECT_EQ(header["strided"]["shape"], nlohmann::json({3, 4}));
}

TEST(Safetensors, MisalignedPayloadsAreCopied) {
    TempDir dir("st_mis");
    float v[3] = {1.5f, -2.f, 8.f};
    std::string data = "\x07" + std::string(reinterpret_cast<const char*>(v), 12);
    const std::string header =
        R"({"__metadata__":{"a":"b"},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
        R"("f":{"dtype":"F32","shape":[3],"data_offsets":[1,13]}})";
    // Header padded to a multiple of 8, so the F32 payload at data offset 1 is misaligned.
    write_bytes(dir.path("a.safetensors"), make_file(header, data, (8 - header.size() % 8) % 8));
    const auto sd = io::load_safetensors(dir.path("a.safetensors"));
    EXPECT_EQ(sd.at("f").to_vector(), (std::vector<double>{1.5, -2, 8}));
    EXPECT_EQ(sd.at("b").item(), 7.0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(sd.at("f").raw_data()) % 4, 0u);
}

TEST(Safetensors, MalformedHeadersAreErrors) {
    TempDir dir("st_err");
    const std::string path = dir.path("bad.safetensors");
    const std::string data(16, '\0');
    auto load_header = [&](const std::string& header) {
        write_bytes(path, make_file(header, data));
        io::load_safetensors(path);
    };
    auto t = [](const std::string& body) { return R"({"w":)" + body + "}"; };
    expect_error([&] { load_header("{not json"); }, {"bad.safetensors", "JSON"});
    expect_error([&] { load_header("[1,2]"); }, {"not a JSON object"});
    expect_error([&] { load_header(t("3")); }, {"'w'"});
    expect_error([&] { load_header(t(R"({"dtype":"F32","shape":[2]})")); },
                 {"'w'", "data_offsets"});
    expect_error([&] { load_header(t(R"({"dtype":"BOOL","shape":[2],"data_offsets":[0,2]})")); },
                 {"'w'", "BOOL"});
    expect_error([&] { load_header(t(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})")); },
                 {"shape"});
    expect_error([&] { load_header(t(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})")); },
                 {"shape"});
    expect_error([&] { load_header(t(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})")); },
                 {"'w'", "12 bytes", "span 8"});
    expect_error([&] { load_header(t(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})")); },
                 {"data_offsets"});
    expect_error([&] { load_header(t(R"({"dtype":"F32","shape":[6],"data_offsets":[0,24]})")); },
                 {"outside the data section of 16 bytes"});
    expect_error([&] { load_header(t(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})")); },
                 {"data_offsets"});
    expect_error(
        [&] { load_header(t(R"({"dtype":"U8","shape":[1,1,1,1,1,1],"data_offsets":[0,1]})")); },
        {"dimensions"});
    expect_error([&] {
        load_header(t(R"({"dtype":"U8","shape":[4294967296,4294967296,4294967296],)"
                      R"("data_offsets":[0,1]})"));
    }, {"absurd"});
    // Absurd header lengths.
    for (uint64_t h : {uint64_t(1) << 63, uint64_t(1) << 40, uint64_t(100'000'001), uint64_t(17)}) {
        std::string f;
        io::put_u64(f, h);
        f += "{}       ";
        write_bytes(path, f);
        expect_error([&] { io::load_safetensors(path); }, {"bad.safetensors", "header length"});
    }
    write_bytes(path, "abc");
    expect_error([&] { io::load_safetensors(path); }, {"bad.safetensors"});
    expect_error([&] { io::load_safetensors(dir.path("missing")); }, {"missing"});
    // Saving a reserved name or an undefined tensor.
    expect_error([&] { io::save_safetensors(path, {{"__metadata__", Tensor::zeros(Shape{1})}}); },
                 {"reserved"});
    expect_error([&] { io::save_safetensors(path, {{"w", Tensor()}}); }, {"'w'", "undefined"});
}

TEST(Safetensors, CorruptFilesNeverCrash) {
    TempDir dir("st_fuzz");
    const std::string src = dir.path("src.safetensors");
    io::save_safetensors(src, {{"a", sample(Shape{2, 3}, DType::f32, 1)},
                               {"b", sample(Shape{5}, DType::bf16, 2)},
                               {"c", sample(Shape{2}, DType::i64, 3)}},
                         {{"k", "v"}});
    const std::string f = read_bytes(src);
    uint64_t hlen = 0;
    std::memcpy(&hlen, f.data(), 8);
    const std::string path = dir.path("m.safetensors");
    for (size_t n = 0; n < f.size(); ++n) {
        write_bytes(path, f.substr(0, n));
        EXPECT_THROW(io::load_safetensors(path), Error) << "cut at " << n;
    }
    int errors = 0;
    for (size_t i = 0; i < 8 + hlen; ++i)
        for (uint8_t x : {uint8_t(0xff), uint8_t(0x01), uint8_t(0x20)}) {
            std::string c = f;
            c[i] = char(uint8_t(c[i]) ^ x);
            write_bytes(path, c);
            errors += !loads_or_errors(path);
        }
    EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace goose
