// Helpers for the CUDA op tests (tests/cuda/test_cuda_*.cpp): inputs made on the CPU, copies
// on the GPU in f32 or bf16, the same op on the fast CPU backend as the reference (on the
// bf16-rounded inputs for bf16), and an elementwise comparison with stated tolerances.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "cuda/cuda_test_util.h"  // GOOSE_REQUIRE_GPU
#include "goose/core/rng.h"
#include "goose/core/tensor.h"

namespace goose::test::cuda_ops {

// A float tensor on the GPU in dtype dt (index and mask tensors keep their dtype).
inline Tensor gpu(const Tensor& t, DType dt) {
    const bool is_float = t.dtype() == DType::f32 || t.dtype() == DType::f64;
    return (is_float ? t.to(dt) : t).to(Device::cuda());
}
inline Tensor gpu(const Tensor& t) {
    return t.to(Device::cuda());
}

// What the GPU sees, as an f32 CPU tensor (x rounded to dt and back).
inline Tensor as_seen(const Tensor& t, DType dt) {
    return t.to(dt).to(DType::f32);
}

// A GPU result as an f32 CPU tensor.
inline Tensor host(const Tensor& t) {
    const Tensor c = t.to(Device::cpu());
    return c.dtype() == DType::f32 ? c : c.to(DType::f32);
}

inline Tensor randn(const Shape& s, uint64_t seed, double mean = 0, double std = 1) {
    Rng r(seed, "cuda-ops-test");
    return Tensor::randn(s, r, DType::f32, mean, std);
}
inline Tensor uniform(const Shape& s, uint64_t seed, double lo, double hi) {
    Rng r(seed, "cuda-ops-test");
    return Tensor::uniform(s, r, DType::f32, lo, hi);
}

// |got - want| <= atol + rtol |want| everywhere (and the same non-finite values).
inline void expect_close(const Tensor& got_t, const Tensor& want_t, double atol, double rtol,
                         const std::string& what) {
    ASSERT_TRUE(got_t.defined()) << what;
    ASSERT_TRUE(want_t.defined()) << what;
    ASSERT_EQ(got_t.shape(), want_t.shape()) << what;
    const auto got = host(got_t).to_vector(), want = want_t.to(DType::f32).to_vector();
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        const double g = got[i], w = want[i];
        if (!std::isfinite(w) || !std::isfinite(g)) {
            const bool same = (std::isnan(w) && std::isnan(g)) || w == g;
            if (!same && bad++ < 5)
                ADD_FAILURE() << what << "[" << i << "]: want " << w << " got " << g;
            continue;
        }
        const double d = std::abs(g - w);
        worst = std::max(worst, d);
        if (d > atol + rtol * std::abs(w) && bad++ < 5)
            ADD_FAILURE() << what << "[" << i << "]: want " << w << " got " << g << " |d| " << d;
    }
    EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << want.size() << " elements outside atol "
                      << atol << " rtol " << rtol << " (worst |d| " << worst << ")";
}

// Tolerances: f32 kernels differ from the CPU ones by summation order only; bf16 results are
// rounded to 8 mantissa bits (relative step 2^-8) on top of f32 math.
struct Tol {
    double atol, rtol;
};
inline Tol tol_for(DType dt, double f32_atol = 1e-5, double f32_rtol = 1e-4) {
    return dt == DType::bf16 ? Tol{1e-2, 1.6e-2} : Tol{f32_atol, f32_rtol};
}

inline const char* dname(DType dt) {
    return dt == DType::bf16 ? "bf16" : "f32";
}

}  // namespace goose::test::cuda_ops
