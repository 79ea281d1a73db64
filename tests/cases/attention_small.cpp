// Cases of causal attention on the per-head path for short sequences (T <= 64): the ICL
// prompt shape, q, k, v read as (B, H, T, N) views of (B, T, H, N) projections (no packing),
// head sizes that are not multiples of the SIMD width, and one-token sequences.
#include "common/op_cases.h"
#include "goose/autograd/attention.h"
#include "goose/autograd/shape.h"

namespace goose::test {

GOOSE_OP_CASES(attention_small) {
    std::vector<OpCase> v;
    // (B, H, T, N) views of packed (B, T, H, N) tensors.
    const auto view = [](Shape s) {
        return Input{.shape = s, .init = Init::custom, .make = [s](DType dt, Rng& r) {
                         return Tensor::randn(Shape{s[0], s[2], s[1], s[3]}, r, DType::f64)
                             .to(dt)
                             .transpose(1, 2);
                     }};
    };
    for (const Shape& s : {Shape{2, 4, 22, 16}, Shape{3, 2, 1, 16}, Shape{1, 3, 22, 13},
                           Shape{2, 2, 64, 8}}) {
        v.push_back({.op = "attention",
                     .label = "per-head path, (B, T, H, N) views " + s.str(),
                     .inputs = {view(s), view(s), view(s)},
                     .fn = [](Vars& x) { return Vars{ag::attention(x[0], x[1], x[2])}; },
                     .atol = 5e-5,
                     .rtol = 1e-4,
                     .fd = false});
    }
    // The default ICL transformer's shape (B 64, 4 heads of 16, 2 x 11 tokens), packed.
    const Shape icl{64, 4, 22, 16};
    v.push_back({.op = "attention",
                 .label = "per-head path, ICL shape " + icl.str(),
                 .inputs = {{.shape = icl}, {.shape = icl}, {.shape = icl}},
                 .fn = [](Vars& x) { return Vars{ag::attention(x[0], x[1], x[2])}; },
                 .atol = 5e-5,
                 .rtol = 1e-4,
                 .fd = false});
    // Packed, T = 2 and 64 (the per-head path's bounds), against finite differences too.
    for (const Shape& s : {Shape{1, 2, 2, 5}, Shape{1, 1, 64, 9}})
        v.push_back({.op = "attention",
                     .label = "per-head path " + s.str(),
                     .inputs = {{.shape = s}, {.shape = s}, {.shape = s}},
                     .fn = [](Vars& x) { return Vars{ag::attention(x[0], x[1], x[2], 0.7)}; },
                     .atol = 5e-5,
                     .rtol = 1e-4});
    return v;
}

}  // namespace goose::test
