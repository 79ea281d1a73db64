// Shape and Strides: up to kMaxDims dimensions, stored inline (no heap).
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace goose {

inline constexpr int kMaxDims = 5;

// A small inline array of int64 used for both shapes (sizes) and strides (in elements).
class Dims {
public:
    Dims() = default;
    Dims(std::initializer_list<int64_t> d);
    explicit Dims(std::span<const int64_t> d);
    explicit Dims(const std::vector<int64_t>& d) : Dims(std::span<const int64_t>(d)) {}

    int ndim() const { return n_; }
    int64_t operator[](int i) const { return d_[static_cast<size_t>(i)]; }
    int64_t& operator[](int i) { return d_[static_cast<size_t>(i)]; }
    // Dimension counted from the end when negative: dim(-1) is the last one.
    int64_t dim(int i) const;
    const int64_t* begin() const { return d_.data(); }
    const int64_t* end() const { return d_.data() + n_; }
    std::vector<int64_t> vec() const { return {begin(), end()}; }

    int64_t numel() const;  // product of sizes (1 for a scalar of 0 dims)
    void push_back(int64_t v);
    Dims without(int i) const;                 // drops dimension i
    Dims with_inserted(int i, int64_t v) const;  // inserts v before position i
    std::string str() const;                   // "[2, 3, 4]"

    bool operator==(const Dims& o) const;
    bool operator!=(const Dims& o) const { return !(*this == o); }

private:
    std::array<int64_t, kMaxDims> d_{};
    int n_ = 0;
};

using Shape = Dims;
using Strides = Dims;

// Row-major (C-order) strides of a shape, in elements.
Strides contiguous_strides(const Shape& s);
// Normalises a possibly negative axis against ndim; throws goose::Error (naming op) if out of range.
int normalize_axis(int axis, int ndim, const char* op);
// NumPy broadcasting of two shapes; throws goose::Error naming op and both shapes if incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace goose
