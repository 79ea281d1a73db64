// Front end of the fused head + cross-entropy: argument checks, then the CUDA kernel or the
// composed reference.
#include "goose/ops/head_ce.h"

#include "goose/autograd/l2wrap.h"
#include "goose/ops/backend.h"
#include "goose/ops/binary.h"
#include "goose/ops/check.h"
#include "goose/ops/loss.h"
#include "goose/ops/matmul.h"
#ifdef GOOSE_CUDA
#include "ops/cuda/head_ce_cuda.h"
#endif

namespace goose::ops {

namespace {

void check_args(const Tensor& x, const Tensor& w, const Tensor& targets) {
    const char* op = "head_cross_entropy";
    check::defined(op, x, "x");
    check::defined(op, w, "w");
    check::defined(op, targets, "targets");
    check::index_dtype(op, targets);
    const bool cuda = x.device().is_cuda();
    if (cuda) {
        if (x.dtype() != DType::f32 && x.dtype() != DType::bf16)
            fail("{}: on CUDA x must be f32 or bf16, got {}", op, x.desc());
    } else {
        check::float_dtype(op, x);
    }
    check::same_dtype(op, x, w);
    check::ndim_between(op, x, 1, kMaxDims, "x");
    check::ndim(op, w, 2, "w (V, C)");
    if (x.size(-1) != w.size(1))
        fail("{}: x {} has {} features but w {} expects {} (w is (V, C))", op, x.desc(), x.size(-1),
             w.desc(), w.size(1));
    if (w.size(0) < 1) fail("{}: w {} has no vocabulary rows", op, w.desc());
    Shape lead;
    for (int d = 0; d < x.ndim() - 1; ++d) lead.push_back(x.size(d));
    if (targets.shape() != lead)
        fail("{}: targets {} must have x's leading shape {} (x {})", op, targets.desc(), lead.str(),
             x.desc());
    if (!(w.device() == x.device()))
        fail("{}: x {} and w {} are on different devices", op, x.desc(), w.desc());
}

}  // namespace

HeadCrossEntropyResult head_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets,
                                          const HeadCrossEntropyOptions& opt) {
    check_args(x, w, targets);
    if (x.device().is_cuda()) {
#ifdef GOOSE_CUDA
        return head_cross_entropy_cuda(x, w, targets, opt);
#else
        no_kernel("head_cross_entropy", Backend::cuda);
#endif
    }
    return head_cross_entropy_ref(x, w, targets, opt);
}

HeadCrossEntropyResult head_cross_entropy_ref(const Tensor& x, const Tensor& w,
                                              const Tensor& targets,
                                              const HeadCrossEntropyOptions& opt) {
    check_args(x, w, targets);
    if (!x.device().is_cpu()) fail("head_cross_entropy_ref: x {} must be on the CPU", x.desc());
    const int64_t c = x.size(-1), rows = x.numel() / std::max<int64_t>(c, 1);
    const Tensor x2 = x.reshape(Shape{rows, c});
    const Tensor t1 = targets.reshape(Shape{rows});
    const Tensor logits = linear_forward(x2, w);
    const CrossEntropyForward ce = cross_entropy_forward(logits, t1, opt.ignore_index);
    HeadCrossEntropyResult r;
    r.loss = ce.loss;
    Shape lead = targets.shape();
    r.lse = ce.lse.reshape(lead);
    if (!opt.need_dx && !opt.need_dw) return r;
    Tensor dlogits = cross_entropy_backward(Tensor::scalar(opt.gy, x.dtype()), logits, t1, ce.lse,
                                            opt.ignore_index);
    if (opt.l2wrap)
        dlogits = binary_forward(BinaryOp::add, dlogits, ag::l2wrap_logits_grad(logits, opt.gy));
    const LinearGrads g = linear_backward(dlogits, x2, w, false, opt.need_dx, opt.need_dw, false);
    if (opt.need_dx) r.dx = g.x.reshape(x.shape());
    if (opt.need_dw) r.dw = g.w;
    return r;
}

}  // namespace goose::ops
