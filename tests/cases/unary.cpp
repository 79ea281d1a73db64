// Cases of the elementwise unary ops: every op over a shape grid, plus a strided input.
#include <limits>

#include "common/op_cases.h"
#include "goose/autograd/shape.h"
#include "goose/autograd/unary.h"

namespace goose::test {

GOOSE_OP_CASES(unary) {
    const UnaryOp all[] = {UnaryOp::exp,  UnaryOp::log,      UnaryOp::tanh,      UnaryOp::sigmoid,
                           UnaryOp::softplus, UnaryOp::relu, UnaryOp::relu2,     UnaryOp::gelu_tanh,
                           UnaryOp::silu, UnaryOp::neg,      UnaryOp::sqrt,      UnaryOp::square};
    const Shape grid[] = {Shape{1}, Shape{7}, Shape{3, 37}, Shape{2, 5, 67}};
    std::vector<OpCase> v;
    for (UnaryOp op : all) {
        const bool needs_positive = op == UnaryOp::log || op == UnaryOp::sqrt;
        const Init init = needs_positive ? Init::positive : Init::normal;
        for (const Shape& s : grid) {
            v.push_back({.op = unary_name(op),
                         .label = s.str(),
                         .inputs = {{.shape = s, .init = init}},
                         .fn = [op](Vars& x) { return Vars{ag::unary(op, x[0])}; }});
        }
        // A transposed (non-contiguous) input.
        v.push_back({.op = unary_name(op),
                     .label = "transposed [19, 3]",
                     .inputs = {{.shape = Shape{3, 19}, .init = init}},
                     .fn = [op](Vars& x) { return Vars{ag::unary(op, ag::transpose(x[0], 0, 1))}; }});
        // Large inputs (softplus threshold, sigmoid tails) with wide values.
        v.push_back({.op = unary_name(op),
                     .label = "wide values [41]",
                     .inputs = {{.shape = Shape{41},
                                 .init = Init::custom,
                                 .make = [needs_positive](DType dt, Rng& r) {
                                     Tensor t = Tensor::randn(Shape{41}, r, DType::f64, 0, 12);
                                     if (needs_positive)
                                         for (int64_t i = 0; i < 41; ++i)
                                             t.data<double>()[i] = std::abs(t.data<double>()[i]) + 0.5;
                                     return t.to(dt);
                                 }}},
                     .fn = [op](Vars& x) { return Vars{ag::unary(op, x[0])}; },
                     .fd = op != UnaryOp::exp && op != UnaryOp::square && op != UnaryOp::relu2});
        // Special values: NaN, ±inf, ±0 and huge/tiny magnitudes. Outputs may be non-finite;
        // both backends must agree element by element (same NaN positions, same infinities).
        v.push_back({.op = unary_name(op),
                     .label = "special values [12]",
                     .inputs = {{.shape = Shape{12},
                                 .init = Init::custom,
                                 .make = [needs_positive](DType dt, Rng&) {
                                     const double inf = std::numeric_limits<double>::infinity();
                                     const double nan = std::numeric_limits<double>::quiet_NaN();
                                     std::vector<double> vals =
                                         needs_positive
                                             ? std::vector<double>{0, inf, nan, 1e-30, 1e30, 1, 4, 0.25, 2, 9, 16, 1e-3}
                                             : std::vector<double>{0, -0.0, inf, -inf, nan, 1e30, -1e30, 1e-30, 30, -30, 88, -88};
                                     return Tensor::from(Shape{12}, vals, dt);
                                 }}},
                     .fn = [op](Vars& x) { return Vars{ag::unary(op, x[0])}; },
                     .allow_nonfinite = true,
                     .fd = false});
    }
    return v;
}

}  // namespace goose::test
