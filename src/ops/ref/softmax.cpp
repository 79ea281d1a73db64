// Reference softmax and log_softmax: one row at a time, any strides, computed in double.
#include <algorithm>
#include <cmath>

#include "goose/ops/softmax.h"
#include "ops/ref/rows.h"

namespace goose::ops {

using ref_rows::at;

namespace {
// Writes softmax (or log-softmax when `log`) of every row of x into a new packed tensor.
Tensor forward(const Tensor& x, bool log) {
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    const int64_t c = x.size(-1);
    if (x.numel() == 0) return y;
    void* yp = y.raw_data();
    ref_rows::for_each_row(x.shape(), [&](int64_t row, const int64_t* lead) {
        const int64_t base = ref_rows::row_offset(x, lead);
        double m = at(x, base, 0);
        for (int64_t j = 1; j < c; ++j) m = std::max(m, at(x, base, j));
        double s = 0;
        for (int64_t j = 0; j < c; ++j) s += std::exp(at(x, base, j) - m);
        const double log_s = std::log(s);
        for (int64_t j = 0; j < c; ++j) {
            const double v = at(x, base, j) - m;
            store_from_double(yp, y.dtype(), row * c + j, log ? v - log_s : std::exp(v) / s);
        }
    });
    return y;
}
}  // namespace

Tensor softmax_forward_ref(const Tensor& x) { return forward(x, false); }
Tensor log_softmax_forward_ref(const Tensor& x) { return forward(x, true); }

Tensor softmax_backward_ref(const Tensor& gy, const Tensor& y) {
    Tensor dx = Tensor::empty(y.shape(), y.dtype());
    const int64_t c = y.size(-1);
    if (y.numel() == 0) return dx;
    void* dp = dx.raw_data();
    ref_rows::for_each_row(y.shape(), [&](int64_t row, const int64_t* lead) {
        const int64_t gb = ref_rows::row_offset(gy, lead), yb = ref_rows::row_offset(y, lead);
        double dot = 0;
        for (int64_t j = 0; j < c; ++j) dot += at(gy, gb, j) * at(y, yb, j);
        for (int64_t j = 0; j < c; ++j)
            store_from_double(dp, dx.dtype(), row * c + j, at(y, yb, j) * (at(gy, gb, j) - dot));
    });
    return dx;
}

Tensor log_softmax_backward_ref(const Tensor& gy, const Tensor& y) {
    Tensor dx = Tensor::empty(y.shape(), y.dtype());
    const int64_t c = y.size(-1);
    if (y.numel() == 0) return dx;
    void* dp = dx.raw_data();
    ref_rows::for_each_row(y.shape(), [&](int64_t row, const int64_t* lead) {
        const int64_t gb = ref_rows::row_offset(gy, lead), yb = ref_rows::row_offset(y, lead);
        double sum_g = 0;
        for (int64_t j = 0; j < c; ++j) sum_g += at(gy, gb, j);
        for (int64_t j = 0; j < c; ++j)
            store_from_double(dp, dx.dtype(), row * c + j,
                              at(gy, gb, j) - std::exp(at(y, yb, j)) * sum_g);
    });
    return dx;
}

}  // namespace goose::ops
