// Front end of matmul and linear: argument checks, then dispatch.
#include "goose/ops/matmul.h"

#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#include "ops/matmul_dims.h"
#ifdef GOOSE_CUDA
#include "ops/cuda/matmul_cuda.h"
#endif

namespace goose::ops {

namespace {
// f32 or f64; bf16 too on CUDA (cuBLASLt, fp32 accumulation).
void compute_dtype(const char* op, const Tensor& t) {
    if (t.dtype() == DType::bf16 && t.device().is_cuda()) return;
    check::float_dtype(op, t);
}

void check_matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
    check::defined("matmul", a, "a");
    check::defined("matmul", b, "b");
    compute_dtype("matmul", a);
    compute_dtype("matmul", b);
    check::same_dtype("matmul", a, b);
    check::ndim_between("matmul", a, 2, 4, "a");
    check::ndim_between("matmul", b, 2, 4, "b");
    if (b.ndim() > 2) {
        bool same = a.ndim() == b.ndim();
        for (int i = 0; same && i < a.ndim() - 2; ++i) same = a.size(i) == b.size(i);
        if (!same)
            fail("matmul: batch dims differ: a {}, b {} (b must have a's batch dims or be 2-D)",
                 a.desc(), b.desc());
    }
    const int64_t ka = trans_a ? a.size(-2) : a.size(-1);
    const int64_t kb = trans_b ? b.size(-1) : b.size(-2);
    if (ka != kb)
        fail(
            "matmul: inner dims differ: a {} has K = {}, b {} has K = {} (trans_a = {}, "
            "trans_b = {})",
            a.desc(), ka, b.desc(), kb, trans_a, trans_b);
}

void check_linear(const Tensor& x, const Tensor& w, const Tensor& b, bool has_bias) {
    check::defined("linear", x, "x");
    check::defined("linear", w, "w");
    // bf16 x with bf16 w: CUDA only (cuBLASLt, fp32 accumulation, bf16 y).
    const bool cuda_bf16 = x.dtype() == DType::bf16 && x.device().is_cuda();
    if (cuda_bf16 && w.dtype() != DType::bf16)
        fail("linear: bf16 x on CUDA needs bf16 w, got x {} and w {}", x.desc(), w.desc());
    if (!cuda_bf16) {
        if (x.dtype() == DType::bf16)
            fail(
                "linear: x must be f32 or f64, got x {} (bf16 is accepted for the weight w only, "
                "with f32 x; or for both x and w on CUDA)",
                x.desc());
        check::float_dtype("linear", x);
        if (w.dtype() == DType::bf16) {
            if (x.dtype() != DType::f32)
                fail("linear: bf16 weights need f32 x, got x {} and w {}", x.desc(), w.desc());
        } else if (w.dtype() != DType::f32 && w.dtype() != DType::f64) {
            fail("linear: w must be f32, f64 or bf16 (bf16 with f32 x), got w {} for x {}",
                 w.desc(), x.desc());
        } else {
            check::same_dtype("linear", x, w);
        }
    }
    check::ndim_between("linear", x, 1, kMaxDims, "x");
    check::ndim("linear", w, 2, "w (Cout, Cin)");
    if (x.size(-1) != w.size(1))
        fail("linear: x {} has {} input features but w {} expects {} (w is (Cout, Cin))", x.desc(),
             x.size(-1), w.desc(), w.size(1));
    if (has_bias) {
        check::same_dtype("linear", x, b);
        if (b.ndim() != 1 || b.size(0) != w.size(0))
            fail("linear: bias must be (Cout) = [{}] for w {}, got {}", w.size(0), w.desc(),
                 b.desc());
    }
}

void check_grad(const char* op, const Tensor& gy, const Tensor& like, const Shape& out) {
    check::defined(op, gy, "the output gradient");
    check::same_dtype(op, gy, like);
    if (gy.shape() != out)
        fail("{}: output gradient {} does not match the output shape {}", op, gy.desc(), out.str());
}
}  // namespace

Tensor matmul_forward(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
    check_matmul(a, b, trans_a, trans_b);
    const Backend be = backend_of("matmul", {&a, &b});
    switch (be) {
        case Backend::ref:
            return matmul_forward_ref(a, b, trans_a, trans_b);
        case Backend::cpu:
            return matmul_forward_cpu(a, b, trans_a, trans_b);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return matmul_forward_cuda(a, b, trans_a, trans_b);
#endif
        default:
            no_kernel("matmul", be);
    }
}

MatmulGrads matmul_backward(const Tensor& gy, const Tensor& a, const Tensor& b, bool trans_a,
                            bool trans_b, bool need_a, bool need_b) {
    check_matmul(a, b, trans_a, trans_b);
    check_grad("matmul", gy, a, matmul_dims(a, b, trans_a, trans_b).out);
    const Backend be = backend_of("matmul", {&gy, &a, &b});
    switch (be) {
        case Backend::ref:
            return matmul_backward_ref(gy, a, b, trans_a, trans_b, need_a, need_b);
        case Backend::cpu:
            return matmul_backward_cpu(gy, a, b, trans_a, trans_b, need_a, need_b);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return matmul_backward_cuda(gy, a, b, trans_a, trans_b, need_a, need_b);
#endif
        default:
            no_kernel("matmul", be);
    }
}

Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b) {
    check_linear(x, w, b, b.defined());
    const Backend be = backend_of("linear", {&x, &w, &b});
    switch (be) {
        case Backend::ref:
            return linear_forward_ref(x, w, b);
        case Backend::cpu:
            return linear_forward_cpu(x, w, b);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return linear_forward_cuda(x, w, b);
#endif
        default:
            no_kernel("linear", be);
    }
}

LinearGrads linear_backward(const Tensor& gy, const Tensor& x, const Tensor& w, bool has_bias,
                            bool need_x, bool need_w, bool need_b) {
    check_linear(x, w, Tensor(), false);
    if (w.dtype() == DType::bf16 && need_w && x.dtype() != DType::bf16)
        fail("linear: bf16 weights are inference-only: no gradient for w {} (x {})", w.desc(),
             x.desc());
    Shape out = x.shape();
    out[out.ndim() - 1] = w.size(0);
    check_grad("linear", gy, x, out);
    need_b = need_b && has_bias;
    const Backend be = backend_of("linear", {&gy, &x, &w});
    switch (be) {
        case Backend::ref:
            return linear_backward_ref(gy, x, w, has_bias, need_x, need_w, need_b);
        case Backend::cpu:
            return linear_backward_cpu(gy, x, w, has_bias, need_x, need_w, need_b);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return linear_backward_cuda(gy, x, w, has_bias, need_x, need_w, need_b);
#endif
        default:
            no_kernel("linear", be);
    }
}

}  // namespace goose::ops
