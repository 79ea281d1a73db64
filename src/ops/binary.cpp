// Front end of the binary family (add, sub, mul, div, scale, lerp): checks, then dispatch.
#include "goose/ops/binary.h"

#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#include "ops/binary_checks.h"
#ifdef GOOSE_CUDA
#include "ops/cuda/cuda_ops.h"
#endif

namespace goose {

const char* binary_name(BinaryOp op) {
    switch (op) {
        case BinaryOp::add: return "add";
        case BinaryOp::sub: return "sub";
        case BinaryOp::mul: return "mul";
        case BinaryOp::div: return "div";
    }
    return "?";
}

namespace ops {


Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b) {
    const char* name = binary_name(op);
    check_operands(name, {{&a, "a"}, {&b, "b"}});
    broadcast_shapes(a.shape(), b.shape(), name);
    switch (backend_of(name, {&a, &b})) {
        case Backend::ref: return binary_forward_ref(op, a, b);
        case Backend::cpu: return binary_forward_cpu(op, a, b);
#ifdef GOOSE_CUDA
        case Backend::cuda: return binary_forward_cuda(op, a, b);
#endif
        default: no_kernel(name, backend_of(a));
    }
}

std::array<Tensor, 2> binary_backward(BinaryOp op, const Tensor& gy, const Tensor& a,
                                      const Tensor& b, bool need_a, bool need_b) {
    const char* name = binary_name(op);
    check_operands(name, {{&a, "a"}, {&b, "b"}});
    check_grad(name, gy, broadcast_shapes(a.shape(), b.shape(), name), a);
    switch (backend_of(name, {&gy, &a, &b})) {
        case Backend::ref: return binary_backward_ref(op, gy, a, b, need_a, need_b);
        case Backend::cpu: return binary_backward_cpu(op, gy, a, b, need_a, need_b);
#ifdef GOOSE_CUDA
        case Backend::cuda: return binary_backward_cuda(op, gy, a, b, need_a, need_b);
#endif
        default: no_kernel(name, backend_of(a));
    }
}

Tensor scale_forward(const Tensor& x, double s) {
    check_operands("scale", {{&x, "input"}});
    switch (backend_of(x)) {
        case Backend::ref: return scale_forward_ref(x, s);
        case Backend::cpu: return scale_forward_cpu(x, s);
#ifdef GOOSE_CUDA
        case Backend::cuda: return scale_forward_cuda(x, s);
#endif
        default: no_kernel("scale", backend_of(x));
    }
}

Tensor scale_backward(const Tensor& gy, double s) {
    check_operands("scale", {{&gy, "gradient"}});
    return scale_forward(gy, s);
}

Tensor lerp_forward(const Tensor& a, const Tensor& b, const Tensor& w) {
    check_operands("lerp", {{&a, "a"}, {&b, "b"}, {&w, "w"}});
    broadcast3("lerp", a, b, w);
    switch (backend_of("lerp", {&a, &b, &w})) {
        case Backend::ref: return lerp_forward_ref(a, b, w);
        case Backend::cpu: return lerp_forward_cpu(a, b, w);
#ifdef GOOSE_CUDA
        case Backend::cuda: return lerp_forward_cuda(a, b, w);
#endif
        default: no_kernel("lerp", backend_of(a));
    }
}

std::array<Tensor, 3> lerp_backward(const Tensor& gy, const Tensor& a, const Tensor& b,
                                    const Tensor& w, std::array<bool, 3> needs) {
    check_operands("lerp", {{&a, "a"}, {&b, "b"}, {&w, "w"}});
    check_grad("lerp", gy, broadcast3("lerp", a, b, w), a);
    switch (backend_of("lerp", {&gy, &a, &b, &w})) {
        case Backend::ref: return lerp_backward_ref(gy, a, b, w, needs);
        case Backend::cpu: return lerp_backward_cpu(gy, a, b, w, needs);
#ifdef GOOSE_CUDA
        case Backend::cuda: return lerp_backward_cuda(gy, a, b, w, needs);
#endif
        default: no_kernel("lerp", backend_of(a));
    }
}

}  // namespace ops
}  // namespace goose
