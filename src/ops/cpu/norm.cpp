// Fast CPU layer_norm, group_norm and l2_normalize: packed rows in parallel (OpenMP), two-pass
// statistics (mean, then the sum of squared deviations) through the simd.h helpers. The
// backward sums dw and db over fixed row chunks, then the chunks in order, so the result does
// not depend on the thread count. layer_norm runs as one group. f32 and f64.
#include <algorithm>
#include <cmath>
#include <vector>

#include "goose/ops/norm.h"
#include "ops/cpu/rows.h"

namespace goose::ops {

namespace {
using cpu_rows::kParallelMin;
constexpr int64_t kMaxChunks = 64;  // row chunks of the dw/db partial sums

// x, y (rows, C); mean, rstd (rows, groups); w, b (C) or null
template <class T>
void forward_typed(const T* x, T* y, T* mean, T* rstd, const T* w, const T* b, int64_t rows,
                   int64_t c, int64_t groups, double eps) {
    const int64_t n = c / groups;
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
            const T* xg = x + r * c + g * n;
            T* yg = y + r * c + g * n;
            const T m = cpu_rows::sum(xg, n) / static_cast<T>(n);
            const T var = cpu_rows::sum_sq_dev(xg, m, n) / static_cast<T>(n);
            const T rs = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var) + eps));
            mean[r * groups + g] = m;
            rstd[r * groups + g] = rs;
            for (int64_t j = 0; j < n; ++j) yg[j] = (xg[j] - m) * rs;
        }
        T* yr = y + r * c;
        if (w)
            for (int64_t j = 0; j < c; ++j) yr[j] *= w[j];
        if (b)
            for (int64_t j = 0; j < c; ++j) yr[j] += b[j];
    }
}

// gy, x, dx (rows, C); mean, rstd (rows, groups); w (C) or null; dw, db (C) or null
template <class T>
void backward_typed(const T* gy, const T* x, const T* mean, const T* rstd, const T* w, T* dx,
                    T* dw, T* db, int64_t rows, int64_t c, int64_t groups) {
    const int64_t n = c / groups;
    const T inv_n = T(1) / static_cast<T>(n);
    const int64_t chunks = std::min(rows, kMaxChunks);
    const int64_t per_chunk = chunks ? (rows + chunks - 1) / chunks : 0;
    const bool partials = dw || db;
    // dw and db of each chunk: (chunks, C) each
    std::vector<T> dw_part(partials ? static_cast<size_t>(chunks * c) : 0);
    std::vector<T> db_part(partials ? static_cast<size_t>(chunks * c) : 0);
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
    for (int64_t k = 0; k < chunks; ++k) {
        std::vector<T> xhat(static_cast<size_t>(c)), gw(static_cast<size_t>(c));
        T* dwp = partials ? dw_part.data() + k * c : nullptr;
        T* dbp = partials ? db_part.data() + k * c : nullptr;
        if (partials) {
            std::fill(dwp, dwp + c, T(0));
            std::fill(dbp, dbp + c, T(0));
        }
        const int64_t r_end = std::min(rows, (k + 1) * per_chunk);
        for (int64_t r = k * per_chunk; r < r_end; ++r) {
            const T* xr = x + r * c;
            const T* gr = gy + r * c;
            T* dr = dx + r * c;
            for (int64_t g = 0; g < groups; ++g) {
                const T m = mean[r * groups + g], rs = rstd[r * groups + g];
                for (int64_t j = g * n; j < (g + 1) * n; ++j) xhat[j] = (xr[j] - m) * rs;
            }
            if (w)
                for (int64_t j = 0; j < c; ++j) gw[j] = gr[j] * w[j];
            else
                std::copy(gr, gr + c, gw.begin());
            // dx = rstd (gw - mean(gw) - xhat mean(gw xhat)) within each group
            for (int64_t g = 0; g < groups; ++g) {
                const int64_t j0 = g * n;
                const T mg = cpu_rows::sum(gw.data() + j0, n) * inv_n;
                const T mgx = cpu_rows::dot(gw.data() + j0, xhat.data() + j0, n) * inv_n;
                const T rs = rstd[r * groups + g];
                for (int64_t j = j0; j < j0 + n; ++j)
                    dr[j] = rs * (gw[j] - mg - xhat[j] * mgx);
            }
            if (partials)
                for (int64_t j = 0; j < c; ++j) {
                    dwp[j] += gr[j] * xhat[j];
                    dbp[j] += gr[j];
                }
        }
    }
    for (int64_t j = 0; j < c; ++j) {
        double sw = 0, sb = 0;
        for (int64_t k = 0; k < chunks; ++k) {
            sw += dw_part.empty() ? 0 : static_cast<double>(dw_part[k * c + j]);
            sb += db_part.empty() ? 0 : static_cast<double>(db_part[k * c + j]);
        }
        if (dw) dw[j] = static_cast<T>(sw);
        if (db) db[j] = static_cast<T>(sb);
    }
}

template <class T>
const T* data_or_null(const Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}

