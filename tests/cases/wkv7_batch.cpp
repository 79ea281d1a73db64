// Cases of the WKV-7 recurrence with a large batch: the fast kernels then run a batch entry's
// heads together, step by step (the ICL training shape among them).
#include <cmath>

#include "common/op_cases.h"
#include "goose/autograd/wkv7.h"

namespace goose::test {

GOOSE_OP_CASES(wkv7_batch) {
    std::vector<OpCase> v;
    // k, r ~ N(0, 0.5), raw decay ~ N(0, 2), v ~ N(0, 1), a ~ N(0, 1/N), b ~ N(0, 1/(4N)).
    const auto scaled = [](Shape s, double std) {
        return Input{.shape = s, .init = Init::custom, .make = [s, std](DType dt, Rng& r) {
                         return Tensor::randn(s, r, DType::f64, 0, std).to(dt);
                     }};
    };
    // Tolerances as wkv7.cpp's cases: the fast backward rebuilds the states between saved ones
    // by inverting the update, which amplifies f32 rounding (more for N not a multiple of 8
    // and random states).
    struct Size {
        int64_t b, t, h, n;
        bool state;
        bool fd;
        double atol;
    };
    for (const Size& z : {Size{64, 5, 3, 8, true, true, 3e-4},
                          Size{64, 22, 4, 16, false, false, 3e-4},
                          Size{72, 17, 2, 13, true, false, 1e-3}}) {
        const Shape x{z.b, z.t, z.h, z.n};
        const double a_std = 1 / std::sqrt(double(z.n));
        std::vector<Input> in = {scaled(x, 0.5), scaled(x, 2.0),   scaled(x, 0.5),
                                 scaled(x, 1.0), scaled(x, a_std), scaled(x, a_std / 2)};
        if (z.state) in.push_back(scaled(Shape{z.b, z.h, z.n, z.n}, 0.5));
        const bool with_state = z.state;
        v.push_back({.op = "wkv7",
                     .label = "batch of heads " + x.str() + (with_state ? " state" : ""),
                     .inputs = std::move(in),
                     .fn =
                         [with_state](Vars& x) {
                             auto res = ag::wkv7(x[0], x[1], x[2], x[3], x[4], x[5],
                                                 with_state ? x[6] : Var());
                             return Vars{res.y, res.state};
                         },
                     .atol = z.atol,
                     .rtol = 3e-4,
                     .fd = z.fd,
                     .fd_max_elems = 8});
    }
    return v;
}

}  // namespace goose::test
