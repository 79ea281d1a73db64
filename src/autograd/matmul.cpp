// Autograd functions of matmul and linear.
#include "goose/autograd/matmul.h"

namespace goose::ag {

Var matmul(const Var& a, const Var& b, bool trans_a, bool trans_b) {
    if (!a.defined() || !b.defined()) fail("matmul: an input Var is undefined");
    Tensor y = ops::matmul_forward(a.value(), b.value(), trans_a, trans_b);
    return record("matmul", {a, b}, std::move(y),
                  [av = a.value(), bv = b.value(), trans_a, trans_b](GradIO& io) {
                      ops::MatmulGrads g = ops::matmul_backward(io.gy(), av, bv, trans_a, trans_b,
                                                                io.needs(0), io.needs(1));
                      io.set(0, std::move(g.a));
                      io.set(1, std::move(g.b));
                  });
}

Var linear(const Var& x, const Var& w, const Var& b) {
    if (!x.defined() || !w.defined()) fail("linear: x or w is undefined");
    // bf16 weights with f32 x serve inference: their backward gives dx (and db), never dw.
    // bf16 x and w on CUDA train (cuBLASLt, fp32 accumulation): all gradients flow.
    const bool cuda_bf16 = x.dtype() == DType::bf16 && x.value().device().is_cuda();
    if (w.dtype() == DType::bf16 && !cuda_bf16 && w.requires_grad() && grad_enabled())
        fail(
            "linear: bf16 weights are inference-only: w {} requires grad (train with f32 "
            "weights, or clear requires_grad / use NoGradGuard)",
            w.value().desc());
    const bool has_bias = b.defined();
    Tensor y = ops::linear_forward(x.value(), w.value(), has_bias ? b.value() : Tensor());
    std::vector<Var> inputs{x, w};
    if (has_bias) inputs.push_back(b);
    return record("linear", std::move(inputs), std::move(y),
                  [xv = x.value(), wv = w.value(), has_bias,
                   defer = weight_grads_deferred()](GradIO& io) {
                      const bool need_b = has_bias && io.needs(2);
                      const bool defer_w = defer && io.needs(1);
                      ops::LinearGrads g =
                          ops::linear_backward(io.gy(), xv, wv, has_bias, io.needs(0),
                                               io.needs(1) && !defer_w, need_b);
                      io.set(0, std::move(g.x));
                      if (has_bias) io.set(2, std::move(g.b));
                      if (!defer_w) {
                          io.set(1, std::move(g.w));
                          return;
                      }
                      io.defer(1, [gy = io.gy(), xv, wv] {
                          return ops::linear_backward(gy, xv, wv, false, false, true, false).w;
                      });
                  });
}

}  // namespace goose::ag
