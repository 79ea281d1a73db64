// Element types and their conversions (bf16 and f16 are stored as 16-bit patterns).
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>

namespace goose {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u16, u8 };

inline constexpr DType kAllDTypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16,
                                       DType::i32, DType::i64, DType::u16,  DType::u8};

constexpr size_t dtype_size(DType t) {
    switch (t) {
        case DType::f64: case DType::i64: return 8;
        case DType::f32: case DType::i32: return 4;
        case DType::bf16: case DType::f16: case DType::u16: return 2;
        case DType::u8: return 1;
    }
    return 0;
}

constexpr std::string_view dtype_name(DType t) {
    switch (t) {
        case DType::f32: return "f32";
        case DType::f64: return "f64";
        case DType::bf16: return "bf16";
        case DType::f16: return "f16";
        case DType::i32: return "i32";
        case DType::i64: return "i64";
        case DType::u16: return "u16";
        case DType::u8: return "u8";
    }
    return "?";
}

constexpr bool dtype_is_float(DType t) {
    return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16;
}

// Parses "f32", "bf16", ... ; throws goose::Error naming the valid names otherwise.
DType dtype_from_name(std::string_view name);

// The DType of a C++ element type.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint16_t> { static constexpr DType value = DType::u16; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };

// bf16: the upper half of an IEEE float32; rounding is to nearest even, NaN stays NaN.
inline uint16_t float_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_float(uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// f16: IEEE binary16, round to nearest even, with subnormals, infinities and NaN.
uint16_t float_to_f16(float f);
float f16_to_float(uint16_t h);

}  // namespace goose
