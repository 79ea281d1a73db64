// Cases of the WKV-7 recurrence: head sizes, lengths, carried state, realistic input ranges.
#include <cmath>
#include <string>

#include "common/op_cases.h"
#include "goose/autograd/binary.h"
#include "goose/autograd/shape.h"
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
        double w_std = 2.0;     // spread of the raw decay
        double ab_std = 0.3;    // spread of a (b gets half of it in the model-like cases)
        bool model_ab = false;  // a ~ N(0, 1/N), b ~ N(0, 1/(4N)): |a| ~ 1 like a = -kk
        int fd_elems = 24;      // finite-difference elements per input
        bool strided = false;   // r given as (B, H, T, N) and transposed to a strided view
        double atol = 3e-4, rtol = 3e-4;  // fast (f32) against the reference
    };
    // Tolerances: the fast backward keeps the state of every 16th step and rebuilds the steps
    // in between by inverting the update (division by decay >= 0.545), which amplifies the f32
    // rounding of the saved state by up to 1/decay per step rebuilt. dr, dw and da, which read
    // the rebuilt states, are about 4e-6 off in norm (30 times the forward's error); single
    // elements that are sums of N large terms with cancellation are off by up to ~7e-4
    // absolute at N = 64 (the other outputs stay near 1e-6 relative). The large-|w| case
    // rebuilds through decays near 0.545 and loses about 4 times more. The finite differences
    // check the reference backward in f64: few elements and a larger step for the big cases
    // (their loss sums ~10^4 terms, so a 1e-6 step leaves ~1e-6 of rounding noise).
    // clang-format off
    const Size sizes[] = {
        {1, 1, 1, 4, false}, {1, 7, 2, 8, true}, {2, 5, 1, 16, true}, {1, 19, 1, 16, false},
        {2, 3, 2, 32, true}, {1, 33, 1, 8, true},
        // N not a multiple of the SIMD width, two chunk ends crossed, r strided.
        {.b = 1, .t = 35, .h = 3, .n = 37, .state = true, .model_ab = true, .fd_elems = 8,
         .strided = true, .atol = 1e-3},
        // The language-model head size: chunk ends at exactly 16 and 17 steps and at 16 and 32
        // of 40; B * H > 2 so that the heads run in parallel.
        {.b = 2, .t = 40, .h = 2, .n = 64, .state = true, .model_ab = true, .fd_elems = 8,
         .atol = 2e-3},
        {.b = 1, .t = 16, .h = 3, .n = 64, .state = false, .model_ab = true, .fd_elems = 8,
         .atol = 2e-3},
        {.b = 3, .t = 17, .h = 1, .n = 64, .state = true, .model_ab = true, .fd_elems = 8,
         .atol = 2e-3},
        // Large |w|: decays near 0.545 (the most the backward's inversion amplifies) and near 1.
        {.b = 2, .t = 37, .h = 2, .n = 32, .state = true, .w_std = 8.0, .model_ab = true,
         .fd_elems = 8, .atol = 4e-3, .rtol = 1e-3},
    };
    // clang-format on
    for (const Size& s : sizes) {
        const Shape x{s.b, s.t, s.h, s.n};
        const Shape xr = s.strided ? Shape{s.b, s.h, s.t, s.n} : x;
        const double a_std = s.model_ab ? 1 / std::sqrt(double(s.n)) : s.ab_std;
        const double b_std = s.model_ab ? a_std / 2 : s.ab_std;
        std::vector<Input> in = {scaled(xr, 0.5), scaled(x, s.w_std), scaled(x, 0.5),
                                 scaled(x, 1.0),  scaled(x, a_std),   scaled(x, b_std)};
        if (s.state) in.push_back(scaled(Shape{s.b, s.h, s.n, s.n}, 0.5));
        const bool with_state = s.state, strided = s.strided;
        std::string label = x.str() + (with_state ? " state" : "");
        if (s.w_std != 2.0) label += " w_std=" + std::to_string(static_cast<int>(s.w_std));
        if (strided) label += " strided r";
        v.push_back({.op = "wkv7",
                     .label = label,
                     .inputs = std::move(in),
                     .fn =
                         [with_state, strided](Vars& x) {
                             const Var r = strided ? ag::transpose(x[0], 1, 2) : x[0];
                             auto res = ag::wkv7(r, x[1], x[2], x[3], x[4], x[5],
                                                 with_state ? x[6] : Var());
                             return Vars{res.y, res.state};
                         },
                     .atol = s.atol,
                     .rtol = s.rtol,
                     .fd_eps = s.n >= 32 ? 1e-5 : 1e-6,
                     .fd_max_elems = s.fd_elems});
    }
    // wkv7_heads on (B, T, C) inputs whose r, k and v also feed a later product: the backward
    // receives their gradients gathered so far (GradIO::prior) and adds them in itself.
    for (const Size& s : {Size{.b = 2, .t = 21, .h = 2, .n = 16, .state = true, .atol = 1e-3},
                          Size{.b = 1, .t = 40, .h = 2, .n = 64,
                                                        .state = false, .model_ab = true,
                                                        .fd_elems = 8, .atol = 2e-3}}) {
        const Shape x{s.b, s.t, s.h * s.n};
        const double a_std = s.model_ab ? 1 / std::sqrt(double(s.n)) : s.ab_std;
        const double b_std = s.model_ab ? a_std / 2 : s.ab_std;
        std::vector<Input> in = {scaled(x, 0.5), scaled(x, s.w_std), scaled(x, 0.5),
                                 scaled(x, 1.0), scaled(x, a_std),   scaled(x, b_std)};
        if (s.state) in.push_back(scaled(Shape{s.b, s.h, s.n, s.n}, 0.5));
        const bool with_state = s.state;
        const int64_t n = s.n;
        v.push_back({.op = "wkv7",
                     .label = "heads " + x.str() + " r, k, v fanned out",
                     .inputs = std::move(in),
                     .fn =
                         [with_state, n](Vars& x) {
                             auto res = ag::wkv7_heads(x[0], x[1], x[2], x[3], x[4], x[5], n,
                                                       with_state ? x[6] : Var());
                             const Var rkv = ag::mul(ag::mul(x[0], x[2]), x[3]);
                             return Vars{res.y, res.state, rkv};
                         },
                     .atol = s.atol,
                     .rtol = s.rtol,
                     .fd_eps = s.n >= 32 ? 1e-5 : 1e-6,
                     .fd_max_elems = s.fd_elems});
    }
    return v;
}

}  // namespace goose::test
