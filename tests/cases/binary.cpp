// Cases of the binary family: add, sub, mul, div over a grid of broadcast patterns (same shape,
// row vector, column, both sides, 0-d), a transposed operand, scale, and lerp (RWKV's token
// mix: mu (C) against (B, T, C)).
#include "cases/binary_inputs.h"
#include "common/op_cases.h"
#include "goose/autograd/binary.h"

namespace goose::test {

namespace {
struct Pair {
    Shape a, b;
};
}  // namespace

GOOSE_OP_CASES(binary) {
    const BinaryOp all[] = {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div};
    const Pair grid[] = {
        {Shape{1}, Shape{1}},            {Shape{7}, Shape{7}},
        {Shape{3, 37}, Shape{3, 37}},    {Shape{2, 5, 67}, Shape{2, 5, 67}},
        {Shape{2, 5, 67}, Shape{67}},    // row broadcast: bias (C) against (B, T, C)
        {Shape{4, 37}, Shape{1, 37}},    // row broadcast with a leading 1
        {Shape{37}, Shape{3, 37}},       // the left operand broadcast
        {Shape{3, 37}, Shape{3, 1}},     // column broadcast
        {Shape{3, 1, 7}, Shape{4, 7}},   // both sides broadcast
        {Shape{5, 1}, Shape{1, 6}},      // outer product
        {Shape{1, 5, 1}, Shape{2, 1, 19}},
        {Shape{3, 7}, Shape{}},          // 0-d right operand
        {Shape{}, Shape{2, 3}},          // 0-d left operand
        {Shape{70, 300}, Shape{300}},    // parallel loops (21000 elements)
        {Shape{130, 130}, Shape{130, 1}},
    };
    std::vector<OpCase> v;
    for (BinaryOp op : all) {
        const char* name = binary_name(op);
        const Init b_init = op == BinaryOp::div ? Init::positive : Init::normal;
        for (const Pair& p : grid) {
            const bool big = p.a.numel() > 10000 || p.b.numel() > 10000;
            v.push_back({.op = name,
                         .label = p.a.str() + " " + p.b.str(),
                         .inputs = {{.shape = p.a}, {.shape = p.b, .init = b_init}},
                         .fn = [op](Vars& x) { return Vars{ag::binary(op, x[0], x[1])}; },
                         .atol = big ? 1e-4 : 1e-5,
                         .fd_max_elems = big ? 12 : 48});
        }
        // Transposed (non-contiguous) operands: together, against a row vector, against a column.
        v.push_back({.op = name,
                     .label = "transposed [19, 3] [19, 3]",
                     .inputs = {transposed(3, 19), transposed(3, 19, b_init)},
                     .fn = [op](Vars& x) { return Vars{ag::binary(op, x[0], x[1])}; },
                     .fd = false});
        v.push_back({.op = name,
                     .label = "transposed [19, 3] [3]",
                     .inputs = {transposed(3, 19), {.shape = Shape{3}, .init = b_init}},
                     .fn = [op](Vars& x) { return Vars{ag::binary(op, x[0], x[1])}; },
                     .fd = false});
        v.push_back({.op = name,
                     .label = "[19, 1] transposed [19, 3]",
                     .inputs = {{.shape = Shape{19, 1}}, transposed(3, 19, b_init)},
                     .fn = [op](Vars& x) { return Vars{ag::binary(op, x[0], x[1])}; },
                     .fd = false});
    }
    // The same Var on both sides: its two gradients accumulate.
    v.push_back({.op = "mul",
                 .label = "x * x [3, 37]",
                 .inputs = {{.shape = Shape{3, 37}}},
                 .fn = [](Vars& x) { return Vars{ag::mul(x[0], x[0])}; }});

    for (const Shape& s : {Shape{1}, Shape{7}, Shape{3, 37}, Shape{2, 5, 67}, Shape{}})
        for (double k : {0.37, -2.0})
            v.push_back({.op = "scale",
                         .label = s.str() + " s=" + std::to_string(k),
                         .inputs = {{.shape = s}},
                         .fn = [k](Vars& x) { return Vars{ag::scale(x[0], k)}; }});
    v.push_back({.op = "scale",
                 .label = "transposed [19, 3]",
                 .inputs = {transposed(3, 19)},
                 .fn = [](Vars& x) { return Vars{ag::scale(x[0], 1.5)}; },
                 .fd = false});

    struct Triple {
        Shape a, b, w;
    };
    const Triple lerps[] = {
        {Shape{2, 5, 67}, Shape{2, 5, 67}, Shape{67}},  // RWKV token mix: x, x_prev, mu
        {Shape{1, 1, 37}, Shape{1, 1, 37}, Shape{37}},  // B = T = 1
        {Shape{7}, Shape{7}, Shape{7}},
        {Shape{3, 37}, Shape{3, 37}, Shape{3, 37}},
        {Shape{3, 1, 7}, Shape{4, 7}, Shape{3, 4, 1}},  // all three broadcast
        {Shape{2, 5, 67}, Shape{67}, Shape{}},
        {Shape{4, 40, 67}, Shape{4, 40, 67}, Shape{67}},  // parallel loops (10720 elements)
    };
    for (const Triple& t : lerps) {
        v.push_back({.op = "lerp",
                     .label = t.a.str() + " " + t.b.str() + " " + t.w.str(),
                     .inputs = {{.shape = t.a},
                                {.shape = t.b},
                                {.shape = t.w, .init = Init::unit_interval}},
                     .fn = [](Vars& x) { return Vars{ag::lerp(x[0], x[1], x[2])}; },
                     .atol = t.a.numel() > 10000 ? 1e-4 : 1e-5,
                     .fd_max_elems = t.a.numel() > 10000 ? 12 : 48});
    }
    v.push_back({.op = "lerp",
                 .label = "transposed [19, 3] [3] [19, 1]",
                 .inputs = {transposed(3, 19), {.shape = Shape{3}},
                            {.shape = Shape{19, 1}, .init = Init::unit_interval}},
                 .fn = [](Vars& x) { return Vars{ag::lerp(x[0], x[1], x[2])}; },
                 .fd = false});
    v.push_back({.op = "lerp",
                 .label = "[19, 3] transposed [19, 3] transposed [19, 3]",
                 .inputs = {{.shape = Shape{19, 3}}, transposed(3, 19),
                            transposed(3, 19, Init::unit_interval)},
                 .fn = [](Vars& x) { return Vars{ag::lerp(x[0], x[1], x[2])}; },
                 .fd = false});
    return v;
}

}  // namespace goose::test
