// Reference matmul and linear: triple loops, one element at a time, any strides, in double.
// A bf16 linear weight is widened to f32 first (exactly), then takes the same path.
#include <vector>

#include "goose/core/element.h"
#include "goose/ops/matmul.h"
#include "ops/matmul_dims.h"

namespace goose::ops {

namespace {
// Element (i, j) of op(x) = (trans ? xᵀ : x) in batch n of x's batch dims, as double.
double op_at(const Tensor& x, bool trans, int64_t n, int64_t i, int64_t j) {
    const int nd = x.ndim();
    int64_t off = 0;
    for (int d = nd - 3; d >= 0; --d) {
        off += (n % x.size(d)) * x.strides()[d];
        n /= x.size(d);
    }
    const int64_t r = trans ? j : i, c = trans ? i : j;
    off += r * x.strides()[nd - 2] + c * x.strides()[nd - 1];
    return load_as_double(x.raw_data(), x.dtype(), off);
}

// Stores op(x)-shaped values `v` (batch, rows, cols of op(x)) into a new tensor shaped like x.
Tensor store_op(const std::vector<double>& v, const Shape& shape, DType dt, bool trans,
                int64_t rows, int64_t cols) {
    Tensor t = Tensor::empty(shape, dt);
    const int64_t batch = rows * cols == 0 ? 0 : static_cast<int64_t>(v.size()) / (rows * cols);
    for (int64_t n = 0; n < batch; ++n)
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) {
                // x is (rows, cols) untransposed, (cols, rows) transposed: packed either way.
                const int64_t at = trans ? (n * cols + j) * rows + i : (n * rows + i) * cols + j;
                store_from_double(t.raw_data(), dt, at,
                                  v[static_cast<size_t>((n * rows + i) * cols + j)]);
            }
    return t;
}

// Offsets of the rows of x (..., C): one per index of the leading dims, in row-major order.
std::vector<int64_t> row_offsets(const Tensor& x) {
    std::vector<int64_t> offs;
    Shape lead;
    for (int d = 0; d < x.ndim() - 1; ++d) lead.push_back(x.size(d));
    for_each_index(lead, [&](const int64_t* idx) { offs.push_back(offset_of(idx, x.strides())); });
    return offs;
}
}  // namespace

Tensor matmul_forward_ref(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
    const MatmulDims d = matmul_dims(a, b, trans_a, trans_b);
    Tensor y = Tensor::empty(d.out, a.dtype());
    int64_t at = 0;
    for (int64_t n = 0; n < d.batch; ++n)
        for (int64_t i = 0; i < d.m; ++i)
            for (int64_t j = 0; j < d.n; ++j) {
                double s = 0;
                for (int64_t k = 0; k < d.k; ++k)
                    s += op_at(a, trans_a, n, i, k) * op_at(b, trans_b, d.b_shared ? 0 : n, k, j);
                store_from_double(y.raw_data(), y.dtype(), at++, s);
            }
    return y;
}

MatmulGrads matmul_backward_ref(const Tensor& gy, const Tensor& a, const Tensor& b, bool trans_a,
                                bool trans_b, bool need_a, bool need_b) {
    const MatmulDims d = matmul_dims(a, b, trans_a, trans_b);
    MatmulGrads g;
    if (need_a) {  // d op(a) (M, K) = gy op(b)ᵀ
        std::vector<double> v(static_cast<size_t>(d.batch * d.m * d.k), 0.0);
        for (int64_t n = 0; n < d.batch; ++n)
            for (int64_t i = 0; i < d.m; ++i)
                for (int64_t k = 0; k < d.k; ++k) {
                    double s = 0;
                    for (int64_t j = 0; j < d.n; ++j)
                        s +=
                            op_at(gy, false, n, i, j) * op_at(b, trans_b, d.b_shared ? 0 : n, k, j);
                    v[static_cast<size_t>((n * d.m + i) * d.k + k)] = s;
                }
        g.a = store_op(v, a.shape(), a.dtype(), trans_a, d.m, d.k);
    }
    if (need_b) {  // d op(b) (K, N) = op(a)ᵀ gy, summed over the batch when b is shared
        const int64_t nb = d.b_shared ? 1 : d.batch;
        std::vector<double> v(static_cast<size_t>(nb * d.k * d.n), 0.0);
        for (int64_t n = 0; n < d.batch; ++n)
            for (int64_t k = 0; k < d.k; ++k)
                for (int64_t j = 0; j < d.n; ++j) {
                    double s = 0;
                    for (int64_t i = 0; i < d.m; ++i)
                        s += op_at(a, trans_a, n, i, k) * op_at(gy, false, n, i, j);
                    v[static_cast<size_t>(((d.b_shared ? 0 : n) * d.k + k) * d.n + j)] += s;
                }
        g.b = store_op(v, b.shape(), b.dtype(), trans_b, d.k, d.n);
    }
    return g;
}

