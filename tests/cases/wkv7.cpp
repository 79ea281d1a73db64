// Cases of the WKV-7 recurrence: head sizes, lengths, carried state, realistic input ranges.
#include "common/op_cases.h"
#include "goose/autograd/wkv7.h"

namespace goose::test {

namespace {
// Inputs scaled like the model's: k, r ~ N(0, 0.5); a = -kk and b = kk * a with |kk| = 1 per
// head are emulated by small values; w raw in N(0, 2) (decay in (0.545, 1)).
Input scaled(Shape s, double std) {
    return {.shape = s, .init = Init::custom, .make = [s, std](DType dt, Rng& r) {
                return Tensor::randn(s, r, DType::f64, 0, std).to(dt);
            }};
}
}  // namespace

GOOSE_OP_CASES(wkv7) {
    std::vector<OpCase> v;
    struct Size {
        int64_t b, t, h, n;
        bool state;
    };
    const Size sizes[] = {{1, 1, 1, 4, false}, {1, 7, 2, 8, true},  {2, 5, 1, 16, true},
                          {1, 19, 1, 16, false}, {2, 3, 2, 32, true}, {1, 33, 1, 8, true}};
    for (const Size& s : sizes) {
        const Shape x{s.b, s.t, s.h, s.n};
        std::vector<Input> in = {scaled(x, 0.5), scaled(x, 2.0), scaled(x, 0.5),
                                 scaled(x, 1.0), scaled(x, 0.3), scaled(x, 0.3)};
        if (s.state) in.push_back(scaled(Shape{s.b, s.h, s.n, s.n}, 0.5));
        const bool with_state = s.state;
        v.push_back({.op = "wkv7",
                     .label = x.str() + (with_state ? " state" : ""),
                     .inputs = std::move(in),
                     .fn =
                         [with_state](Vars& x) {
                             auto res = ag::wkv7(x[0], x[1], x[2], x[3], x[4], x[5],
                                                 with_state ? x[6] : Var());
                             return Vars{res.y, res.state};
                         },
                     .atol = 1e-4,
                     .rtol = 1e-4,
                     .fd_max_elems = 24});
    }
    return v;
}

}  // namespace goose::test
