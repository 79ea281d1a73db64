// The inference engine's weight matrices: (rows, cols) row-major ([out, in], y = W x) in one of
// f32, bf16 or int8 with a per-row (per output channel) symmetric scale, in 64-byte aligned
// buffers advised for huge pages (a decode step streams every byte of them).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "goose/core/tensor.h"
#include "goose/infer/engine.h"

namespace goose::infer::detail {

// Uninitialised bytes, 64-byte aligned; 2 MiB aligned and madvise(MADV_HUGEPAGE) from 4 MiB.
class AlignedBytes {
public:
    AlignedBytes() = default;
    explicit AlignedBytes(size_t n);
    void* data() const { return p_.get(); }
    size_t size() const { return n_; }

private:
    struct Free {
        void operator()(void* p) const { std::free(p); }
    };
    std::unique_ptr<void, Free> p_;
    size_t n_ = 0;
};

// A float scratch array that only grows (no allocation once it is large enough).
class Scratch {
public:
    float* get(size_t n);  // at least n floats, contents unspecified
private:
    AlignedBytes buf_;
};

struct QMatrix {
    WeightFormat format = WeightFormat::f32;
    int64_t rows = 0, cols = 0;
    AlignedBytes data;          // rows * cols of float / bf16 bits / int8
    std::vector<float> scale;  // int8 only: row r is q[r, :] * scale[r]

    const float* f32() const { return static_cast<const float*>(data.data()); }
    const uint16_t* bf16() const { return static_cast<const uint16_t*>(data.data()); }
    const int8_t* i8() const { return static_cast<const int8_t*>(data.data()); }
    bool empty() const { return rows == 0; }
    int64_t bytes() const;  // weights + scales: what a GEMV reads
    // Rows [r0, r1) widened to f32 into out (ld = cols).
    void rows_to_f32(int64_t r0, int64_t r1, float* out) const;
};

// src (rows, cols) of any float dtype, any strides -> the matrix in `format`. int8: scale =
// max|row| / 127 (1 for an all-zero row), q = round-half-even(w / scale) in [-127, 127].
QMatrix make_matrix(const Tensor& src, WeightFormat format);

}  // namespace goose::infer::detail