Tensor linear_forward_ref(const Tensor& x, const Tensor& w_in, const Tensor& b) {
    const Tensor w = w_in.dtype() == DType::bf16 ? w_in.to(DType::f32) : w_in;  // exact widening
    const int64_t cin = x.size(-1), cout = w.size(0);
    Shape out = x.shape();
    out[out.ndim() - 1] = cout;
    Tensor y = Tensor::empty(out, x.dtype());
    const std::vector<int64_t> rows = row_offsets(x);
    const int64_t sx = x.strides()[x.ndim() - 1];
    int64_t at = 0;
    for (int64_t r : rows)
        for (int64_t o = 0; o < cout; ++o) {
            double s = b.defined() ? b.get({o}) : 0.0;
            for (int64_t c = 0; c < cin; ++c)
                s += load_as_double(x.raw_data(), x.dtype(), r + c * sx) * w.get({o, c});
            store_from_double(y.raw_data(), y.dtype(), at++, s);
        }
    return y;
}

LinearGrads linear_backward_ref(const Tensor& gy, const Tensor& x, const Tensor& w_in,
                                bool has_bias, bool need_x, bool need_w, bool need_b) {
    const Tensor w = w_in.dtype() == DType::bf16 ? w_in.to(DType::f32) : w_in;  // need_w is false
    const int64_t cin = x.size(-1), cout = w.size(0);
    const std::vector<int64_t> xrows = row_offsets(x), grows = row_offsets(gy);
    const int64_t sx = x.strides()[x.ndim() - 1], sg = gy.strides()[gy.ndim() - 1];
    const auto xat = [&](size_t r, int64_t c) {
        return load_as_double(x.raw_data(), x.dtype(), xrows[r] + c * sx);
    };
    const auto gat = [&](size_t r, int64_t o) {
        return load_as_double(gy.raw_data(), gy.dtype(), grows[r] + o * sg);
    };
    LinearGrads g;
    if (need_x) {  // dx (R, Cin) = gy w
        g.x = Tensor::empty(x.shape(), x.dtype());
        int64_t at = 0;
        for (size_t r = 0; r < xrows.size(); ++r)
            for (int64_t c = 0; c < cin; ++c) {
                double s = 0;
                for (int64_t o = 0; o < cout; ++o) s += gat(r, o) * w.get({o, c});
                store_from_double(g.x.raw_data(), x.dtype(), at++, s);
            }
    }
    if (need_w) {  // dw (Cout, Cin) = gyᵀ x
        g.w = Tensor::empty(w.shape(), w.dtype());
        int64_t at = 0;
        for (int64_t o = 0; o < cout; ++o)
            for (int64_t c = 0; c < cin; ++c) {
                double s = 0;
                for (size_t r = 0; r < xrows.size(); ++r) s += gat(r, o) * xat(r, c);
                store_from_double(g.w.raw_data(), w.dtype(), at++, s);
            }
    }
    if (has_bias && need_b) {  // db (Cout) = sum over rows of gy
        g.b = Tensor::empty(Shape{cout}, gy.dtype());
        for (int64_t o = 0; o < cout; ++o) {
            double s = 0;
            for (size_t r = 0; r < grows.size(); ++r) s += gat(r, o);
            store_from_double(g.b.raw_data(), gy.dtype(), o, s);
        }
    }
    return g;
}

}  // namespace goose::ops
