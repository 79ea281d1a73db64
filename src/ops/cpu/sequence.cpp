// Fast CPU embedding and token_shift: packed inputs, row copies, OpenMP over rows. The
// embedding backward splits the columns among threads, so each element of dweight sums its rows
// in id order whatever the thread count (deterministic).
#include <algorithm>
#include <cstring>

#include "goose/ops/sequence.h"

namespace goose::ops {

namespace {
constexpr int64_t kParallelMin = 65536;  // elements below which threads cost more
constexpr int64_t kColumnBlock = 64;     // columns per task in the embedding backward

template <class F, class I>
void gather(const F* w, const I* ids, F* y, int64_t n, int64_t C) {
#pragma omp parallel for schedule(static) if (n * C > kParallelMin)
    for (int64_t i = 0; i < n; ++i)
        std::memcpy(y + i * C, w + static_cast<int64_t>(ids[i]) * C, sizeof(F) * size_t(C));
}

template <class F, class I>
void scatter_add(const F* g, const I* ids, F* dw, int64_t n, int64_t C) {
    const int64_t blocks = (C + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (n * C > kParallelMin && blocks > 1)
    for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t c0 = blk * kColumnBlock, c1 = std::min(C, c0 + kColumnBlock);
        for (int64_t i = 0; i < n; ++i) {
            F* d = dw + static_cast<int64_t>(ids[i]) * C;
            const F* s = g + i * C;
#pragma omp simd
            for (int64_t c = c0; c < c1; ++c) d[c] += s[c];
        }
    }
}

template <class F>
Tensor embedding_forward_as(const Tensor& weight, const Tensor& ids) {
    const int64_t C = weight.size(1), n = ids.numel();
    Shape out = ids.shape();
    out.push_back(C);
    Tensor y = Tensor::empty(out, weight.dtype());
    if (n == 0 || C == 0) return y;
    const Tensor w = weight.contiguous(), id = ids.contiguous();
    if (id.dtype() == DType::i32)
        gather(w.data<F>(), id.data<int32_t>(), y.data<F>(), n, C);
    else
        gather(w.data<F>(), id.data<int64_t>(), y.data<F>(), n, C);
    return y;
}

template <class F>
Tensor embedding_backward_as(const Tensor& gy, const Tensor& ids, int64_t vocab) {
    const int64_t C = gy.size(-1), n = ids.numel();
    Tensor dw = Tensor::zeros(Shape{vocab, C}, gy.dtype());
    if (n == 0 || C == 0) return dw;
    const Tensor g = gy.contiguous(), id = ids.contiguous();
    if (id.dtype() == DType::i32)
        scatter_add(g.data<F>(), id.data<int32_t>(), dw.data<F>(), n, C);
    else
        scatter_add(g.data<F>(), id.data<int64_t>(), dw.data<F>(), n, C);
    return dw;
}

// y (B, T, C): y[b, 0] = first[b] (or zeros), y[b, 1:] = src[b, :T-1]. Packed.
template <class F>
void shift(const F* src, const F* first, F* y, int64_t B, int64_t T, int64_t C) {
    const size_t row = sizeof(F) * size_t(C);
#pragma omp parallel for schedule(static) if (B * T * C > kParallelMin && B > 1)
    for (int64_t b = 0; b < B; ++b) {
        F* yb = y + b * T * C;
        if (first)
            std::memcpy(yb, first + b * C, row);
        else
            std::memset(yb, 0, row);
        if (T > 1) std::memcpy(yb + C, src + b * T * C, row * size_t(T - 1));
    }
}

// dx (B, T, C): dx[b, :T-1] = gy[b, 1:], dx[b, T-1] = 0; dprev (B, C) = gy[:, 0].
template <class F>
void unshift(const F* gy, F* dx, F* dprev, int64_t B, int64_t T, int64_t C) {
    const size_t row = sizeof(F) * size_t(C);
#pragma omp parallel for schedule(static) if (B * T * C > kParallelMin && B > 1)
    for (int64_t b = 0; b < B; ++b) {
        const F* gb = gy + b * T * C;
        F* xb = dx + b * T * C;
        if (T > 1) std::memcpy(xb, gb + C, row * size_t(T - 1));
        if (T > 0) std::memset(xb + (T - 1) * C, 0, row);
        if (dprev) {
            if (T > 0)
                std::memcpy(dprev + b * C, gb, row);
            else
                std::memset(dprev + b * C, 0, row);
        }
    }
}

template <class F>
Tensor token_shift_forward_as(const Tensor& x, const Tensor& prev) {
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    if (x.numel() == 0) return y;
    const Tensor xc = x.contiguous();
    const Tensor pc = prev.defined() ? prev.contiguous() : Tensor();
    shift<F>(xc.data<F>(), pc.defined() ? pc.data<F>() : nullptr, y.data<F>(), x.size(0), x.size(1),
             x.size(2));
    return y;
}

template <class F>
TokenShiftGrads token_shift_backward_as(const Tensor& gy, bool want_prev) {
    const int64_t B = gy.size(0), T = gy.size(1), C = gy.size(2);
    TokenShiftGrads g;
    g.x = Tensor::empty(gy.shape(), gy.dtype());
    if (want_prev) g.prev = Tensor::empty(Shape{B, C}, gy.dtype());
    if (B == 0 || C == 0) return g;
    const Tensor gc = gy.contiguous();
    unshift<F>(T > 0 ? gc.data<F>() : nullptr, T > 0 ? g.x.data<F>() : nullptr,
               want_prev ? g.prev.data<F>() : nullptr, B, T, C);
    return g;
}
}  // namespace

Tensor embedding_forward_cpu(const Tensor& weight, const Tensor& ids) {
    return weight.dtype() == DType::f32 ? embedding_forward_as<float>(weight, ids)
                                        : embedding_forward_as<double>(weight, ids);
}

Tensor embedding_backward_cpu(const Tensor& gy, const Tensor& ids, int64_t vocab) {
    return gy.dtype() == DType::f32 ? embedding_backward_as<float>(gy, ids, vocab)
                                    : embedding_backward_as<double>(gy, ids, vocab);
}

Tensor token_shift_forward_cpu(const Tensor& x, const Tensor& prev) {
    return x.dtype() == DType::f32 ? token_shift_forward_as<float>(x, prev)
                                   : token_shift_forward_as<double>(x, prev);
}

TokenShiftGrads token_shift_backward_cpu(const Tensor& gy, bool want_prev) {
    return gy.dtype() == DType::f32 ? token_shift_backward_as<float>(gy, want_prev)
                                    : token_shift_backward_as<double>(gy, want_prev);
}

}  // namespace goose::ops
