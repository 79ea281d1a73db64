// Cases of the select family: where and masked_fill over broadcast patterns of the mask and
// the operands, a transposed operand, and a large mask value (attention's -1e9 style fill).
#include <cmath>

#include "cases/binary_inputs.h"
#include "common/op_cases.h"
#include "goose/autograd/select.h"

namespace goose::test {

GOOSE_OP_CASES(select) {
    std::vector<OpCase> v;
    struct Where {
        Shape cond, a, b;
    };
    const Where wheres[] = {
        {Shape{1}, Shape{1}, Shape{1}},
        {Shape{7}, Shape{7}, Shape{7}},
        {Shape{3, 37}, Shape{3, 37}, Shape{3, 37}},
        {Shape{5, 67}, Shape{2, 5, 67}, Shape{67}},     // cond and b broadcast
        {Shape{2, 5, 67}, Shape{2, 5, 1}, Shape{1, 67}},  // a and b broadcast
        {Shape{3, 1}, Shape{3, 37}, Shape{}},             // column cond, 0-d b
        {Shape{1, 1, 19}, Shape{2, 3, 1}, Shape{2, 1, 19}},
        {Shape{70, 300}, Shape{70, 300}, Shape{300}},     // parallel loops
    };
    for (const Where& w : wheres)
        v.push_back({.op = "where",
                     .label = w.cond.str() + " " + w.a.str() + " " + w.b.str(),
                     .inputs = {{.shape = w.cond, .init = Init::mask}, {.shape = w.a},
                                {.shape = w.b}},
                     .fn = [](Vars& x) { return Vars{ag::where(x[0].value(), x[1], x[2])}; },
                     .fd_max_elems = w.a.numel() > 10000 ? 12 : 48});
    v.push_back({.op = "where",
                 .label = "transposed [19, 3] [19, 3] [3]",
                 .inputs = {transposed(3, 19, Init::mask), transposed(3, 19), {.shape = Shape{3}}},
                 .fn = [](Vars& x) { return Vars{ag::where(x[0].value(), x[1], x[2])}; },
                 .fd = false});

    struct Fill {
        Shape x, mask;
        double value;
    };
    const Fill fills[] = {
        {Shape{1}, Shape{1}, 0.5},
        {Shape{7}, Shape{7}, -3.0},
        {Shape{3, 37}, Shape{3, 37}, 0.0},
        {Shape{2, 5, 67}, Shape{5, 67}, -1e9},  // a causal-style mask shared over the batch
        {Shape{2, 5, 67}, Shape{2, 1, 67}, 2.0},
        {Shape{3, 37}, Shape{}, 1.0},
        {Shape{2, 3, 7, 7}, Shape{1, 1, 7, 7}, -1e4},
        {Shape{70, 300}, Shape{70, 1}, -1.0},  // parallel loops
    };
    for (const Fill& f : fills)
        v.push_back({.op = "masked_fill",
                     .label = f.x.str() + " " + f.mask.str() + " " + std::to_string(f.value),
                     .inputs = {{.shape = f.x}, {.shape = f.mask, .init = Init::mask}},
                     .fn = [val = f.value](Vars& x) {
                         return Vars{ag::masked_fill(x[0], x[1].value(), val)};
                     },
                     // A huge fill value swamps the finite differences of the objective.
                     .fd = std::abs(f.value) < 1e6,
                     .fd_max_elems = f.x.numel() > 10000 ? 12 : 48});
    v.push_back({.op = "masked_fill",
                 .label = "transposed [19, 3] [19, 3]",
                 .inputs = {transposed(3, 19), transposed(3, 19, Init::mask)},
                 .fn = [](Vars& x) { return Vars{ag::masked_fill(x[0], x[1].value(), 4.0)}; },
                 .fd = false});
    return v;
}

}  // namespace goose::test
