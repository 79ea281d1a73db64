// Front end of causal attention: argument checks, the default scale, then dispatch.
#include "goose/ops/attention.h"

#include <algorithm>
#include <cmath>

#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#ifdef GOOSE_CUDA
#include "ops/cuda/cuda_ops.h"
#endif

namespace goose::ops {

namespace {
// Checks q, k, v and returns the scale to use.
double check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
    check::defined("attention", q, "q");
    check::defined("attention", k, "k");
    check::defined("attention", v, "v");
    check::float_dtype("attention", q);
    check::ndim("attention", q, 4, "q (B, H, T, N)");
    if (k.shape() != q.shape() || v.shape() != q.shape())
        fail("attention: q, k and v must have one shape (B, H, T, N): q {}, k {}, v {}", q.desc(),
             k.desc(), v.desc());
    check::same_dtype("attention", q, k);
    check::same_dtype("attention", q, v);
    if (!std::isfinite(scale)) fail("attention: scale must be finite, got {}", scale);
    return scale != 0 ? scale
                      : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(1, q.size(3))));
}
}  // namespace

AttentionOut attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
    scale = check_qkv(q, k, v, scale);
    const Backend be = backend_of("attention", {&q, &k, &v});
    switch (be) {
        case Backend::ref:
            return attention_forward_ref(q, k, v, scale);
        case Backend::cpu:
            return attention_forward_cpu(q, k, v, scale);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return attention_forward_cuda(q, k, v, scale);
#endif
        default:
            no_kernel("attention", be);
    }
}

AttentionGrads attention_backward(const Tensor& gy, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& y, const Tensor& lse, double scale,
                                  bool need_q, bool need_k, bool need_v) {
    scale = check_qkv(q, k, v, scale);
    check::defined("attention", gy, "the output gradient");
    check::defined("attention", y, "the saved output");
    check::defined("attention", lse, "the saved log-sum-exp");
    for (const Tensor* t : {&gy, &y})
        if (t->shape() != q.shape() || t->dtype() != q.dtype())
            fail("attention: output gradient and saved output must match q {}: got {} and {}",
                 q.desc(), gy.desc(), y.desc());
    const bool lse_f32 = q.dtype() == DType::bf16 && lse.dtype() == DType::f32;
    if (lse.shape() != Shape{q.size(0), q.size(1), q.size(2)} ||
        (lse.dtype() != q.dtype() && !lse_f32))
        fail("attention: saved log-sum-exp must be (B, H, T) like q {}, got {}", q.desc(),
             lse.desc());
    const Backend be = backend_of("attention", {&gy, &q, &k, &v, &y, &lse});
    switch (be) {
        case Backend::ref:
            return attention_backward_ref(gy, q, k, v, y, lse, scale, need_q, need_k, need_v);
        case Backend::cpu:
            return attention_backward_cpu(gy, q, k, v, y, lse, scale, need_q, need_k, need_v);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return attention_backward_cuda(gy, q, k, v, y, lse, scale, need_q, need_k, need_v);
#endif
        default:
            no_kernel("attention", be);
    }
}

}  // namespace goose::ops
