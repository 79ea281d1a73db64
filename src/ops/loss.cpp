// Front end of the losses: checks (including the range of every cross-entropy target), then
// dispatch.
#include "goose/ops/loss.h"

#include <string>

#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#ifdef GOOSE_CUDA
#include "ops/cuda/cuda_ops.h"
#endif

namespace goose::ops {

namespace {
// The multi-index of element k (row-major) of shape s, as "[i, j]".
std::string position_of(int64_t k, const Shape& s) {
    int64_t idx[kMaxDims] = {};
    for (int d = s.ndim() - 1; d >= 0; --d) {
        idx[d] = k % s[d];
        k /= s[d];
    }
    std::string p = "[";
    for (int d = 0; d < s.ndim(); ++d) p += (d ? ", " : "") + std::to_string(idx[d]);
    return p + "]";
}

template <class I>
void check_target_values(const Tensor& targets, const I* t, int64_t v, int64_t ignore_index) {
    const int64_t n = targets.numel();
    for (int64_t k = 0; k < n; ++k) {
        const auto tk = static_cast<int64_t>(t[k]);
        if (tk != ignore_index && (tk < 0 || tk >= v))
            fail("cross_entropy: target {} at position {} of targets {} is outside [0, {}) and is "
                 "not ignore_index ({})",
                 tk, position_of(k, targets.shape()), targets.desc(), v, ignore_index);
    }
}

void check_cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                         bool values) {
    const char* op = "cross_entropy";
    check::defined(op, logits, "logits");
    check::defined(op, targets, "targets");
    check::float_dtype(op, logits);
    check::index_dtype(op, targets);
    check::ndim_between(op, logits, 1, kMaxDims, "logits");
    if (targets.shape() != logits.shape().without(logits.ndim() - 1))
        fail("cross_entropy: targets {} must have the shape of logits {} without its last dim",
             targets.desc(), logits.desc());
    if (logits.size(-1) == 0) fail("cross_entropy: logits {} have no classes", logits.desc());
    if (!values || targets.device() != Device::cpu()) return;
    const Tensor t = targets.contiguous();
    if (t.dtype() == DType::i32)
        check_target_values(t, t.data<int32_t>(), logits.size(-1), ignore_index);
    else
        check_target_values(t, t.data<int64_t>(), logits.size(-1), ignore_index);
}

void check_scalar_grad(const char* op, const Tensor& gy, const Tensor& x) {
    check::defined(op, gy, "output gradient");
    if (gy.ndim() != 0) fail("{}: the output gradient must be 0-d, got {}", op, gy.desc());
    check::same_dtype(op, gy, x);
}

// Two same-shape, same-dtype float inputs (mse, bce_with_logits).
void check_pair(const char* op, const Tensor& a, const Tensor& b, const char* a_name,
                const char* b_name) {
    check::defined(op, a, a_name);
    check::defined(op, b, b_name);
    check::float_dtype(op, a);
    check::float_dtype(op, b);
    check::same_shape(op, a, b);
    check::same_dtype(op, a, b);
}
}  // namespace

CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                          int64_t ignore_index) {
    check_cross_entropy(logits, targets, ignore_index, true);
    switch (backend_of("cross_entropy", {&logits, &targets})) {
        case Backend::ref: return cross_entropy_forward_ref(logits, targets, ignore_index);
        case Backend::cpu: return cross_entropy_forward_cpu(logits, targets, ignore_index);
#ifdef GOOSE_CUDA
        case Backend::cuda: return cross_entropy_forward_cuda(logits, targets, ignore_index);
#endif
        default: no_kernel("cross_entropy", backend_of(logits));
    }
}

Tensor cross_entropy_backward(const Tensor& gy, const Tensor& logits, const Tensor& targets,
                              const Tensor& lse, int64_t ignore_index) {
    // The targets were checked by the forward; only shapes here.
    check_cross_entropy(logits, targets, ignore_index, false);
    check_scalar_grad("cross_entropy", gy, logits);
    check::defined("cross_entropy", lse, "lse");
    check::same_shape("cross_entropy", lse, targets);
    check::stats_dtype("cross_entropy", lse, logits, "lse");
    switch (backend_of("cross_entropy", {&gy, &logits, &targets, &lse})) {
        case Backend::ref:
            return cross_entropy_backward_ref(gy, logits, targets, lse, ignore_index);
        case Backend::cpu:
            return cross_entropy_backward_cpu(gy, logits, targets, lse, ignore_index);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return cross_entropy_backward_cuda(gy, logits, targets, lse, ignore_index);
#endif
        default: no_kernel("cross_entropy", backend_of(logits));
    }
}

Tensor mse_forward(const Tensor& pred, const Tensor& target) {
    check_pair("mse", pred, target, "pred", "target");
    switch (backend_of("mse", {&pred, &target})) {
        case Backend::ref: return mse_forward_ref(pred, target);
        case Backend::cpu: return mse_forward_cpu(pred, target);
#ifdef GOOSE_CUDA
        case Backend::cuda: return mse_forward_cuda(pred, target);
#endif
        default: no_kernel("mse", backend_of(pred));
    }
}

std::pair<Tensor, Tensor> mse_backward(const Tensor& gy, const Tensor& pred,
                                       const Tensor& target) {
    check_pair("mse", pred, target, "pred", "target");
    check_scalar_grad("mse", gy, pred);
    switch (backend_of("mse", {&gy, &pred, &target})) {
        case Backend::ref: return mse_backward_ref(gy, pred, target);
        case Backend::cpu: return mse_backward_cpu(gy, pred, target);
#ifdef GOOSE_CUDA
        case Backend::cuda: return mse_backward_cuda(gy, pred, target);
#endif
        default: no_kernel("mse", backend_of(pred));
    }
}

Tensor bce_with_logits_forward(const Tensor& logits, const Tensor& targets) {
    check_pair("bce_with_logits", logits, targets, "logits", "targets");
    switch (backend_of("bce_with_logits", {&logits, &targets})) {
        case Backend::ref: return bce_with_logits_forward_ref(logits, targets);
        case Backend::cpu: return bce_with_logits_forward_cpu(logits, targets);
#ifdef GOOSE_CUDA
        case Backend::cuda: return bce_with_logits_forward_cuda(logits, targets);
#endif
        default: no_kernel("bce_with_logits", backend_of(logits));
    }
}

std::pair<Tensor, Tensor> bce_with_logits_backward(const Tensor& gy, const Tensor& logits,
                                                   const Tensor& targets) {
    check_pair("bce_with_logits", logits, targets, "logits", "targets");
    check_scalar_grad("bce_with_logits", gy, logits);
    switch (backend_of("bce_with_logits", {&gy, &logits, &targets})) {
        case Backend::ref: return bce_with_logits_backward_ref(gy, logits, targets);
        case Backend::cpu: return bce_with_logits_backward_cpu(gy, logits, targets);
#ifdef GOOSE_CUDA
        case Backend::cuda: return bce_with_logits_backward_cuda(gy, logits, targets);
#endif
        default: no_kernel("bce_with_logits", backend_of(logits));
    }
}

}  // namespace goose::ops
