// Front end of softmax and log_softmax: checks, then dispatch.
#include "goose/ops/softmax.h"

#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#ifdef GOOSE_CUDA
#include "ops/cuda/cuda_ops.h"
#endif

namespace goose::ops {

namespace {
void check_input(const char* op, const Tensor& x) {
    check::defined(op, x, "input");
    check::float_dtype(op, x);
    check::ndim_between(op, x, 1, kMaxDims, "input");
}

void check_backward(const char* op, const Tensor& gy, const Tensor& y) {
    check_input(op, y);
    check::defined(op, gy, "output gradient");
    check::same_shape(op, gy, y);
    check::same_dtype(op, gy, y);
}
}  // namespace

Tensor softmax_forward(const Tensor& x) {
    check_input("softmax", x);
    switch (backend_of(x)) {
        case Backend::ref: return softmax_forward_ref(x);
        case Backend::cpu: return softmax_forward_cpu(x);
#ifdef GOOSE_CUDA
        case Backend::cuda: return softmax_forward_cuda(x);
#endif
        default: no_kernel("softmax", backend_of(x));
    }
}

Tensor softmax_backward(const Tensor& gy, const Tensor& y) {
    check_backward("softmax", gy, y);
    switch (backend_of("softmax", {&gy, &y})) {
        case Backend::ref: return softmax_backward_ref(gy, y);
        case Backend::cpu: return softmax_backward_cpu(gy, y);
#ifdef GOOSE_CUDA
        case Backend::cuda: return softmax_backward_cuda(gy, y);
#endif
        default: no_kernel("softmax", backend_of(y));
    }
}

Tensor log_softmax_forward(const Tensor& x) {
    check_input("log_softmax", x);
    switch (backend_of(x)) {
        case Backend::ref: return log_softmax_forward_ref(x);
        case Backend::cpu: return log_softmax_forward_cpu(x);
#ifdef GOOSE_CUDA
        case Backend::cuda: return log_softmax_forward_cuda(x);
#endif
        default: no_kernel("log_softmax", backend_of(x));
    }
}

Tensor log_softmax_backward(const Tensor& gy, const Tensor& y) {
    check_backward("log_softmax", gy, y);
    switch (backend_of("log_softmax", {&gy, &y})) {
        case Backend::ref: return log_softmax_backward_ref(gy, y);
        case Backend::cpu: return log_softmax_backward_cpu(gy, y);
#ifdef GOOSE_CUDA
        case Backend::cuda: return log_softmax_backward_cuda(gy, y);
#endif
        default: no_kernel("log_softmax", backend_of(y));
    }
}

}  // namespace goose::ops
