// Fused LM head + cross-entropy as one tape entry (the gradients come with the forward).
#include "goose/autograd/head_ce.h"

#include "goose/ops/binary.h"
#include "goose/ops/head_ce.h"

namespace goose::ag {

Var head_cross_entropy(const Var& x, const Var& w, const Tensor& targets, bool l2wrap) {
    if (!x.defined() || !w.defined()) fail("head_cross_entropy: x and w must be defined");
    ops::HeadCrossEntropyOptions opt;
    opt.l2wrap = l2wrap;
    opt.need_dx = x.requires_grad() && grad_enabled();
    opt.need_dw = w.requires_grad() && grad_enabled();
    ops::HeadCrossEntropyResult r = ops::head_cross_entropy(x.value(), w.value(), targets, opt);
    const DType xdt = x.dtype();
    // A bf16 weight that is a leaf (a trained parameter) keeps the f32 gradient the product
    // accumulated in: optimizers take f32 gradients for bf16 parameters (the mixed-precision
    // masters are f32), and narrowing it would cost a pass over V x C values per step.
    const DType wdt = w.dtype() == DType::bf16 && w.is_leaf() ? DType::f32 : w.dtype();
    return record("head_cross_entropy", {x, w}, r.loss,
                  [dx = r.dx, dw = r.dw, xdt, wdt](GradIO& io) mutable {
                      // d/dx and d/dw were computed for an upstream gradient of 1 (backward's
                      // default seed when this loss is the root: no pass to scale them). They
                      // are handed over, not shared: a leaf adopts a gradient buffer nothing
                      // else holds, and copies one that is shared (V65536 C768 f32 on the
                      // H100: a 137 us copy per step).
                      const Tensor gy = io.gy();
                      const bool one = io.gy_is_one();
                      auto scaled = [&](Tensor& g, DType dt) {
                          Tensor own = std::move(g);  // the tape runs this once
                          if (one) return own.to(dt);
                          return ops::binary_forward(BinaryOp::mul, own, gy.to(own.dtype()))
                              .to(dt);
                      };
                      if (io.needs(0) && dx.defined()) io.set(0, scaled(dx, xdt));
                      if (io.needs(1) && dw.defined()) io.set(1, scaled(dw, wdt));
                  });
}

}  // namespace goose::ag
