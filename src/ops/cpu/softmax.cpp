// Fast CPU softmax and log_softmax: packed rows, rows in parallel (OpenMP), the row max and the
// row sums through the simd.h helpers (cpu/rows.h); f32 and f64.
#include <cmath>

#include "goose/ops/softmax.h"
#include "ops/cpu/rows.h"

namespace goose::ops {

namespace {
using cpu_rows::kParallelMin;

template <class T>
void forward_typed(const T* x, T* y, int64_t rows, int64_t c, bool log) {
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        const T m = cpu_rows::max_of(xr, c);
        const T s = cpu_rows::exp_shifted(xr, m, yr, c);  // yr = exp(x - m)
        if (log) {
            // (x - m) - log s: x - m is exact near the max, m + log s would round at large m
            const T log_s = std::log(s);
            for (int64_t j = 0; j < c; ++j) yr[j] = (xr[j] - m) - log_s;
        } else {
            const T inv = T(1) / s;
            for (int64_t j = 0; j < c; ++j) yr[j] *= inv;
        }
    }
}

template <class T>
void softmax_backward_typed(const T* gy, const T* y, T* dx, int64_t rows, int64_t c) {
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const T* g = gy + r * c;
        const T* yr = y + r * c;
        T* d = dx + r * c;
        const T dot = cpu_rows::dot(g, yr, c);
        for (int64_t j = 0; j < c; ++j) d[j] = yr[j] * (g[j] - dot);
    }
}

template <class T>
void log_softmax_backward_typed(const T* gy, const T* y, T* dx, int64_t rows, int64_t c) {
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const T* g = gy + r * c;
        const T* yr = y + r * c;
        T* d = dx + r * c;
        const T sum_g = cpu_rows::sum(g, c);
        cpu_rows::exp_sub(yr, T(0), d, c);  // softmax
        for (int64_t j = 0; j < c; ++j) d[j] = g[j] - d[j] * sum_g;
    }
}

Tensor forward(const Tensor& x, bool log) {
    const Tensor xc = x.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    if (x.numel() == 0) return y;
    const int64_t c = x.size(-1), rows = x.numel() / c;
    if (x.dtype() == DType::f32)
        forward_typed(xc.data<float>(), y.data<float>(), rows, c, log);
    else
        forward_typed(xc.data<double>(), y.data<double>(), rows, c, log);
    return y;
}

template <class F32, class F64>
Tensor backward(const Tensor& gy, const Tensor& y, F32 f32, F64 f64) {
    const Tensor gc = gy.contiguous(), yc = y.contiguous();
    Tensor dx = Tensor::empty(y.shape(), y.dtype());
    if (y.numel() == 0) return dx;
    const int64_t c = y.size(-1), rows = y.numel() / c;
    if (y.dtype() == DType::f32)
        f32(gc.data<float>(), yc.data<float>(), dx.data<float>(), rows, c);
    else
        f64(gc.data<double>(), yc.data<double>(), dx.data<double>(), rows, c);
    return dx;
}
}  // namespace

Tensor softmax_forward_cpu(const Tensor& x) { return forward(x, false); }
Tensor log_softmax_forward_cpu(const Tensor& x) { return forward(x, true); }

Tensor softmax_backward_cpu(const Tensor& gy, const Tensor& y) {
    return backward(gy, y, softmax_backward_typed<float>, softmax_backward_typed<double>);
}

Tensor log_softmax_backward_cpu(const Tensor& gy, const Tensor& y) {
    return backward(gy, y, log_softmax_backward_typed<float>, log_softmax_backward_typed<double>);
}

}  // namespace goose::ops
