// Row walking for the reference kernels of the row-wise families (softmax, loss, norm): a row
// is the last axis of a tensor; its leading index picks it, in row-major order.
#pragma once
#include <cstdint>

#include "goose/core/element.h"
#include "goose/core/tensor.h"

namespace goose::ops::ref_rows {

// Shape of the leading dims of t (all but the last); [] for a 1-d tensor.
inline Shape leading_shape(const Shape& s) { return s.without(s.ndim() - 1); }

// Calls fn(row, lead) for every row of `s` (ndim >= 1): `row` counts rows in row-major order and
// `lead` is the row's index over the leading dims (ndim - 1 entries).
template <class Fn>
void for_each_row(const Shape& s, Fn&& fn) {
    int64_t row = 0;
    for_each_index(leading_shape(s), [&](const int64_t* lead) { fn(row++, lead); });
}

// Element offset of element 0 of the row `lead` of t (any strides).
inline int64_t row_offset(const Tensor& t, const int64_t* lead) {
    int64_t o = 0;
    for (int d = 0; d + 1 < t.ndim(); ++d) o += lead[d] * t.strides()[d];
    return o;
}

// Element j of the row starting at offset `base` of t, as double.
inline double at(const Tensor& t, int64_t base, int64_t j) {
    return load_as_double(t.raw_data(), t.dtype(), base + j * t.strides()[t.ndim() - 1]);
}

}  // namespace goose::ops::ref_rows
