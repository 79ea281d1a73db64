// Reference embedding and token_shift: one element at a time, any strides, in double.
#include <vector>

#include "goose/core/element.h"
#include "goose/ops/sequence.h"

namespace goose::ops {

namespace {
int64_t id_at(const Tensor& ids, const int64_t* idx) {
    return static_cast<int64_t>(
        load_as_double(ids.raw_data(), ids.dtype(), offset_of(idx, ids.strides())));
}
// Element [idx..., c] of a tensor whose leading dims are indexed by idx (ndim - 1 entries).
double row_at(const Tensor& t, const int64_t* idx, int64_t c) {
    const int nd = t.ndim();
    int64_t o = c * t.strides()[nd - 1];
    for (int d = 0; d < nd - 1; ++d) o += idx[d] * t.strides()[d];
    return load_as_double(t.raw_data(), t.dtype(), o);
}
}  // namespace

Tensor embedding_forward_ref(const Tensor& weight, const Tensor& ids) {
    const int64_t C = weight.size(1);
    Shape out = ids.shape();
    out.push_back(C);
    Tensor y = Tensor::empty(out, weight.dtype());
    int64_t at = 0;
    for_each_index(ids.shape(), [&](const int64_t* idx) {
        const int64_t id = id_at(ids, idx);
        for (int64_t c = 0; c < C; ++c)
            store_from_double(y.raw_data(), y.dtype(), at++, weight.get({id, c}));
    });
    return y;
}

Tensor embedding_backward_ref(const Tensor& gy, const Tensor& ids, int64_t vocab) {
    const int64_t C = gy.size(-1);
    std::vector<double> dw(static_cast<size_t>(vocab * C), 0.0);
    for_each_index(ids.shape(), [&](const int64_t* idx) {
        const int64_t id = id_at(ids, idx);
        for (int64_t c = 0; c < C; ++c) dw[static_cast<size_t>(id * C + c)] += row_at(gy, idx, c);
    });
    Tensor g = Tensor::empty(Shape{vocab, C}, gy.dtype());
    for (size_t i = 0; i < dw.size(); ++i)
        store_from_double(g.raw_data(), g.dtype(), static_cast<int64_t>(i), dw[i]);
    return g;
}

Tensor token_shift_forward_ref(const Tensor& x, const Tensor& prev) {
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    int64_t at = 0;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < C; ++c) {
                const double v = t > 0            ? x.get({b, t - 1, c})
                                 : prev.defined() ? prev.get({b, c})
                                                  : 0.0;
                store_from_double(y.raw_data(), y.dtype(), at++, v);
            }
    return y;
}

TokenShiftGrads token_shift_backward_ref(const Tensor& gy, bool want_prev) {
    const int64_t B = gy.size(0), T = gy.size(1), C = gy.size(2);
    TokenShiftGrads g;
    g.x = Tensor::empty(gy.shape(), gy.dtype());
    int64_t at = 0;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < C; ++c)  // x[t] feeds y[t + 1]
                store_from_double(g.x.raw_data(), gy.dtype(), at++,
                                  t + 1 < T ? gy.get({b, t + 1, c}) : 0.0);
    if (want_prev) {  // prev feeds y[0]
        g.prev = Tensor::empty(Shape{B, C}, gy.dtype());
        at = 0;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t c = 0; c < C; ++c)
                store_from_double(g.prev.raw_data(), gy.dtype(), at++,
                                  T > 0 ? gy.get({b, 0, c}) : 0.0);
    }
    return g;
}

}  // namespace goose::ops
