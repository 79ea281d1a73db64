// DType names and IEEE half-precision conversion.
#include "goose/core/dtype.h"

#include <cmath>

#include "goose/core/error.h"

namespace goose {

DType dtype_from_name(std::string_view name) {
    for (DType t : kAllDTypes)
        if (dtype_name(t) == name) return t;
    fail("unknown dtype '{}': valid dtypes are f32, f64, bf16, f16, i32, i64, u16, u8", name);
}

uint16_t float_to_f16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
    if (abs < 0x38800000u) {
        // Subnormal (or zero) in f16: value = m * 2^-24 with m rounded to nearest even.
        float a;
        std::memcpy(&a, &abs, 4);
        const float scaled = a * 16777216.0f;  // 2^24, exact
        const float r = std::nearbyint(scaled);  // default rounding mode: to nearest even
        return static_cast<uint16_t>(sign | static_cast<uint32_t>(r));
    }
    // Normal: re-bias the exponent, round the 13 dropped mantissa bits to nearest even.
    uint32_t v = abs - 0x38000000u;  // exponent bias 127 -> 15
    v += 0x0fffu + ((v >> 13) & 1u);
    return static_cast<uint16_t>(sign | (v >> 13));
}

float f16_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        const float v = std::ldexp(static_cast<float>(man), -24);
        std::memcpy(&u, &v, 4);
        u |= sign;
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

}  // namespace goose
