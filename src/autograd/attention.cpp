// Autograd function of causal attention: saves the inputs, the output and the log-sum-exp.
#include "goose/autograd/attention.h"

namespace goose::ag {

Var attention(const Var& q, const Var& k, const Var& v, double scale) {
    if (!q.defined() || !k.defined() || !v.defined()) fail("attention: an input Var is undefined");
    ops::AttentionOut o = ops::attention_forward(q.value(), k.value(), v.value(), scale);
    const Tensor y = o.y;
    return record("attention", {q, k, v}, std::move(o.y),
                  [qv = q.value(), kv = k.value(), vv = v.value(), y, lse = std::move(o.lse),
                   scale](GradIO& io) {
                      ops::AttentionGrads g =
                          ops::attention_backward(io.gy(), qv, kv, vv, y, lse, scale, io.needs(0),
                                                  io.needs(1), io.needs(2));
                      io.set(0, std::move(g.q));
                      io.set(1, std::move(g.k));
                      io.set(2, std::move(g.v));
                  });
}

}  // namespace goose::ag
