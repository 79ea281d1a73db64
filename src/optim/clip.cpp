// Gradient clipping by global L2 norm: a double-precision sum of squares, then in-place scaling.
#include "goose/optim/clip.h"

#include <cmath>

namespace goose::optim {

namespace {

constexpr int64_t kParallelMin = 32768;  // elements; below this one thread is faster

template <class T>
double sum_squares(const T* g, int64_t n) {
    double s = 0;
#pragma omp parallel for simd reduction(+ : s) schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(g[i]) * static_cast<double>(g[i]);
    return s;
}

template <class T>
void scale(T* g, int64_t n, T k) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) g[i] *= k;
}

void check_grad(const Tensor& g) {
    if (g.dtype() != DType::f32 && g.dtype() != DType::f64)
        fail("clip_grad_norm: gradient {} must be f32 or f64", g.desc());
    if (!g.device().is_cpu()) fail("clip_grad_norm: gradient {} is not on the CPU", g.desc());
}

}  // namespace

double grad_norm(const std::vector<Var>& params) {
    double total = 0;
    for (const Var& p : params) {
        if (!p.defined() || !p.grad().defined()) continue;
        check_grad(p.grad());
        const Tensor g = p.grad().contiguous();
        total += g.dtype() == DType::f32 ? sum_squares(g.data<float>(), g.numel())
                                         : sum_squares(g.data<double>(), g.numel());
    }
    return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Var>& params, double max_norm) {
    if (!(max_norm >= 0)) fail("clip_grad_norm: max_norm must be >= 0, got {}", max_norm);
    const double norm = grad_norm(params);
    if (!(norm > max_norm)) return norm;
    const double k = max_norm / (norm + 1e-6);
    for (const Var& p : params) {
        if (!p.defined() || !p.grad().defined()) continue;
        Var v = p;
        Tensor& g = v.grad_mut();
        // Leaves own their gradient; a strided one is replaced by a packed copy first.
        if (!g.is_contiguous()) g = g.clone();
        if (g.dtype() == DType::f32)
            scale(g.data<float>(), g.numel(), static_cast<float>(k));
        else
            scale(g.data<double>(), g.numel(), k);
    }
    return norm;
}

}  // namespace goose::optim
