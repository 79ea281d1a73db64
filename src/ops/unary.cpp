// Front end of the elementwise unary ops: checks, then dispatch.
#include "goose/ops/unary.h"

#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#include "ops/unary_math.h"
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

bool unary_has_output_derivative(UnaryOp op) { return unary_math::has_output_derivative(op); }

Tensor unary_backward_from_output(UnaryOp op, const Tensor& gy, const Tensor& y) {
    const char* name = unary_name(op);
    if (!unary_has_output_derivative(op))
        fail("{}: its derivative is not a function of its output (exp, tanh, sigmoid, relu and "
             "relu2 have one); pass the input to unary_backward instead",
             name);
    check::defined(name, y, "output");
    check::float_dtype(name, y);
    check::same_shape(name, gy, y);
    check::same_dtype(name, gy, y);
    switch (backend_of(name, {&gy, &y})) {
        case Backend::ref: return unary_backward_from_output_ref(op, gy, y);
        case Backend::cpu: return unary_backward_from_output_cpu(op, gy, y);
#ifdef GOOSE_CUDA
        case Backend::cuda: return unary_backward_from_output_cuda(op, gy, y);
#endif
        default: no_kernel(name, backend_of(y));
    }
}

}  // namespace ops
}  // namespace goose
