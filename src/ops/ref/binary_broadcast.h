// Broadcast indexing for the reference kernels: where an element of the broadcast output reads
// each operand (and, with packed strides, where a gradient element accumulates).
#pragma once
#include <cstdint>
#include <vector>

#include "goose/core/element.h"
#include "goose/core/tensor.h"

namespace goose::ops::ref {

// Element offset in a tensor of `shape`/`strides` (aligned to the right of an n-d output) of
// output index idx: broadcast dims (size 1) read element 0.
inline int64_t broadcast_offset(const int64_t* idx, int n, const Shape& shape,
                                const Strides& strides) {
    const int lead = n - shape.ndim();
    int64_t o = 0;
    for (int d = 0; d < shape.ndim(); ++d)
        if (shape[d] != 1) o += idx[d + lead] * strides[d];
    return o;
}

inline int64_t broadcast_offset(const int64_t* idx, int n, const Tensor& t) {
    return broadcast_offset(idx, n, t.shape(), t.strides());
}

// The gradient of a broadcast operand: add(idx) at output index idx accumulates (in double)
// at the operand element that idx read; take() makes the tensor.
struct GradAcc {
    Shape shape;
    Strides packed;
    std::vector<double> v;
    explicit GradAcc(const Shape& s)
        : shape(s), packed(contiguous_strides(s)), v(static_cast<size_t>(s.numel()), 0.0) {}
    void add(const int64_t* idx, int n, double g) {
        v[static_cast<size_t>(broadcast_offset(idx, n, shape, packed))] += g;
    }
    Tensor take(DType dt) const {
        Tensor t = Tensor::empty(shape, dt);
        for (size_t i = 0; i < v.size(); ++i)
            store_from_double(t.raw_data(), dt, static_cast<int64_t>(i), v[i]);
        return t;
    }
};

}  // namespace goose::ops::ref
