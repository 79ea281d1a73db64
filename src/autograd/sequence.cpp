// Autograd functions of embedding and token_shift.
#include "goose/autograd/sequence.h"

namespace goose::ag {

Var embedding(const Var& weight, const Tensor& ids) {
    if (!weight.defined()) fail("embedding: weight is undefined");
    Tensor y = ops::embedding_forward(weight.value(), ids);
    return record("embedding", {weight}, std::move(y), [ids, vocab = weight.size(0)](GradIO& io) {
        io.set(0, ops::embedding_backward(io.gy(), ids, vocab));
    });
}

Var token_shift(const Var& x, const Var& prev) {
    if (!x.defined()) fail("token_shift: x is undefined");
    const bool has_prev = prev.defined();
    Tensor y = ops::token_shift_forward(x.value(), has_prev ? prev.value() : Tensor());
    std::vector<Var> inputs{x};
    if (has_prev) inputs.push_back(prev);
    return record("token_shift", std::move(inputs), std::move(y), [has_prev](GradIO& io) {
        ops::TokenShiftGrads g = ops::token_shift_backward(io.gy(), has_prev && io.needs(1));
        io.set(0, std::move(g.x));
        if (has_prev) io.set(1, std::move(g.prev));
    });
}

}  // namespace goose::ag
