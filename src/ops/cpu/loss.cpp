// Fast CPU losses. Cross-entropy is fused per row (max, log-sum-exp, loss; the backward writes
// softmax - onehot scaled by gy / count from the saved log-sum-exp), rows in parallel, no
// softmax tensor. mse and bce_with_logits sum fixed blocks in parallel, then the blocks in
// order, so the result does not depend on the thread count. f32 and f64.
#include <algorithm>
#include <cmath>
#include <vector>

#include "goose/ops/loss.h"
#include "ops/cpu/rows.h"
#include "ops/unary_math.h"

namespace goose::ops {

namespace {
using cpu_rows::kParallelMin;
constexpr int64_t kBlock = 4096;  // elements per partial sum of mse and bce_with_logits

// Calls fn(T{}, I{}) with T the float type of `f` and I the index type of `i`.
template <class Fn>
void dispatch(DType f, DType i, Fn&& fn) {
    if (f == DType::f32) {
        if (i == DType::i32) fn(float{}, int32_t{});
        else fn(float{}, int64_t{});
    } else {
        if (i == DType::i32) fn(double{}, int32_t{});
        else fn(double{}, int64_t{});
    }
}

template <class T, class I>
void ce_forward(const T* x, const I* t, T* lse, double* row_loss, int64_t rows, int64_t v,
                int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (rows * v > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const auto tr = static_cast<int64_t>(t[r]);
        if (tr == ignore_index) {
            lse[r] = 0;
            row_loss[r] = 0;
            continue;
        }
        const T* xr = x + r * v;
        const T m = cpu_rows::max_of(xr, v);
        const T l = m + std::log(cpu_rows::exp_shifted(xr, m, static_cast<T*>(nullptr), v));
        lse[r] = l;
        row_loss[r] = static_cast<double>(l - xr[tr]);
    }
}

template <class T, class I>
void ce_backward(T g, const T* x, const I* t, const T* lse, T* dx, int64_t rows, int64_t v,
                 int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (rows * v > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const auto tr = static_cast<int64_t>(t[r]);
        T* d = dx + r * v;
        if (tr == ignore_index) {
            std::fill(d, d + v, T(0));
            continue;
        }
        const T* xr = x + r * v;
        const T l = lse[r];
        cpu_rows::exp_sub(xr, l, d, v);  // softmax, from the saved log-sum-exp
        for (int64_t j = 0; j < v; ++j) d[j] *= g;
        d[tr] -= g;
    }
}

// sum((a - b)^2) over one block
inline double sq_diff_sum(const float* a, const float* b, int64_t n) {
    simd::VecF acc = simd::broadcast(0.f);
    int64_t i = 0;
    for (; i + simd::kLanes <= n; i += simd::kLanes) {
        const simd::VecF d = simd::sub(simd::load(a + i), simd::load(b + i));
        acc = simd::fma(d, d, acc);
    }
    double s = simd::reduce_add(acc);
    for (; i < n; ++i) s += static_cast<double>((a[i] - b[i]) * (a[i] - b[i]));
    return s;
}
inline double sq_diff_sum(const double* a, const double* b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
}

template <class T>
double bce_sum(const T* x, const T* y, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i)
        s += static_cast<double>(std::max(x[i], T(0)) - x[i] * y[i] +
                                 std::log1p(std::exp(-std::abs(x[i]))));
    return s;
}

// sum over fixed blocks of block_sum(offset, length), in parallel, then the blocks in order.
template <class F>
double blocked_sum(int64_t n, F block_sum) {
    const int64_t nb = (n + kBlock - 1) / kBlock;
    std::vector<double> part(static_cast<size_t>(nb));
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t k = 0; k < nb; ++k)
        part[static_cast<size_t>(k)] = block_sum(k * kBlock, std::min(kBlock, n - k * kBlock));
    double s = 0;
    for (double p : part) s += p;
    return s;
}
}  // namespace

CrossEntropyForward cross_entropy_forward_cpu(const Tensor& logits, const Tensor& targets,
                                              int64_t ignore_index) {
    const Tensor xc = logits.contiguous(), tc = targets.contiguous();
    const int64_t v = logits.size(-1), rows = targets.numel();
    Tensor lse = Tensor::empty(targets.shape(), logits.dtype());
    std::vector<double> row_loss(static_cast<size_t>(rows));
    dispatch(logits.dtype(), targets.dtype(), [&](auto tf, auto ti) {
        using T = decltype(tf);
        using I = decltype(ti);
        ce_forward(xc.data<T>(), tc.data<I>(), lse.data<T>(), row_loss.data(), rows, v,
                   ignore_index);
    });
    // The per-row losses and the count, summed in order (deterministic for any thread count).
    double total = 0;
    int64_t count = 0;
    const Tensor tl = tc.to(DType::i64);
    const int64_t* t = tl.data<int64_t>();
    for (int64_t r = 0; r < rows; ++r) {
        total += row_loss[static_cast<size_t>(r)];
        count += t[r] != ignore_index;
    }
    const double loss = count ? total / static_cast<double>(count) : 0.0;
    return {Tensor::scalar(loss, logits.dtype()), lse};
}

