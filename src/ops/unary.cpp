// Front end of the elementwise unary ops: checks, then dispatch.
#include "goose/ops/unary.h"

#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#ifdef GOOSE_CUDA
#include "ops/cuda/cuda_ops.h"
#endif

namespace goose {

const char* unary_name(UnaryOp op) {
    switch (op) {
        case UnaryOp::exp: return "exp";
        case UnaryOp::log: return "log";
        case UnaryOp::tanh: return "tanh";
        case UnaryOp::sigmoid: return "sigmoid";
        case UnaryOp::softplus: return "softplus";
        case UnaryOp::relu: return "relu";
        case UnaryOp::relu2: return "relu2";
        case UnaryOp::gelu_tanh: return "gelu_tanh";
        case UnaryOp::silu: return "silu";
        case UnaryOp::neg: return "neg";
        case UnaryOp::sqrt: return "sqrt";
        case UnaryOp::square: return "square";
    }
    return "?";
}

namespace ops {

Tensor unary_forward(UnaryOp op, const Tensor& x) {
    const char* name = unary_name(op);
    check::defined(name, x, "input");
    check::float_dtype(name, x);
    switch (backend_of(x)) {
        case Backend::ref: return unary_forward_ref(op, x);
        case Backend::cpu: return unary_forward_cpu(op, x);
#ifdef GOOSE_CUDA
        case Backend::cuda: return unary_forward_cuda(op, x);
#endif
        default: no_kernel(name, backend_of(x));
    }
}

Tensor unary_backward(UnaryOp op, const Tensor& gy, const Tensor& x) {
    const char* name = unary_name(op);
    check::defined(name, x, "input");
    check::float_dtype(name, x);
    check::same_shape(name, gy, x);
    check::same_dtype(name, gy, x);
    switch (backend_of(name, {&gy, &x})) {
        case Backend::ref: return unary_backward_ref(op, gy, x);
        case Backend::cpu: return unary_backward_cpu(op, gy, x);
#ifdef GOOSE_CUDA
        case Backend::cuda: return unary_backward_cuda(op, gy, x);
#endif
        default: no_kernel(name, backend_of(x));
    }
}

}  // namespace ops
}  // namespace goose
