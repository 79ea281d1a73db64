// Cases of the losses: cross_entropy over a shape grid (i64 and i32 targets, ignored positions,
// every position ignored, a custom ignore_index, a transposed input), mse and bce_with_logits
// over a shape grid and with a transposed input.
#include "common/op_cases.h"
#include "goose/autograd/loss.h"

namespace goose::test {

namespace {
// Targets of `shape` in [0, v) with about a third of the positions set to `ignore`.
Tensor targets_with_ignored(const Shape& shape, int64_t v, int64_t ignore, Rng& r) {
    Tensor t = Tensor::empty(shape, DType::i64);
    for (int64_t k = 0; k < t.numel(); ++k)
        t.data<int64_t>()[k] = r.uniform() < 0.35 ? ignore : r.randint(0, v);
    return t;
}

// Input k, as a view with its first two dims swapped (a strided tensor), without gradient.
Var transposed(const Vars& x, size_t k) { return Var(x[k].value().transpose(0, 1), false); }
}  // namespace

GOOSE_OP_CASES(loss) {
    std::vector<OpCase> v;
    // ---- cross_entropy: logits (..., V), targets (...) ----
    // [100, 201]: above the threads threshold of the fast kernels
    const Shape grid[] = {Shape{7},        Shape{1, 7},   Shape{1, 1},    Shape{3, 37},
                          Shape{2, 5, 67}, Shape{4, 130}, Shape{100, 201}};
    for (const Shape& s : grid) {
        const Shape ts = s.without(s.ndim() - 1);
        const int64_t vocab = s[s.ndim() - 1];
        for (DType it : {DType::i64, DType::i32})
            v.push_back({.op = "cross_entropy",
                         .label = s.str() + (it == DType::i32 ? " i32" : " i64"),
                         .inputs = {{.shape = s},
                                    {.shape = ts, .init = Init::index, .hi = vocab,
                                     .index_dtype = it}},
                         .fn = [](Vars& x) {
                             return Vars{ag::cross_entropy(x[0], x[1].value())};
                         }});
    }
    const Shape ig = Shape{3, 4, 37};
    v.push_back({.op = "cross_entropy",
                 .label = "ignored positions [3, 4, 37]",
                 .inputs = {{.shape = ig},
                            {.shape = Shape{3, 4},
                             .init = Init::custom,
                             .make = [](DType, Rng& r) {
                                 return targets_with_ignored(Shape{3, 4}, 37, -100, r);
                             }}},
                 .fn = [](Vars& x) { return Vars{ag::cross_entropy(x[0], x[1].value())}; }});
    v.push_back({.op = "cross_entropy",
                 .label = "ignore_index 5 [6, 7]",
                 .inputs = {{.shape = Shape{6, 7}},
                            {.shape = Shape{6},
                             .init = Init::custom,
                             .make = [](DType, Rng& r) {
                                 return targets_with_ignored(Shape{6}, 7, 5, r);
                             }}},
                 .fn = [](Vars& x) { return Vars{ag::cross_entropy(x[0], x[1].value(), 5)}; }});
    v.push_back({.op = "cross_entropy",
                 .label = "all ignored [3, 7]",
                 .inputs = {{.shape = Shape{3, 7}},
                            {.shape = Shape{3},
                             .init = Init::custom,
                             .make = [](DType, Rng&) {
                                 return Tensor::full(Shape{3}, -100, DType::i64);
                             }}},
                 .fn = [](Vars& x) { return Vars{ag::cross_entropy(x[0], x[1].value())}; }});
    v.push_back({.op = "cross_entropy",
                 .label = "large logits [5, 67]",
                 .inputs = {{.shape = Shape{5, 67},
                             .init = Init::custom,
                             .make = [](DType dt, Rng& r) {
                                 return Tensor::randn(Shape{5, 67}, r, DType::f64, 50, 10).to(dt);
                             }},
                            {.shape = Shape{5}, .init = Init::index, .hi = 67}},
                 .fn = [](Vars& x) { return Vars{ag::cross_entropy(x[0], x[1].value())}; },
                 .atol = 1e-4});
    // A transposed (non-contiguous) logits view of an input without gradient.
    v.push_back({.op = "cross_entropy",
                 .label = "transposed [19, 37]",
                 .inputs = {{.shape = Shape{19, 37}},
                            {.shape = Shape{19}, .init = Init::index, .hi = 37},
                            {.shape = Shape{37, 19}, .grad = false}},
                 .fn = [](Vars& x) {
                     return Vars{ag::cross_entropy(transposed(x, 2), x[1].value()),
                                 ag::cross_entropy(x[0], x[1].value())};
                 }});

    // ---- mse and bce_with_logits: two same-shape inputs ----
    // [5, 4099]: several blocks of the fast partial sums, and threads
    const Shape pair_grid[] = {Shape{1}, Shape{7}, Shape{3, 37}, Shape{2, 5, 67}, Shape{5, 4099}};
    for (const Shape& s : pair_grid) {
        v.push_back({.op = "mse",
                     .label = s.str(),
                     .inputs = {{.shape = s}, {.shape = s}},
                     .fn = [](Vars& x) { return Vars{ag::mse(x[0], x[1])}; }});
        v.push_back({.op = "bce_with_logits",
                     .label = s.str(),
                     .inputs = {{.shape = s}, {.shape = s, .init = Init::unit_interval}},
                     .fn = [](Vars& x) { return Vars{ag::bce_with_logits(x[0], x[1])}; }});
    }
    v.push_back({.op = "mse",
                 .label = "transposed pred [19, 3]",
                 .inputs = {{.shape = Shape{19, 3}}, {.shape = Shape{3, 19}, .grad = false}},
                 .fn = [](Vars& x) { return Vars{ag::mse(transposed(x, 1), x[0])}; }});
    v.push_back({.op = "bce_with_logits",
                 .label = "transposed logits [19, 3]",
                 .inputs = {{.shape = Shape{19, 3}, .init = Init::unit_interval},
                            {.shape = Shape{3, 19}, .grad = false}},
                 .fn = [](Vars& x) { return Vars{ag::bce_with_logits(transposed(x, 1), x[0])}; }});
    // Wide logits: exp(-|x|) underflows and max(x, 0) dominates; hard 0/1 targets.
    v.push_back({.op = "bce_with_logits",
                 .label = "wide logits, hard targets [41]",
                 .inputs = {{.shape = Shape{41},
                             .init = Init::custom,
                             .make = [](DType dt, Rng& r) {
                                 return Tensor::randn(Shape{41}, r, DType::f64, 0, 30).to(dt);
                             }},
                            {.shape = Shape{41},
                             .init = Init::custom,
                             .make = [](DType dt, Rng& r) {
                                 Tensor t = Tensor::empty(Shape{41}, DType::f64);
                                 for (int64_t k = 0; k < 41; ++k)
                                     t.data<double>()[k] = r.uniform() < 0.5 ? 0.0 : 1.0;
                                 return t.to(dt);
                             }}},
                 .fn = [](Vars& x) { return Vars{ag::bce_with_logits(x[0], x[1])}; }});
    // The large cases are there for the threaded fast paths: a few finite differences suffice.
    for (OpCase& c : v)
        if (c.inputs[0].shape.numel() > 16384) c.fd_max_elems = 8;
    return v;
}

}  // namespace goose::test
