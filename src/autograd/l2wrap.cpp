// L2Wrap: identity on the loss with an extra gradient at each row's maximal logit.
#include "goose/autograd/l2wrap.h"

#ifdef GOOSE_CUDA
#include "ops/cuda/l2wrap_cuda.h"
#include "goose/core/tensor.h"
#endif

namespace goose::ag {

namespace {

constexpr double kL2WrapFactor = 1e-4;

template <class T>
void l2wrap_rows(const T* x, T* g, int64_t rows, int64_t v, double scale) {
#pragma omp parallel for if (rows * v > (int64_t{1} << 16))
    for (int64_t r = 0; r < rows; ++r) {
        const T* row = x + r * v;
        int64_t best = 0;
        for (int64_t j = 1; j < v; ++j)
            if (row[j] > row[best]) best = j;  // first maximum
        g[r * v + best] = static_cast<T>(scale * static_cast<double>(row[best]));
    }
}

}  // namespace

Tensor l2wrap_logits_grad(const Tensor& logits, double gy) {
#ifdef GOOSE_CUDA
    if (logits.device().is_cuda()) return l2wrap_logits_grad_cuda(logits, gy, kL2WrapFactor);
#endif
    const Tensor x = logits.contiguous();
    const int64_t v = x.size(-1), rows = v > 0 ? x.numel() / v : 0;
    Tensor g = Tensor::zeros(x.shape(), x.dtype());
    if (rows == 0) return g;
    const double scale = gy * kL2WrapFactor / static_cast<double>(rows);
    if (x.dtype() == DType::f32)
        l2wrap_rows(x.data<float>(), g.data<float>(), rows, v, scale);
    else
        l2wrap_rows(x.data<double>(), g.data<double>(), rows, v, scale);
    return g;
}

Var l2wrap(const Var& loss, const Var& logits) {
    if (!loss.defined() || !logits.defined()) fail("l2wrap: loss and logits must be defined");
    const Tensor& lv = logits.value();
    if (loss.numel() != 1) fail("l2wrap: loss must have one element, got {}", loss.value().desc());
    if (lv.ndim() < 1 || lv.size(-1) < 1)
        fail("l2wrap: logits must be (..., V) with V >= 1, got {}", lv.desc());
    const bool cuda = lv.device().is_cuda() && cuda_compiled();
    if (cuda ? (lv.dtype() != DType::f32 && lv.dtype() != DType::bf16)
             : (lv.dtype() != DType::f32 && lv.dtype() != DType::f64))
        fail("l2wrap: logits must be f32 or f64 (f32 or bf16 on CUDA), got {}", lv.desc());
    return record("l2wrap", {loss, logits}, loss.value().clone(), [lv](GradIO& io) {
        const Tensor& gy = io.gy();
        if (io.needs(0)) io.set(0, gy);
        if (io.needs(1)) io.set(1, l2wrap_logits_grad(lv, gy.item()));
    });
}

}  // namespace goose::ag
