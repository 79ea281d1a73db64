// Cases of the shape and copy ops: size-1 dims, odd widths, negative axes, step-2 slices,
// strided inputs (made inside the case with ag::transpose / ag::permute) and one input large
// enough for the threaded copy path. Copies are exact, so fast and reference must agree bit
// for bit (atol = rtol = 0).
#include "goose/autograd/shape.h"
#include "common/op_cases.h"

namespace goose::test {

namespace {

OpCase exact(OpCase c) {
    c.atol = 0;
    c.rtol = 0;
    return c;
}

Input in(Shape s, bool grad = true) {
    return {.shape = s, .grad = grad};
}

}  // namespace

GOOSE_OP_CASES(shape) {
    std::vector<OpCase> v;
    auto add = [&](const char* op, std::string label, std::vector<Input> inputs,
                   std::function<Vars(Vars&)> fn) {
        v.push_back(exact({.op = op,
                           .label = std::move(label),
                           .inputs = std::move(inputs),
                           .fn = std::move(fn)}));
    };

    // ---- concat ----
    add("concat", "axis 1 [2,7,37]+[2,3,37]+[2,1,37]",
        {in(Shape{2, 7, 37}), in(Shape{2, 3, 37}), in(Shape{2, 1, 37})}, [](Vars& x) {
            return Vars{ag::concat({x[0], x[1], x[2]}, 1)};
        });
    add("concat", "axis -1 [1,5,67]+[1,5,7]", {in(Shape{1, 5, 67}), in(Shape{1, 5, 7})},
        [](Vars& x) {
            return Vars{ag::concat({x[0], x[1]}, -1)};
        });
    add("concat", "axis 0 [1,5,7]+[3,5,7], second without grad",
        {in(Shape{1, 5, 7}), in(Shape{3, 5, 7}, false)}, [](Vars& x) {
            return Vars{ag::concat({x[0], x[1]}, 0)};
        });
    add("concat", "single input [7]", {in(Shape{7})},
        [](Vars& x) { return Vars{ag::concat({x[0]}, 0)}; });
    add("concat", "empty piece [2,0,5]+[2,3,5]", {in(Shape{2, 0, 5}), in(Shape{2, 3, 5})},
        [](Vars& x) {
            return Vars{ag::concat({x[0], x[1]}, -2)};
        });
    add("concat", "strided (37,7)^T + [7,5] axis -1", {in(Shape{37, 7}), in(Shape{7, 5})},
        [](Vars& x) {
            return Vars{ag::concat({ag::transpose(x[0], 0, 1), x[1]}, -1)};
        });
    add("concat", "strided both, axis 0", {in(Shape{37, 3}), in(Shape{37, 5})}, [](Vars& x) {
        return Vars{ag::concat({ag::transpose(x[0], 0, 1), ag::transpose(x[1], 1, 0)}, 0)};
    });
    add("concat", "large [4,67,67]+[4,67,61] axis 2 (threaded)",
        {in(Shape{4, 67, 67}), in(Shape{4, 67, 61})}, [](Vars& x) {
            return Vars{ag::concat({x[0], x[1]}, 2)};
        });

    // ---- split ----
    add("split", "[2,7,37] {3,4} axis 1", {in(Shape{2, 7, 37})}, [](Vars& x) {
        return ag::split(x[0], {3, 4}, 1);
    });
    add("split", "[2,7,37] {1,36} axis -1", {in(Shape{2, 7, 37})}, [](Vars& x) {
        return ag::split(x[0], {1, 36}, -1);
    });
    add("split", "[1,5,67] {67} axis 2", {in(Shape{1, 5, 67})},
        [](Vars& x) { return ag::split(x[0], {67}, 2); });
    add("split", "[1,5,67] {2,0,3} axis -2", {in(Shape{1, 5, 67})}, [](Vars& x) {
        return ag::split(x[0], {2, 0, 3}, -2);
    });
    add("split", "[3,37] {1,1,1} axis 0, middle piece unused", {in(Shape{3, 37})}, [](Vars& x) {
        Vars p = ag::split(x[0], {1, 1, 1}, 0);
        return Vars{p[0], p[2]};
    });
    add("split", "strided (37,7)^T {2,5} axis 0", {in(Shape{37, 7})}, [](Vars& x) {
        return ag::split(ag::transpose(x[0], 0, 1), {2, 5}, 0);
    });
    add("split", "strided (37,7)^T {20,17} axis 1", {in(Shape{37, 7})}, [](Vars& x) {
        return ag::split(ag::transpose(x[0], 0, 1), {20, 17}, 1);
    });

    // ---- slice ----
    add("slice", "[2,7,37] axis 2 [3:30:2]", {in(Shape{2, 7, 37})},
        [](Vars& x) { return Vars{ag::slice(x[0], 2, 3, 30, 2)}; });
    add("slice", "[2,7,37] axis -1 [-10:-1]", {in(Shape{2, 7, 37})},
        [](Vars& x) { return Vars{ag::slice(x[0], -1, -10, -1)}; });
    add("slice", "[2,7,37] axis 1 [1:7:3]", {in(Shape{2, 7, 37})},
        [](Vars& x) { return Vars{ag::slice(x[0], 1, 1, 7, 3)}; });
    add("slice", "[1,5,67] axis -3 [0:1]", {in(Shape{1, 5, 67})},
        [](Vars& x) { return Vars{ag::slice(x[0], -3, 0, 1)}; });
    add("slice", "[1,5,67] axis 1 [2:100] (clamped)", {in(Shape{1, 5, 67})},
        [](Vars& x) { return Vars{ag::slice(x[0], 1, 2, 100)}; });
    add("slice", "[67] [::2]", {in(Shape{67})},
        [](Vars& x) { return Vars{ag::slice(x[0], 0, 0, 67, 2)}; });
    add("slice", "[7,37] empty [5:2]", {in(Shape{7, 37})}, [](Vars& x) {
        return Vars{ag::slice(x[0], 0, 5, 2), ag::slice(x[0], 0, 5, 7)};
    });
    add("slice", "strided (37,7)^T axis 1 [1:36:2]", {in(Shape{37, 7})},
        [](Vars& x) { return Vars{ag::slice(ag::transpose(x[0], 0, 1), 1, 1, 36, 2)}; });
    add("slice", "large [4,67,131] axis 2 [1::2] (threaded)", {in(Shape{4, 67, 131})},
        [](Vars& x) { return Vars{ag::slice(x[0], 2, 1, 131, 2)}; });

    // ---- reshape ----
    add("reshape", "[2,7,37] -> [14,37]", {in(Shape{2, 7, 37})}, [](Vars& x) {
        return Vars{ag::reshape(x[0], Shape{14, 37})};
    });
    add("reshape", "[1,5,67] -> [-1]", {in(Shape{1, 5, 67})},
        [](Vars& x) { return Vars{ag::reshape(x[0], Shape{-1})}; });
    add("reshape", "[2,7,37] -> [7,-1,1]", {in(Shape{2, 7, 37})}, [](Vars& x) {
        return Vars{ag::reshape(x[0], Shape{7, -1, 1})};
    });
    add("reshape", "[1,1,1] -> []", {in(Shape{1, 1, 1})},
        [](Vars& x) { return Vars{ag::reshape(x[0], Shape{})}; });
    add("reshape", "strided (37,7)^T -> [7,37,1] then [259]", {in(Shape{37, 7})}, [](Vars& x) {
        Var t = ag::transpose(x[0], 0, 1);
        return Vars{ag::reshape(t, Shape{7, 37, 1}), ag::reshape(t, Shape{259})};
    });
    add("reshape", "strided permuted [2,7,37] -> [37,-1]", {in(Shape{2, 7, 37})}, [](Vars& x) {
        return Vars{ag::reshape(ag::permute(x[0], {2, 0, 1}), Shape{37, -1})};
    });

    // ---- transpose ----
    add("transpose", "[2,7,37] (0,2)", {in(Shape{2, 7, 37})},
        [](Vars& x) { return Vars{ag::transpose(x[0], 0, 2)}; });
    add("transpose", "[1,5,67] (-1,-2)", {in(Shape{1, 5, 67})},
        [](Vars& x) { return Vars{ag::transpose(x[0], -1, -2)}; });
    add("transpose", "[3,37] (1,1)", {in(Shape{3, 37})},
        [](Vars& x) { return Vars{ag::transpose(x[0], 1, 1)}; });
    add("transpose", "twice [7,37,3] (0,1) then (1,2)", {in(Shape{7, 37, 3})},
        [](Vars& x) { return Vars{ag::transpose(ag::transpose(x[0], 0, 1), 1, 2)}; });

    // ---- permute ----
    add("permute", "[2,7,37] {2,0,1}", {in(Shape{2, 7, 37})}, [](Vars& x) {
        return Vars{ag::permute(x[0], {2, 0, 1})};
    });
    add("permute", "[1,5,67] {-1,0,1}", {in(Shape{1, 5, 67})}, [](Vars& x) {
        return Vars{ag::permute(x[0], {-1, 0, 1})};
    });
    add("permute", "[2,3,5,7] {3,1,0,2}", {in(Shape{2, 3, 5, 7})}, [](Vars& x) {
        return Vars{ag::permute(x[0], {3, 1, 0, 2})};
    });
    add("permute", "[2,1,3,5,7] {4,2,0,3,1}", {in(Shape{2, 1, 3, 5, 7})}, [](Vars& x) {
        return Vars{ag::permute(x[0], {4, 2, 0, 3, 1})};
    });
    add("permute", "strided (37,7)^T {1,0}", {in(Shape{37, 7})}, [](Vars& x) {
        return Vars{ag::permute(ag::transpose(x[0], 0, 1), {1, 0})};
    });
    add("permute", "large [4,67,131] {2,0,1} (threaded)", {in(Shape{4, 67, 131})}, [](Vars& x) {
        return Vars{ag::permute(x[0], {2, 0, 1})};
    });

    // ---- contiguous ----
    add("contiguous", "packed [2,7,37]", {in(Shape{2, 7, 37})},
        [](Vars& x) { return Vars{ag::contiguous(x[0])}; });
    add("contiguous", "strided (37,7)^T", {in(Shape{37, 7})},
        [](Vars& x) { return Vars{ag::contiguous(ag::transpose(x[0], 0, 1))}; });
    add("contiguous", "strided [1,5,67] {2,0,1}", {in(Shape{1, 5, 67})}, [](Vars& x) {
        return Vars{ag::contiguous(ag::permute(x[0], {2, 0, 1}))};
    });
    add("contiguous", "strided [2,3,5,7] {0,3,1,2}", {in(Shape{2, 3, 5, 7})}, [](Vars& x) {
        return Vars{ag::contiguous(ag::permute(x[0], {0, 3, 1, 2}))};
    });
    add("contiguous", "strided [2,7,37] (0,1): rows stay contiguous", {in(Shape{2, 7, 37})},
        [](Vars& x) { return Vars{ag::contiguous(ag::transpose(x[0], 0, 1))}; });
    add("contiguous", "large [4,67,131] (1,2) (threaded, tiled)", {in(Shape{4, 67, 131})},
        [](Vars& x) { return Vars{ag::contiguous(ag::transpose(x[0], 1, 2))}; });
    return v;
}

}  // namespace goose::test
