// Element-level helpers for slow, generic code (references, tests, I/O): read/write one element
// of any dtype as double, and walk every index of a shape in row-major order.
#pragma once
#include <cstdint>

#include "goose/core/dtype.h"
#include "goose/core/shape.h"

namespace goose {

inline double load_as_double(const void* base, DType t, int64_t i) {
    switch (t) {
        case DType::f32: return static_cast<const float*>(base)[i];
        case DType::f64: return static_cast<const double*>(base)[i];
        case DType::bf16: return bf16_to_float(static_cast<const uint16_t*>(base)[i]);
        case DType::f16: return f16_to_float(static_cast<const uint16_t*>(base)[i]);
        case DType::i32: return static_cast<const int32_t*>(base)[i];
        case DType::i64: return static_cast<double>(static_cast<const int64_t*>(base)[i]);
        case DType::u16: return static_cast<const uint16_t*>(base)[i];
        case DType::u8: return static_cast<const uint8_t*>(base)[i];
    }
    return 0;
}

inline void store_from_double(void* base, DType t, int64_t i, double v) {
    switch (t) {
        case DType::f32: static_cast<float*>(base)[i] = static_cast<float>(v); break;
        case DType::f64: static_cast<double*>(base)[i] = v; break;
        case DType::bf16: static_cast<uint16_t*>(base)[i] = float_to_bf16(static_cast<float>(v)); break;
        case DType::f16: static_cast<uint16_t*>(base)[i] = float_to_f16(static_cast<float>(v)); break;
        case DType::i32: static_cast<int32_t*>(base)[i] = static_cast<int32_t>(v); break;
        case DType::i64: static_cast<int64_t*>(base)[i] = static_cast<int64_t>(v); break;
        case DType::u16: static_cast<uint16_t*>(base)[i] = static_cast<uint16_t>(v); break;
        case DType::u8: static_cast<uint8_t*>(base)[i] = static_cast<uint8_t>(v); break;
    }
}

// Calls fn(idx) for every multi-index of `shape` in row-major order (idx has shape.ndim() entries).
template <class Fn>
void for_each_index(const Shape& shape, Fn&& fn) {
    const int n = shape.ndim();
    int64_t idx[kMaxDims] = {0, 0, 0, 0, 0};
    if (shape.numel() == 0) return;
    while (true) {
        fn(static_cast<const int64_t*>(idx));
        int d = n - 1;
        while (d >= 0) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
            --d;
        }
        if (d < 0) return;
    }
}

// Element offset of a multi-index under strides.
inline int64_t offset_of(const int64_t* idx, const Strides& st) {
    int64_t o = 0;
    for (int d = 0; d < st.ndim(); ++d) o += idx[d] * st[d];
    return o;
}

}  // namespace goose