Tensor cross_entropy_backward_cpu(const Tensor& gy, const Tensor& logits, const Tensor& targets,
                                  const Tensor& lse, int64_t ignore_index) {
    const Tensor xc = logits.contiguous(), tc = targets.contiguous(), lc = lse.contiguous();
    const int64_t v = logits.size(-1), rows = targets.numel();
    const Tensor tl = tc.to(DType::i64);
    int64_t count = 0;
    for (int64_t r = 0; r < rows; ++r) count += tl.data<int64_t>()[r] != ignore_index;
    if (count == 0) return Tensor::zeros(logits.shape(), logits.dtype());
    Tensor dx = Tensor::empty(logits.shape(), logits.dtype());
    const double g = gy.item() / static_cast<double>(count);
    dispatch(logits.dtype(), targets.dtype(), [&](auto tf, auto ti) {
        using T = decltype(tf);
        using I = decltype(ti);
        ce_backward(static_cast<T>(g), xc.data<T>(), tc.data<I>(), lc.data<T>(), dx.data<T>(),
                    rows, v, ignore_index);
    });
    return dx;
}

Tensor mse_forward_cpu(const Tensor& pred, const Tensor& target) {
    const Tensor pc = pred.contiguous(), tc = target.contiguous();
    const int64_t n = pred.numel();
    double total;
    if (pred.dtype() == DType::f32) {
        const float *p = pc.data<float>(), *t = tc.data<float>();
        total = blocked_sum(n, [&](int64_t o, int64_t k) { return sq_diff_sum(p + o, t + o, k); });
    } else {
        const double *p = pc.data<double>(), *t = tc.data<double>();
        total = blocked_sum(n, [&](int64_t o, int64_t k) { return sq_diff_sum(p + o, t + o, k); });
    }
    return Tensor::scalar(total / static_cast<double>(n), pred.dtype());
}

namespace {
template <class T>
void mse_grad(T g, const T* p, const T* t, T* dp, T* dt, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
        const T d = g * (p[i] - t[i]);
        dp[i] = d;
        dt[i] = -d;
    }
}

template <class T>
void bce_grad(T g, const T* x, const T* y, T* dx, T* dy, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
        dx[i] = g * (unary_math::sigmoid(x[i]) - y[i]);
        dy[i] = -g * x[i];
    }
}
}  // namespace

std::pair<Tensor, Tensor> mse_backward_cpu(const Tensor& gy, const Tensor& pred,
                                           const Tensor& target) {
    const Tensor pc = pred.contiguous(), tc = target.contiguous();
    Tensor dp = Tensor::empty(pred.shape(), pred.dtype());
    Tensor dt = Tensor::empty(pred.shape(), pred.dtype());
    const int64_t n = pred.numel();
    const double g = 2 * gy.item() / static_cast<double>(n);
    if (pred.dtype() == DType::f32)
        mse_grad(static_cast<float>(g), pc.data<float>(), tc.data<float>(), dp.data<float>(),
                 dt.data<float>(), n);
    else
        mse_grad(g, pc.data<double>(), tc.data<double>(), dp.data<double>(), dt.data<double>(), n);
    return {dp, dt};
}

Tensor bce_with_logits_forward_cpu(const Tensor& logits, const Tensor& targets) {
    const Tensor xc = logits.contiguous(), yc = targets.contiguous();
    const int64_t n = logits.numel();
    double total;
    if (logits.dtype() == DType::f32) {
        const float *x = xc.data<float>(), *y = yc.data<float>();
        total = blocked_sum(n, [&](int64_t o, int64_t k) { return bce_sum(x + o, y + o, k); });
    } else {
        const double *x = xc.data<double>(), *y = yc.data<double>();
        total = blocked_sum(n, [&](int64_t o, int64_t k) { return bce_sum(x + o, y + o, k); });
    }
    return Tensor::scalar(total / static_cast<double>(n), logits.dtype());
}

std::pair<Tensor, Tensor> bce_with_logits_backward_cpu(const Tensor& gy, const Tensor& logits,
                                                       const Tensor& targets) {
    const Tensor xc = logits.contiguous(), yc = targets.contiguous();
    Tensor dx = Tensor::empty(logits.shape(), logits.dtype());
    Tensor dy = Tensor::empty(logits.shape(), logits.dtype());
    const int64_t n = logits.numel();
    const double g = gy.item() / static_cast<double>(n);
    if (logits.dtype() == DType::f32)
        bce_grad(static_cast<float>(g), xc.data<float>(), yc.data<float>(), dx.data<float>(),
                 dy.data<float>(), n);
    else
        bce_grad(g, xc.data<double>(), yc.data<double>(), dx.data<double>(), dy.data<double>(), n);
    return {dx, dy};
}

}  // namespace goose::ops
