// Weight storage of the inference engine: aligned buffers, format conversion, widening.
#include "engine_weights.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "goose/core/dtype.h"
#include "ops/cpu/simd.h"

namespace goose::infer::detail {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kHugeFrom = size_t(4) << 20;
}  // namespace

AlignedBytes::AlignedBytes(size_t n) : n_(n) {
    if (n == 0) return;
    const size_t align = n >= kHugeFrom ? kHugePage : 64;
    const size_t padded = (n + align - 1) / align * align;
    void* p = std::aligned_alloc(align, padded);
    if (!p) throw std::bad_alloc();
    if (n >= kHugeFrom) madvise(p, padded, MADV_HUGEPAGE);  // advice only: failure is harmless
    p_.reset(p);
}

float* Scratch::get(size_t n) {
    if (buf_.size() < n * sizeof(float)) buf_ = AlignedBytes(std::max<size_t>(n, 16) * sizeof(float));
    return static_cast<float*>(buf_.data());
}

int64_t QMatrix::bytes() const {
    const int64_t elem = format == WeightFormat::f32 ? 4 : format == WeightFormat::bf16 ? 2 : 1;
    return rows * cols * elem + static_cast<int64_t>(scale.size() * sizeof(float));
}

void QMatrix::rows_to_f32(int64_t r0, int64_t r1, float* out) const {
    const int64_t n = cols;
    for (int64_t r = r0; r < r1; ++r) {
        float* o = out + (r - r0) * n;
        int64_t i = 0;
        switch (format) {
            case WeightFormat::f32:
                std::memcpy(o, f32() + r * n, sizeof(float) * static_cast<size_t>(n));
                break;
            case WeightFormat::bf16: {
                const uint16_t* w = bf16() + r * n;
                for (; i + simd::kLanes <= n; i += simd::kLanes)
                    simd::store(o + i, simd::load_bf16(w + i));
                for (; i < n; ++i) o[i] = simd::bf16_to_f32(w[i]);
                break;
            }
            case WeightFormat::int8: {
                const int8_t* w = i8() + r * n;
                const simd::VecF s = simd::broadcast(scale[static_cast<size_t>(r)]);
                for (; i + simd::kLanes <= n; i += simd::kLanes)
                    simd::store(o + i, simd::mul(simd::load_i8(w + i), s));
                for (; i < n; ++i) o[i] = static_cast<float>(w[i]) * scale[static_cast<size_t>(r)];
                break;
            }
        }
    }
}

QMatrix make_matrix(const Tensor& src, WeightFormat format) {
    GOOSE_ASSERT(src.ndim() == 2, "make_matrix: {}", src.desc());
    const Tensor w = src.to(DType::f32).contiguous();
    QMatrix m;
    m.format = format;
    m.rows = w.size(0);
    m.cols = w.size(1);
    const int64_t n = m.cols;
    const float* p = w.data<float>();
    const size_t count = static_cast<size_t>(m.rows * n);
    switch (format) {
        case WeightFormat::f32:
            m.data = AlignedBytes(count * sizeof(float));
            if (count) std::memcpy(m.data.data(), p, count * sizeof(float));
            break;
        case WeightFormat::bf16: {
            m.data = AlignedBytes(count * sizeof(uint16_t));
            auto* q = static_cast<uint16_t*>(m.data.data());
            for (size_t i = 0; i < count; ++i) q[i] = float_to_bf16(p[i]);
            break;
        }
        case WeightFormat::int8: {
            m.data = AlignedBytes(count);
            m.scale.resize(static_cast<size_t>(m.rows));
            auto* q = static_cast<int8_t*>(m.data.data());
            for (int64_t r = 0; r < m.rows; ++r) {
                const float* row = p + r * n;
                float amax = 0;
                for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(row[i]));
                const float s = amax > 0 ? amax / 127.f : 1.f;
                m.scale[static_cast<size_t>(r)] = s;
                for (int64_t i = 0; i < n; ++i) {
                    const float v = std::nearbyint(row[i] / s);  // half to even
                    q[r * n + i] = v == v ? static_cast<int8_t>(std::clamp(v, -127.f, 127.f)) : 0;
                }
            }
            break;
        }
    }
    return m;
}

}  // namespace goose::infer::detail
