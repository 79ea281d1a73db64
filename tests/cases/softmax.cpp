// Cases of softmax and log_softmax: a shape grid over the last axis, a transposed input, and
// large logits (stability: the row max is subtracted).
#include "common/op_cases.h"
#include "goose/autograd/softmax.h"

namespace goose::test {

namespace {
using SoftmaxFn = Var (*)(const Var&);
}

GOOSE_OP_CASES(softmax) {
    const std::pair<const char*, SoftmaxFn> ops[] = {{"softmax", ag::softmax},
                                                     {"log_softmax", ag::log_softmax}};
    // [100, 201]: above the threads threshold of the fast kernels
    const Shape grid[] = {Shape{1},       Shape{7},      Shape{1, 1},   Shape{3, 37},
                          Shape{2, 5, 67}, Shape{2, 130}, Shape{100, 201}};
    std::vector<OpCase> v;
    for (const auto& [name, f] : ops) {
        for (const Shape& s : grid)
            v.push_back({.op = name,
                         .label = s.str(),
                         .inputs = {{.shape = s}},
                         .fn = [f](Vars& x) { return Vars{f(x[0])}; }});
        // A transposed (non-contiguous) input: the softmax axis has stride 19. The view is of a
        // second input without gradient, which finite differences leave alone.
        v.push_back({.op = name,
                     .label = "transposed [19, 3]",
                     .inputs = {{.shape = Shape{3, 19}}, {.shape = Shape{3, 19}, .grad = false}},
                     .fn = [f](Vars& x) {
                         Var t(x[1].value().transpose(0, 1), false);
                         return Vars{f(t), f(x[0])};
                     }});
        // Logits of size ~100: exp would overflow without the max shift.
        v.push_back({.op = name,
                     .label = "large logits [4, 37]",
                     .inputs = {{.shape = Shape{4, 37},
                                 .init = Init::custom,
                                 .make = [](DType dt, Rng& r) {
                                     return Tensor::randn(Shape{4, 37}, r, DType::f64, 100, 3)
                                         .to(dt);
                                 }}},
                     .fn = [f](Vars& x) { return Vars{f(x[0])}; },
                     .atol = 1e-4});
    }
    // The large cases are there for the threaded fast paths: a few finite differences suffice.
    for (OpCase& c : v)
        if (c.inputs[0].shape.numel() > 16384) c.fd_max_elems = 8;
    return v;
}

}  // namespace goose::test
