// Helpers shared by the checkpoint/array file tests: a temporary folder, raw file bytes, tensors
// with exactly representable values of every dtype, and value comparisons.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/expect_error.h"
#include "goose/core/error.h"
#include "goose/core/rng.h"
#include "goose/core/tensor.h"

namespace goose::iotest {

class TempDir {
public:
    explicit TempDir(const std::string& name)
        : dir_(std::filesystem::temp_directory_path() /
               ("goose_" + name + "_" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    ~TempDir() { std::filesystem::remove_all(dir_); }
    std::string path(const std::string& file) const { return (dir_ / file).string(); }

private:
    std::filesystem::path dir_;
};

inline std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
}

// Values exactly representable in every float dtype; integers in range for integer dtypes.
inline Tensor sample(const Shape& shape, DType dt, uint64_t seed) {
    Rng rng(seed, "io_test");
    Tensor t = Tensor::empty(shape, dt);
    std::vector<double> v(static_cast<size_t>(t.numel()));
    for (auto& x : v) {
        switch (dt) {
            case DType::u8: x = double(rng.randint(0, 256)); break;
            case DType::u16: x = double(rng.randint(0, 65536)); break;
            case DType::i32: x = double(rng.randint(-2000000000, 2000000000)); break;
            case DType::i64: x = double(rng.randint(-(int64_t(1) << 50), int64_t(1) << 50)); break;
            default: x = double(rng.randint(-512, 512)) / 64.0; break;  // exact in bf16/f16
        }
    }
    return Tensor::from(shape, v, dt);
}

inline void expect_same(const Tensor& got, const Tensor& want, const std::string& what) {
    ASSERT_TRUE(got.defined()) << what;
    EXPECT_EQ(got.dtype(), want.dtype()) << what;
    ASSERT_EQ(got.shape(), want.shape()) << what << ": " << got.desc() << " vs " << want.desc();
    EXPECT_EQ(got.to_vector(), want.to_vector()) << what;
}

using goose::test::expect_error;

}  // namespace goose::iotest