NormForward norm_forward(const Tensor& x, int64_t groups, bool group_dim, const Tensor& w,
                         const Tensor& b, double eps) {
    const Tensor xc = x.contiguous();
    const Tensor wc = w.defined() ? w.contiguous() : Tensor();
    const Tensor bc = b.defined() ? b.contiguous() : Tensor();
    const int64_t c = x.size(-1), rows = c ? x.numel() / c : 0;
    Shape ss = x.shape().without(x.ndim() - 1);
    if (group_dim) ss.push_back(groups);
    NormForward f{Tensor::empty(x.shape(), x.dtype()), Tensor::empty(ss, x.dtype()),
                  Tensor::empty(ss, x.dtype())};
    if (x.numel() == 0) return f;
    if (x.dtype() == DType::f32)
        forward_typed(xc.data<float>(), f.y.data<float>(), f.mean.data<float>(),
                      f.rstd.data<float>(), data_or_null<float>(wc), data_or_null<float>(bc),
                      rows, c, groups, eps);
    else
        forward_typed(xc.data<double>(), f.y.data<double>(), f.mean.data<double>(),
                      f.rstd.data<double>(), data_or_null<double>(wc), data_or_null<double>(bc),
                      rows, c, groups, eps);
    return f;
}

NormGrads norm_backward(const Tensor& gy, const Tensor& x, int64_t groups, const Tensor& w,
                        const Tensor& mean, const Tensor& rstd, bool need_dw, bool need_db) {
    const Tensor xc = x.contiguous(), gc = gy.contiguous();
    const Tensor mc = mean.contiguous(), rc = rstd.contiguous();
    const Tensor wc = w.defined() ? w.contiguous() : Tensor();
    const int64_t c = x.size(-1), rows = c ? x.numel() / c : 0;
    NormGrads r{Tensor::empty(x.shape(), x.dtype()),
                need_dw ? Tensor::zeros(Shape{c}, x.dtype()) : Tensor(),
                need_db ? Tensor::zeros(Shape{c}, x.dtype()) : Tensor()};
    if (x.numel() == 0) return r;
    if (x.dtype() == DType::f32)
        backward_typed(gc.data<float>(), xc.data<float>(), mc.data<float>(), rc.data<float>(),
                       data_or_null<float>(wc), r.dx.data<float>(),
                       need_dw ? r.dw.data<float>() : nullptr,
                       need_db ? r.db.data<float>() : nullptr, rows, c, groups);
    else
        backward_typed(gc.data<double>(), xc.data<double>(), mc.data<double>(),
                       rc.data<double>(), data_or_null<double>(wc), r.dx.data<double>(),
                       need_dw ? r.dw.data<double>() : nullptr,
                       need_db ? r.db.data<double>() : nullptr, rows, c, groups);
    return r;
}

template <class T>
void l2_forward_typed(const T* x, T* y, int64_t rows, int64_t c, double eps) {
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        const double norm = std::sqrt(static_cast<double>(cpu_rows::dot(xr, xr, c)));
        const T inv = static_cast<T>(1.0 / std::max(norm, eps));
        for (int64_t j = 0; j < c; ++j) yr[j] = xr[j] * inv;
    }
}

template <class T>
void l2_backward_typed(const T* gy, const T* x, T* dx, int64_t rows, int64_t c, double eps) {
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * c;
        const T* gr = gy + r * c;
        T* dr = dx + r * c;
        const double norm = std::sqrt(static_cast<double>(cpu_rows::dot(xr, xr, c)));
        if (norm >= eps) {
            // dx = (gy - y <gy, y>) / norm with y = x / norm
            const T inv = static_cast<T>(1.0 / norm);
            const T k = cpu_rows::dot(gr, xr, c) * inv * inv;  // <gy, y> / norm
            for (int64_t j = 0; j < c; ++j) dr[j] = (gr[j] - xr[j] * k) * inv;
        } else {
            const T inv = static_cast<T>(1.0 / eps);  // the clamped norm is a constant
            for (int64_t j = 0; j < c; ++j) dr[j] = gr[j] * inv;
        }
    }
}
}  // namespace

NormForward layer_norm_forward_cpu(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
    return norm_forward(x, 1, false, w, b, eps);
}

NormGrads layer_norm_backward_cpu(const Tensor& gy, const Tensor& x, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd, bool need_dw,
                                  bool need_db) {
    return norm_backward(gy, x, 1, w, mean, rstd, need_dw, need_db);
}

NormForward group_norm_forward_cpu(const Tensor& x, int groups, const Tensor& w, const Tensor& b,
                                   double eps) {
    return norm_forward(x, groups, true, w, b, eps);
}

NormGrads group_norm_backward_cpu(const Tensor& gy, const Tensor& x, int groups, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd, bool need_dw,
                                  bool need_db) {
    return norm_backward(gy, x, groups, w, mean, rstd, need_dw, need_db);
}

Tensor l2_normalize_forward_cpu(const Tensor& x, double eps) {
    const Tensor xc = x.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    if (x.numel() == 0) return y;
    const int64_t c = x.size(-1), rows = x.numel() / c;
    if (x.dtype() == DType::f32)
        l2_forward_typed(xc.data<float>(), y.data<float>(), rows, c, eps);
    else
        l2_forward_typed(xc.data<double>(), y.data<double>(), rows, c, eps);
    return y;
}

Tensor l2_normalize_backward_cpu(const Tensor& gy, const Tensor& x, double eps) {
    const Tensor xc = x.contiguous(), gc = gy.contiguous();
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    if (x.numel() == 0) return dx;
    const int64_t c = x.size(-1), rows = x.numel() / c;
    if (x.dtype() == DType::f32)
        l2_backward_typed(gc.data<float>(), xc.data<float>(), dx.data<float>(), rows, c, eps);
    else
        l2_backward_typed(gc.data<double>(), xc.data<double>(), dx.data<double>(), rows, c, eps);
    return dx;
}

}  // namespace goose::ops
