// NumPy .npy: round trips of every supported dtype, header layout, NumPy interop (when
// /usr/bin/python3 has numpy), and malformed or truncated files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "goose/io/npy.h"
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

std::string npy_file(const std::string& header, const std::string& data) {
    std::string f = std::string("\x93NUMPY\x01", 7) + std::string(1, '\0');
    io::put_u16(f, uint16_t(header.size()));
    return f + header + data;
}

TEST(Npy, RoundTripsEveryDTypeAndShape) {
    TempDir dir("npy_rt");
    const std::string path = dir.path("a.npy");
    uint64_t seed = 1;
    for (DType dt : {DType::f32, DType::f64, DType::f16, DType::i32, DType::i64, DType::u16,
                     DType::u8}) {
        for (const Shape& s : {Shape{}, Shape{1}, Shape{7}, Shape{3, 5}, Shape{0, 2},
                               Shape{2, 1, 3, 1, 2}}) {
            const Tensor t = sample(s, dt, seed++);
            io::save_npy(path, t);
            const std::string f = read_bytes(path);
            EXPECT_EQ(f.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
            uint16_t hlen = 0;
            std::memcpy(&hlen, f.data() + 8, 2);
            EXPECT_EQ((10 + hlen) % 64, 0);
            EXPECT_EQ(f[10 + hlen - 1], '\n');
            expect_same(io::load_npy(path), t, std::string(dtype_name(dt)) + s.str());
        }
    }
    const Tensor m = sample(Shape{4, 6}, DType::f32, 77);
    io::save_npy(path, m.transpose(0, 1).slice(1, 1, 4));
    expect_same(io::load_npy(path), m.transpose(0, 1).slice(1, 1, 4), "strided");
    EXPECT_NE(read_bytes(path).find("'shape': (6, 3), "), std::string::npos);
    io::save_npy(path, Tensor::zeros(Shape{5}));
    EXPECT_NE(read_bytes(path).find("'descr': '<f4', 'fortran_order': False, 'shape': (5,), }"),
              std::string::npos);
}

TEST(Npy, Errors) {
    TempDir dir("npy_err");
    const std::string path = dir.path("bad.npy");
    expect_error([&] { io::save_npy(path, Tensor::zeros(Shape{2}, DType::bf16)); },
                 {"save_npy", "bad.npy", "bf16"});
    expect_error([&] { io::save_npy(path, Tensor()); }, {"undefined"});
    const std::string d8(8, '\0');
    auto load = [&](const std::string& header, const std::string& data) {
        write_bytes(path, npy_file(header, data));
        io::load_npy(path);
    };
    EXPECT_NO_THROW(load("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", d8));
    EXPECT_NO_THROW(load("{\"shape\": (2,), \"descr\": \"=i4\", \"fortran_order\": False}", d8));
    expect_error([&] { load("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", d8); },
                 {"bad.npy", "fortran_order"});
    expect_error([&] { load("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", d8); },
                 {"'>f4'"});
    expect_error([&] { load("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", d8); },
                 {"'<c8'"});
    expect_error([&] { load("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", d8); },
                 {"needs 12 data bytes", "has 8"});
    expect_error([&] { load("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", d8); },
                 {"malformed header"});
    expect_error([&] { load("{'descr': '<f4', 'shape': (2,), }", d8); }, {"fortran_order"});
    expect_error([&] { load("{'descr': '<f4', 'fortran_order': Nope, 'shape': (2,)}", d8); },
                 {"malformed"});
    expect_error([&] { load("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                            d8); },
                 {"unexpected key 'x'"});
    expect_error([&] { load("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", d8); },
                 {"malformed"});
    expect_error(
        [&] { load("{'descr': '|u1', 'fortran_order': False, 'shape': (1,1,1,1,1,1), }", d8); },
        {"dimensions"});
    expect_error([&] {
        load("{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999,"
             "99999999999999), }", d8);
    }, {"absurd"});
    write_bytes(path, "not an npy file");
    expect_error([&] { io::load_npy(path); }, {"bad.npy", "magic"});
    std::string f = npy_file("{}", "");
    f[8] = '\xff';
    f[9] = '\xff';  // header length 65535 in a tiny file
    write_bytes(path, f);
    expect_error([&] { io::load_npy(path); }, {"bad.npy", "header"});
    f[6] = 9;
    write_bytes(path, f);
    expect_error([&] { io::load_npy(path); }, {"version 9"});
    expect_error([&] { io::load_npy(dir.path("missing.npy")); }, {"missing.npy"});
}

TEST(Npy, TruncatedAndFlippedFilesNeverCrash) {
    TempDir dir("npy_fuzz");
    const std::string src = dir.path("src.npy"), path = dir.path("m.npy");
    io::save_npy(src, sample(Shape{3, 4}, DType::f64, 5));
    const std::string f = read_bytes(src);
    for (size_t n = 0; n < f.size(); ++n) {
        write_bytes(path, f.substr(0, n));
        EXPECT_THROW(io::load_npy(path), Error) << "cut at " << n;
    }
    for (size_t i = 0; i < 128; ++i) {
        std::string c = f;
        c[i] = char(uint8_t(c[i]) ^ 0x5a);
        write_bytes(path, c);
        try {
            io::load_npy(path);
        } catch (const Error&) {
        }
    }
}

TEST(Npy, NumpyInterop) {
    if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "/usr/bin/python3 has no numpy; skipping the NumPy interop check";
    TempDir dir("npy_numpy");
    const Tensor t = sample(Shape{3, 4}, DType::f16, 3);
    io::save_npy(dir.path("ours.npy"), t);
    const std::string cmd =
        "/usr/bin/python3 -c \"import numpy as np; a = np.load('" + dir.path("ours.npy") +
        "'); assert a.dtype == np.float16 and a.shape == (3, 4); "
        "np.save('" + dir.path("back.npy") + "', (a.astype(np.float64) * 2)); "
        "np.save('" + dir.path("i.npy") + "', np.arange(6, dtype=np.int64).reshape(2, 3).T)\"";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const Tensor back = io::load_npy(dir.path("back.npy"));
    EXPECT_EQ(back.dtype(), DType::f64);
    std::vector<double> want = t.to_vector();
    for (auto& v : want) v *= 2;
    EXPECT_EQ(back.to_vector(), want);
    // .T of a C-order array is Fortran-contiguous: NumPy saves it with fortran_order True,
    // which load_npy rejects.
    EXPECT_THROW(io::load_npy(dir.path("i.npy")), Error);
}

}  // namespace
}  // namespace goose
