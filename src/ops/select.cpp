// Front end of the select family (where, masked_fill): checks, then dispatch.
#include "goose/ops/select.h"

#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#include "ops/binary_checks.h"
#ifdef GOOSE_CUDA
#include "ops/cuda/cuda_ops.h"
#endif

namespace goose::ops {

namespace {
void check_mask(const char* name, const Tensor& m, const char* what) {
    check::defined(name, m, what);
    if (m.dtype() != DType::u8)
        fail("{}: {} must be a u8 mask (nonzero = set), got {}", name, what, m.desc());
}
}  // namespace

Tensor where_forward(const Tensor& cond, const Tensor& a, const Tensor& b) {
    check_mask("where", cond, "cond");
    check_operands("where", {{&a, "a"}, {&b, "b"}});
    broadcast3("where", cond, a, b);
    switch (backend_of("where", {&cond, &a, &b})) {
        case Backend::ref: return where_forward_ref(cond, a, b);
        case Backend::cpu: return where_forward_cpu(cond, a, b);
#ifdef GOOSE_CUDA
        case Backend::cuda: return where_forward_cuda(cond, a, b);
#endif
        default: no_kernel("where", backend_of(a));
    }
}

std::array<Tensor, 2> where_backward(const Tensor& gy, const Tensor& cond, const Shape& a_shape,
                                     const Shape& b_shape, bool need_a, bool need_b) {
    check_mask("where", cond, "cond");
    check_operands("where", {{&gy, "gradient"}});
    const Shape out = broadcast_shapes(
        broadcast_shapes(cond.shape(), a_shape, "where"), b_shape, "where");
    if (gy.shape() != out)
        fail("where: gradient {} does not have the output's shape {}", gy.desc(), out.str());
    switch (backend_of("where", {&gy, &cond})) {
        case Backend::ref: return where_backward_ref(gy, cond, a_shape, b_shape, need_a, need_b);
        case Backend::cpu: return where_backward_cpu(gy, cond, a_shape, b_shape, need_a, need_b);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return where_backward_cuda(gy, cond, a_shape, b_shape, need_a, need_b);
#endif
        default: no_kernel("where", backend_of(gy));
    }
}

namespace {
void check_masked_fill(const Tensor& x, const Tensor& mask) {
    check_operands("masked_fill", {{&x, "input"}});
    check_mask("masked_fill", mask, "mask");
    const int n = x.ndim(), m = mask.ndim();
    bool ok = m <= n;
    for (int d = 0; d < m && ok; ++d) ok = mask.size(d) == 1 || mask.size(d) == x.size(n - m + d);
    if (!ok)
        fail("masked_fill: mask {} does not broadcast to the input's shape {}", mask.desc(),
             x.desc());
}
}  // namespace

Tensor masked_fill_forward(const Tensor& x, const Tensor& mask, double value) {
    check_masked_fill(x, mask);
    switch (backend_of("masked_fill", {&x, &mask})) {
        case Backend::ref: return masked_fill_forward_ref(x, mask, value);
        case Backend::cpu: return masked_fill_forward_cpu(x, mask, value);
#ifdef GOOSE_CUDA
        case Backend::cuda: return masked_fill_forward_cuda(x, mask, value);
#endif
        default: no_kernel("masked_fill", backend_of(x));
    }
}

Tensor masked_fill_backward(const Tensor& gy, const Tensor& mask) {
    return masked_fill_forward(gy, mask, 0.0);
}

}  // namespace goose::ops
