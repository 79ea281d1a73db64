// Front end of layer_norm, group_norm and l2_normalize: checks, then dispatch.
#include "goose/ops/norm.h"

#include <cmath>

#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#ifdef GOOSE_CUDA
#include "ops/cuda/cuda_ops.h"
#endif

namespace goose::ops {

namespace {
void check_x(const char* op, const Tensor& x) {
    check::defined(op, x, "input");
    check::float_dtype(op, x);
    check::ndim_between(op, x, 1, kMaxDims, "input");
}

void check_eps(const char* op, double eps) {
    if (!(eps >= 0) || !std::isfinite(eps))
        fail("{}: eps must be finite and >= 0, got {}", op, eps);
}

// w or b: undefined, or (C) of x's dtype.
void check_affine(const char* op, const Tensor& x, const Tensor& p, const char* what) {
    if (!p.defined()) return;
    const int64_t c = x.size(-1);
    if (p.ndim() != 1 || p.size(0) != c)
        fail("{}: {} must have shape [{}] (the last dim of x {}), got {}", op, what, c, x.desc(),
             p.desc());
    if (p.dtype() != x.dtype())
        fail("{}: {} {} must have the dtype of x {}", op, what, p.desc(), x.desc());
}

void check_groups(const Tensor& x, int groups) {
    if (groups < 1) fail("group_norm: groups must be >= 1, got {} (x {})", groups, x.desc());
    if (x.size(-1) % groups != 0)
        fail("group_norm: the {} channels of x {} are not divisible by groups = {}", x.size(-1),
             x.desc(), groups);
}

Shape stats_shape(const Tensor& x, int groups) {
    Shape s = x.shape().without(x.ndim() - 1);
    if (groups > 0) s.push_back(groups);
    return s;
}

// The backward's gy and saved statistics against x; groups 0 means layer_norm (no group dim).
void check_backward(const char* op, const Tensor& gy, const Tensor& x, const Tensor& w,
                    const Tensor& mean, const Tensor& rstd, int groups) {
    check_x(op, x);
    check_affine(op, x, w, "w");
    check::defined(op, gy, "output gradient");
    check::same_shape(op, gy, x);
    check::same_dtype(op, gy, x);
    check::defined(op, mean, "mean");
    check::defined(op, rstd, "rstd");
    const Shape s = stats_shape(x, groups);
    if (mean.shape() != s || rstd.shape() != s)
        fail("{}: mean {} and rstd {} must have shape {} for x {}", op, mean.desc(), rstd.desc(),
             s.str(), x.desc());
    check::stats_dtype(op, mean, x, "mean");
    check::stats_dtype(op, rstd, x, "rstd");
}
}  // namespace

NormForward layer_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
    const char* op = "layer_norm";
    check_x(op, x);
    check_affine(op, x, w, "w");
    check_affine(op, x, b, "b");
    check_eps(op, eps);
    switch (backend_of(op, {&x, &w, &b})) {
        case Backend::ref: return layer_norm_forward_ref(x, w, b, eps);
        case Backend::cpu: return layer_norm_forward_cpu(x, w, b, eps);
#ifdef GOOSE_CUDA
        case Backend::cuda: return layer_norm_forward_cuda(x, w, b, eps);
#endif
        default: no_kernel(op, backend_of(x));
    }
}

NormGrads layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& w,
                              const Tensor& mean, const Tensor& rstd, bool need_dw, bool need_db) {
    const char* op = "layer_norm";
    check_backward(op, gy, x, w, mean, rstd, 0);
    switch (backend_of(op, {&gy, &x, &w, &mean, &rstd})) {
        case Backend::ref: return layer_norm_backward_ref(gy, x, w, mean, rstd, need_dw, need_db);
        case Backend::cpu: return layer_norm_backward_cpu(gy, x, w, mean, rstd, need_dw, need_db);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return layer_norm_backward_cuda(gy, x, w, mean, rstd, need_dw, need_db);
#endif
        default: no_kernel(op, backend_of(x));
    }
}

NormForward group_norm_forward(const Tensor& x, int groups, const Tensor& w, const Tensor& b,
                               double eps) {
    const char* op = "group_norm";
    check_x(op, x);
    check_groups(x, groups);
    check_affine(op, x, w, "w");
    check_affine(op, x, b, "b");
    check_eps(op, eps);
    switch (backend_of(op, {&x, &w, &b})) {
        case Backend::ref: return group_norm_forward_ref(x, groups, w, b, eps);
        case Backend::cpu: return group_norm_forward_cpu(x, groups, w, b, eps);
#ifdef GOOSE_CUDA
        case Backend::cuda: return group_norm_forward_cuda(x, groups, w, b, eps);
#endif
        default: no_kernel(op, backend_of(x));
    }
}

NormGrads group_norm_backward(const Tensor& gy, const Tensor& x, int groups, const Tensor& w,
                              const Tensor& mean, const Tensor& rstd, bool need_dw, bool need_db) {
    const char* op = "group_norm";
    check_x(op, x);
    check_groups(x, groups);
    check_backward(op, gy, x, w, mean, rstd, groups);
    switch (backend_of(op, {&gy, &x, &w, &mean, &rstd})) {
        case Backend::ref:
            return group_norm_backward_ref(gy, x, groups, w, mean, rstd, need_dw, need_db);
        case Backend::cpu:
            return group_norm_backward_cpu(gy, x, groups, w, mean, rstd, need_dw, need_db);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return group_norm_backward_cuda(gy, x, groups, w, mean, rstd, need_dw, need_db);
#endif
        default: no_kernel(op, backend_of(x));
    }
}

Tensor l2_normalize_forward(const Tensor& x, double eps) {
    const char* op = "l2_normalize";
    check_x(op, x);
    check_eps(op, eps);
    switch (backend_of(x)) {
        case Backend::ref: return l2_normalize_forward_ref(x, eps);
        case Backend::cpu: return l2_normalize_forward_cpu(x, eps);
#ifdef GOOSE_CUDA
        case Backend::cuda: return l2_normalize_forward_cuda(x, eps);
#endif
        default: no_kernel(op, backend_of(x));
    }
}

Tensor l2_normalize_backward(const Tensor& gy, const Tensor& x, double eps) {
    const char* op = "l2_normalize";
    check_x(op, x);
    check_eps(op, eps);
    check::defined(op, gy, "output gradient");
    check::same_shape(op, gy, x);
    check::same_dtype(op, gy, x);
    switch (backend_of(op, {&gy, &x})) {
        case Backend::ref: return l2_normalize_backward_ref(gy, x, eps);
        case Backend::cpu: return l2_normalize_backward_cpu(gy, x, eps);
#ifdef GOOSE_CUDA
        case Backend::cuda: return l2_normalize_backward_cuda(gy, x, eps);
#endif
        default: no_kernel(op, backend_of(x));
    }
}

}  // namespace goose::ops
