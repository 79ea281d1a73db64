// Cases of causal attention: T crossing the fast kernel's query (32) and key (64) tiles, head
// sizes that are not multiples of 8, explicit scales, and q, k, v as (B, T, H, N) views.
#include "goose/autograd/attention.h"
#include "common/op_cases.h"

namespace goose::test {

GOOSE_OP_CASES(attention) {
    std::vector<OpCase> v;
    struct Size {
        int64_t b, h, t, n;
        double scale;
    };
    const Size sizes[] = {{1, 1, 1, 8, 0},    {2, 1, 7, 13, 0},   {1, 2, 37, 8, 0},
                          {1, 1, 67, 32, 0},  {1, 1, 130, 13, 0}, {2, 2, 33, 7, 0.5},
                          {1, 1, 70, 32, 2.0}};  // large scale: sharp softmax, big max shifts
    for (const Size& s : sizes) {
        const Shape shape{s.b, s.h, s.t, s.n};
        const double scale = s.scale;
        v.push_back(
            {.op = "attention",
             .label = shape.str() + (scale ? " scale " + std::to_string(scale) : ""),
             .inputs = {{.shape = shape}, {.shape = shape}, {.shape = shape}},
             .fn = [scale](Vars& x) { return Vars{ag::attention(x[0], x[1], x[2], scale)}; },
             .atol = 5e-5,
             .rtol = 1e-4});
    }
    // q, k, v as the (B, H, T, N) view of packed (B, T, H, N) projections. Conformance only:
    // finite differences perturb storage in place and assume packed inputs.
    const auto view = [](Shape s) {
        return Input{.shape = s, .init = Init::custom, .make = [s](DType dt, Rng& r) {
                         return Tensor::randn(Shape{s[0], s[2], s[1], s[3]}, r, DType::f64)
                             .to(dt)
                             .transpose(1, 2);
                     }};
    };
    const Shape s{2, 3, 67, 13};
    v.push_back({.op = "attention",
                 .label = "(B, T, H, N) views " + s.str(),
                 .inputs = {view(s), view(s), view(s)},
                 .fn = [](Vars& x) { return Vars{ag::attention(x[0], x[1], x[2])}; },
                 .atol = 5e-5,
                 .rtol = 1e-4,
                 .fd = false});
    return v;
}

}  // namespace goose::test
