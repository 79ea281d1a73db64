// Cases of layer_norm, group_norm and l2_normalize: shape grids (C = 1, 7, 37, 67, 130), with
// and without the affine w and b, group counts 1, 3 and 4 (RWKV-7's ln_x: head size 16, eps
// 64e-5), a large mean (two-pass variance), rows whose norm is clamped, transposed inputs.
#include "common/op_cases.h"
#include "goose/autograd/norm.h"

namespace goose::test {

namespace {
// Input k, as a view with its first two dims swapped (a strided tensor), without gradient.
Var transposed(const Vars& x, size_t k) { return Var(x[k].value().transpose(0, 1), false); }

Input channels(int64_t c) { return {.shape = Shape{c}}; }

// x of `shape` drawn from N(mean, 1).
Input offset_input(const Shape& shape, double mean) {
    return {.shape = shape, .init = Init::custom, .make = [shape, mean](DType dt, Rng& r) {
                return Tensor::randn(shape, r, DType::f64, mean, 1).to(dt);
            }};
}
}  // namespace

GOOSE_OP_CASES(norm) {
    std::vector<OpCase> v;
    // ---- layer_norm ----
    // [100, 201]: above the threads threshold, and more rows than dw/db chunks
    const Shape grid[] = {Shape{1},        Shape{7},      Shape{1, 1},   Shape{3, 37},
                          Shape{2, 5, 67}, Shape{2, 130}, Shape{100, 201}};
    for (const Shape& s : grid) {
        const int64_t c = s[s.ndim() - 1];
        v.push_back({.op = "layer_norm",
                     .label = s.str() + " affine",
                     .inputs = {{.shape = s}, channels(c), channels(c)},
                     .fn = [](Vars& x) { return Vars{ag::layer_norm(x[0], x[1], x[2])}; }});
        v.push_back({.op = "layer_norm",
                     .label = s.str() + " no affine",
                     .inputs = {{.shape = s}},
                     .fn = [](Vars& x) { return Vars{ag::layer_norm(x[0], Var(), Var())}; }});
    }
    v.push_back({.op = "layer_norm",
                 .label = "w only, eps 1e-3 [4, 37]",
                 .inputs = {{.shape = Shape{4, 37}}, channels(37)},
                 .fn = [](Vars& x) { return Vars{ag::layer_norm(x[0], x[1], Var(), 1e-3)}; }});
    v.push_back({.op = "layer_norm",
                 .label = "b only [4, 7]",
                 .inputs = {{.shape = Shape{4, 7}}, channels(7)},
                 .fn = [](Vars& x) { return Vars{ag::layer_norm(x[0], Var(), x[1])}; }});
    // A mean of 100 and unit spread: a one-pass E[x^2] - E[x]^2 would lose the variance in f32.
    v.push_back({.op = "layer_norm",
                 .label = "mean 100 [3, 67]",
                 .inputs = {offset_input(Shape{3, 67}, 100), channels(67), channels(67)},
                 .fn = [](Vars& x) { return Vars{ag::layer_norm(x[0], x[1], x[2])}; },
                 .atol = 2e-4});
    v.push_back({.op = "layer_norm",
                 .label = "transposed [19, 37]",
                 .inputs = {{.shape = Shape{19, 37}}, channels(37), channels(37),
                            {.shape = Shape{37, 19}, .grad = false}},
                 .fn = [](Vars& x) {
                     return Vars{ag::layer_norm(transposed(x, 3), x[1], x[2]),
                                 ag::layer_norm(x[0], x[1], x[2])};
                 }});

    // ---- group_norm: (shape, groups, eps) ----
    struct G {
        Shape s;
        int groups;
        double eps;
    };
    const G groups[] = {{Shape{2, 21}, 1, 1e-5},       {Shape{2, 3, 21}, 3, 1e-5},
                        {Shape{3, 64}, 4, 64e-5},      {Shape{1, 64}, 4, 64e-5},
                        {Shape{5, 7}, 7, 1e-5},        {Shape{2, 130}, 10, 1e-5},
                        {Shape{21}, 3, 1e-5},          {Shape{2, 50, 256}, 16, 64e-5}};
    for (const G& g : groups) {
        const int64_t c = g.s[g.s.ndim() - 1];
        const std::string label = g.s.str() + " groups " + std::to_string(g.groups);
        v.push_back({.op = "group_norm",
                     .label = label + " affine",
                     .inputs = {{.shape = g.s}, channels(c), channels(c)},
                     .fn = [g](Vars& x) {
                         return Vars{ag::group_norm(x[0], g.groups, x[1], x[2], g.eps)};
                     }});
        v.push_back({.op = "group_norm",
                     .label = label + " no affine",
                     .inputs = {{.shape = g.s}},
                     .fn = [g](Vars& x) {
                         return Vars{ag::group_norm(x[0], g.groups, Var(), Var(), g.eps)};
                     }});
    }
    v.push_back({.op = "group_norm",
                 .label = "mean 100 groups 4 [3, 64]",
                 .inputs = {offset_input(Shape{3, 64}, 100), channels(64), channels(64)},
                 .fn = [](Vars& x) { return Vars{ag::group_norm(x[0], 4, x[1], x[2], 64e-5)}; },
                 .atol = 2e-4});
    v.push_back({.op = "group_norm",
                 .label = "transposed groups 3 [19, 21]",
                 .inputs = {{.shape = Shape{19, 21}}, channels(21), channels(21),
                            {.shape = Shape{21, 19}, .grad = false}},
                 .fn = [](Vars& x) {
                     return Vars{ag::group_norm(transposed(x, 3), 3, x[1], x[2]),
                                 ag::group_norm(x[0], 3, x[1], x[2])};
                 }});

    // ---- l2_normalize ----
    for (const Shape& s : grid)
        v.push_back({.op = "l2_normalize",
                     .label = s.str(),
                     .inputs = {{.shape = s}},
                     .fn = [](Vars& x) { return Vars{ag::l2_normalize(x[0])}; }});
    // Rows 0 and 2 scaled by 0.01: their norm (about 0.03) is clamped to eps = 0.5; the other
    // rows' norms (about 2.6) are not. Both branches, away from the kink.
    v.push_back({.op = "l2_normalize",
                 .label = "clamped rows, eps 0.5 [4, 7]",
                 .inputs = {{.shape = Shape{4, 7},
                             .init = Init::custom,
                             .make = [](DType dt, Rng& r) {
                                 Tensor t = Tensor::randn(Shape{4, 7}, r, DType::f64);
                                 for (int64_t j = 0; j < 7; ++j) {
                                     t.data<double>()[j] *= 0.01;
                                     t.data<double>()[14 + j] *= 0.01;
                                 }
                                 return t.to(dt);
                             }}},
                 .fn = [](Vars& x) { return Vars{ag::l2_normalize(x[0], 0.5)}; }});
    v.push_back({.op = "l2_normalize",
                 .label = "transposed [19, 37]",
                 .inputs = {{.shape = Shape{19, 37}}, {.shape = Shape{37, 19}, .grad = false}},
                 .fn = [](Vars& x) {
                     return Vars{ag::l2_normalize(transposed(x, 1)), ag::l2_normalize(x[0])};
                 }});
    // The large cases are there for the threaded fast paths: a few finite differences suffice.
    for (OpCase& c : v)
        if (c.inputs[0].shape.numel() > 16384) c.fd_max_elems = 8;
    return v;
}

}  // namespace goose::test
