// Reference losses: one element at a time, any strides, computed in double.
#include <algorithm>
#include <cmath>

#include "goose/ops/loss.h"
#include "ops/ref/rows.h"

namespace goose::ops {

using ref_rows::at;

namespace {
// The target of row `lead` as int64.
int64_t target_at(const Tensor& targets, const int64_t* lead) {
    return static_cast<int64_t>(load_as_double(targets.raw_data(), targets.dtype(),
                                               offset_of(lead, targets.strides())));
}

int64_t count_kept(const Tensor& targets, int64_t ignore_index) {
    int64_t count = 0;
    for_each_index(targets.shape(), [&](const int64_t* idx) {
        count += target_at(targets, idx) != ignore_index;
    });
    return count;
}

// Calls fn(value_a, value_b, packed index) for every element of two same-shape tensors.
template <class Fn>
void for_each_pair(const Tensor& a, const Tensor& b, Fn&& fn) {
    int64_t i = 0;
    for_each_index(a.shape(), [&](const int64_t* idx) {
        fn(load_as_double(a.raw_data(), a.dtype(), offset_of(idx, a.strides())),
           load_as_double(b.raw_data(), b.dtype(), offset_of(idx, b.strides())), i++);
    });
}
}  // namespace

CrossEntropyForward cross_entropy_forward_ref(const Tensor& logits, const Tensor& targets,
                                              int64_t ignore_index) {
    const int64_t v = logits.size(-1);
    Tensor lse = Tensor::zeros(targets.shape(), logits.dtype());
    double total = 0;
    int64_t count = 0;
    ref_rows::for_each_row(logits.shape(), [&](int64_t row, const int64_t* lead) {
        const int64_t t = target_at(targets, lead);
        if (t == ignore_index) return;
        const int64_t base = ref_rows::row_offset(logits, lead);
        double m = at(logits, base, 0);
        for (int64_t j = 1; j < v; ++j) m = std::max(m, at(logits, base, j));
        double s = 0;
        for (int64_t j = 0; j < v; ++j) s += std::exp(at(logits, base, j) - m);
        const double row_lse = m + std::log(s);
        store_from_double(lse.raw_data(), lse.dtype(), row, row_lse);
        total += row_lse - at(logits, base, t);
        ++count;
    });
    return {Tensor::scalar(count ? total / static_cast<double>(count) : 0.0, logits.dtype()), lse};
}

Tensor cross_entropy_backward_ref(const Tensor& gy, const Tensor& logits, const Tensor& targets,
                                  const Tensor& lse, int64_t ignore_index) {
    const int64_t v = logits.size(-1);
    Tensor dx = Tensor::zeros(logits.shape(), logits.dtype());
    const int64_t count = count_kept(targets, ignore_index);
    if (count == 0) return dx;
    const double g = gy.item() / static_cast<double>(count);
    ref_rows::for_each_row(logits.shape(), [&](int64_t row, const int64_t* lead) {
        const int64_t t = target_at(targets, lead);
        if (t == ignore_index) return;
        const int64_t base = ref_rows::row_offset(logits, lead);
        const double row_lse =
            load_as_double(lse.raw_data(), lse.dtype(), offset_of(lead, lse.strides()));
        for (int64_t j = 0; j < v; ++j) {
            const double p = std::exp(at(logits, base, j) - row_lse);
            store_from_double(dx.raw_data(), dx.dtype(), row * v + j, g * (p - (j == t)));
        }
    });
    return dx;
}

Tensor mse_forward_ref(const Tensor& pred, const Tensor& target) {
    double total = 0;
    for_each_pair(pred, target, [&](double p, double t, int64_t) { total += (p - t) * (p - t); });
    return Tensor::scalar(total / static_cast<double>(pred.numel()), pred.dtype());
}

std::pair<Tensor, Tensor> mse_backward_ref(const Tensor& gy, const Tensor& pred,
                                           const Tensor& target) {
    Tensor dp = Tensor::empty(pred.shape(), pred.dtype());
    Tensor dt = Tensor::empty(pred.shape(), pred.dtype());
    const double g = 2 * gy.item() / static_cast<double>(pred.numel());
    for_each_pair(pred, target, [&](double p, double t, int64_t i) {
        store_from_double(dp.raw_data(), dp.dtype(), i, g * (p - t));
        store_from_double(dt.raw_data(), dt.dtype(), i, -g * (p - t));
    });
    return {dp, dt};
}

Tensor bce_with_logits_forward_ref(const Tensor& logits, const Tensor& targets) {
    double total = 0;
    for_each_pair(logits, targets, [&](double x, double y, int64_t) {
        total += std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x)));
    });
    return Tensor::scalar(total / static_cast<double>(logits.numel()), logits.dtype());
}

std::pair<Tensor, Tensor> bce_with_logits_backward_ref(const Tensor& gy, const Tensor& logits,
                                                       const Tensor& targets) {
    Tensor dx = Tensor::empty(logits.shape(), logits.dtype());
    Tensor dy = Tensor::empty(logits.shape(), logits.dtype());
    const double g = gy.item() / static_cast<double>(logits.numel());
    for_each_pair(logits, targets, [&](double x, double y, int64_t i) {
        const double sig = 1.0 / (1.0 + std::exp(-x));
        store_from_double(dx.raw_data(), dx.dtype(), i, g * (sig - y));
        store_from_double(dy.raw_data(), dy.dtype(), i, -g * x);
    });
    return {dx, dy};
}

}  // namespace goose::ops
