// Reference layer_norm, group_norm and l2_normalize: one row at a time, any strides, computed in
// double. layer_norm is group_norm with one group whose statistics have no group dim.
#include <algorithm>
#include <cmath>
#include <vector>

#include "goose/ops/norm.h"
#include "ops/ref/rows.h"

namespace goose::ops {

using ref_rows::at;

namespace {
// Element j of the 1-d tensor p (w or b), or `dflt` when p is undefined.
double param(const Tensor& p, int64_t j, double dflt) {
    if (!p.defined()) return dflt;
    return load_as_double(p.raw_data(), p.dtype(), j * p.strides()[0]);
}

// Offset of the statistic of group g of the row `lead` in s: (...) or (..., groups).
int64_t stat_offset(const Tensor& s, int nlead, const int64_t* lead, int64_t g) {
    int64_t o = 0;
    for (int d = 0; d < nlead; ++d) o += lead[d] * s.strides()[d];
    if (s.ndim() > nlead) o += g * s.strides()[nlead];
    return o;
}

// groups groups per row; `group_dim`: the statistics have a trailing (groups) dim.
NormForward norm_forward(const Tensor& x, int64_t groups, bool group_dim, const Tensor& w,
                         const Tensor& b, double eps) {
    const int64_t c = x.size(-1), n = c / groups;
    Shape ss = x.shape().without(x.ndim() - 1);
    if (group_dim) ss.push_back(groups);
    NormForward f{Tensor::empty(x.shape(), x.dtype()), Tensor::empty(ss, x.dtype()),
                  Tensor::empty(ss, x.dtype())};
    if (x.numel() == 0) return f;
    ref_rows::for_each_row(x.shape(), [&](int64_t row, const int64_t* lead) {
        const int64_t base = ref_rows::row_offset(x, lead);
        for (int64_t g = 0; g < groups; ++g) {
            const int64_t j0 = g * n;
            double mean = 0;
            for (int64_t j = j0; j < j0 + n; ++j) mean += at(x, base, j);
            mean /= static_cast<double>(n);
            double var = 0;
            for (int64_t j = j0; j < j0 + n; ++j)
                var += (at(x, base, j) - mean) * (at(x, base, j) - mean);
            var /= static_cast<double>(n);
            const double rstd = 1.0 / std::sqrt(var + eps);
            store_from_double(f.mean.raw_data(), f.mean.dtype(), row * groups + g, mean);
            store_from_double(f.rstd.raw_data(), f.rstd.dtype(), row * groups + g, rstd);
            for (int64_t j = j0; j < j0 + n; ++j) {
                const double xhat = (at(x, base, j) - mean) * rstd;
                store_from_double(f.y.raw_data(), f.y.dtype(), row * c + j,
                                  xhat * param(w, j, 1.0) + param(b, j, 0.0));
            }
        }
    });
    return f;
}

NormGrads norm_backward(const Tensor& gy, const Tensor& x, int64_t groups, const Tensor& w,
                        const Tensor& mean, const Tensor& rstd, bool need_dw, bool need_db) {
    const int64_t c = x.size(-1), n = c / groups;
    const int nlead = x.ndim() - 1;
    NormGrads r{Tensor::empty(x.shape(), x.dtype()), Tensor(), Tensor()};
    std::vector<double> dw(static_cast<size_t>(c), 0.0), db(static_cast<size_t>(c), 0.0);
    if (x.numel() > 0) {
        ref_rows::for_each_row(x.shape(), [&](int64_t row, const int64_t* lead) {
            const int64_t xb = ref_rows::row_offset(x, lead), gb = ref_rows::row_offset(gy, lead);
            for (int64_t g = 0; g < groups; ++g) {
                const double m = load_as_double(mean.raw_data(), mean.dtype(),
                                                stat_offset(mean, nlead, lead, g));
                const double rs = load_as_double(rstd.raw_data(), rstd.dtype(),
                                                 stat_offset(rstd, nlead, lead, g));
                const int64_t j0 = g * n;
                // dx = rstd (gw - mean(gw) - xhat mean(gw xhat)), gw = gy * w
                double sum_g = 0, sum_gx = 0;
                for (int64_t j = j0; j < j0 + n; ++j) {
                    const double xhat = (at(x, xb, j) - m) * rs;
                    const double gw = at(gy, gb, j) * param(w, j, 1.0);
                    sum_g += gw;
                    sum_gx += gw * xhat;
                    dw[static_cast<size_t>(j)] += at(gy, gb, j) * xhat;
                    db[static_cast<size_t>(j)] += at(gy, gb, j);
                }
                const double mg = sum_g / static_cast<double>(n);
                const double mgx = sum_gx / static_cast<double>(n);
                for (int64_t j = j0; j < j0 + n; ++j) {
                    const double xhat = (at(x, xb, j) - m) * rs;
                    const double gw = at(gy, gb, j) * param(w, j, 1.0);
                    store_from_double(r.dx.raw_data(), r.dx.dtype(), row * c + j,
                                      rs * (gw - mg - xhat * mgx));
                }
            }
        });
    }
    if (need_dw) r.dw = Tensor::from(Shape{c}, dw, x.dtype());
    if (need_db) r.db = Tensor::from(Shape{c}, db, x.dtype());
    return r;
}
}  // namespace

NormForward layer_norm_forward_ref(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
    return norm_forward(x, 1, false, w, b, eps);
}

NormGrads layer_norm_backward_ref(const Tensor& gy, const Tensor& x, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd, bool need_dw,
                                  bool need_db) {
    return norm_backward(gy, x, 1, w, mean, rstd, need_dw, need_db);
}

NormForward group_norm_forward_ref(const Tensor& x, int groups, const Tensor& w, const Tensor& b,
                                   double eps) {
    return norm_forward(x, groups, true, w, b, eps);
}

NormGrads group_norm_backward_ref(const Tensor& gy, const Tensor& x, int groups, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd, bool need_dw,
                                  bool need_db) {
    return norm_backward(gy, x, groups, w, mean, rstd, need_dw, need_db);
}

Tensor l2_normalize_forward_ref(const Tensor& x, double eps) {
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    const int64_t c = x.size(-1);
    if (x.numel() == 0) return y;
    ref_rows::for_each_row(x.shape(), [&](int64_t row, const int64_t* lead) {
        const int64_t base = ref_rows::row_offset(x, lead);
        double ss = 0;
        for (int64_t j = 0; j < c; ++j) ss += at(x, base, j) * at(x, base, j);
        const double d = std::max(std::sqrt(ss), eps);
        for (int64_t j = 0; j < c; ++j)
            store_from_double(y.raw_data(), y.dtype(), row * c + j, at(x, base, j) / d);
    });
    return y;
}

Tensor l2_normalize_backward_ref(const Tensor& gy, const Tensor& x, double eps) {
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    const int64_t c = x.size(-1);
    if (x.numel() == 0) return dx;
    ref_rows::for_each_row(x.shape(), [&](int64_t row, const int64_t* lead) {
        const int64_t xb = ref_rows::row_offset(x, lead), gb = ref_rows::row_offset(gy, lead);
        double ss = 0;
        for (int64_t j = 0; j < c; ++j) ss += at(x, xb, j) * at(x, xb, j);
        const double norm = std::sqrt(ss);
        if (norm >= eps) {
            // y = x / norm: dx = (gy - y <gy, y>) / norm
            double dot = 0;
            for (int64_t j = 0; j < c; ++j) dot += at(gy, gb, j) * at(x, xb, j) / norm;
            for (int64_t j = 0; j < c; ++j)
                store_from_double(dx.raw_data(), dx.dtype(), row * c + j,
                                  (at(gy, gb, j) - at(x, xb, j) / norm * dot) / norm);
        } else {
            // the norm is clamped to eps, a constant: y = x / eps
            for (int64_t j = 0; j < c; ++j)
                store_from_double(dx.raw_data(), dx.dtype(), row * c + j, at(gy, gb, j) / eps);
        }
    });
    return dx;
}

}  // namespace goose::ops
