// Cases of matmul and linear: 2-D to 4-D, every transpose flag, a shared 2-D b, strided views
// (transposed storage, padded rows, non-unit inner stride), bias or none.
#include <string>
#include <utility>

#include "common/op_cases.h"
#include "goose/autograd/matmul.h"

namespace goose::test {

namespace {
std::string flags(bool ta, bool tb) {
    return std::string(ta ? " trans_a" : "") + (tb ? " trans_b" : "");
}

// Stored shape of an operand whose op() is (rows, cols): swapped when transposed.
Shape stored(Shape batch, int64_t rows, int64_t cols, bool trans) {
    batch.push_back(trans ? cols : rows);
    batch.push_back(trans ? rows : cols);
    return batch;
}

// An input of logical shape s held as the transpose of packed storage (last two dims swapped).
Input transposed_view(Shape s) {
    return {.shape = s, .init = Init::custom, .make = [s](DType dt, Rng& r) {
                const int nd = s.ndim();
                Shape p = s;
                std::swap(p[nd - 1], p[nd - 2]);
                return Tensor::randn(p, r, DType::f64).to(dt).transpose(nd - 2, nd - 1);
            }};
}

// An input of logical shape s whose rows are padded (leading dim > width), or whose inner
// stride is 2 (then no BLAS layout fits and the fast path packs it).
Input padded_view(Shape s, int64_t step) {
    return {
        .shape = s, .init = Init::custom, .make = [s, step](DType dt, Rng& r) {
            const int nd = s.ndim();
            Shape p = s;
            p[nd - 1] = s[nd - 1] * step + 3;
            return Tensor::randn(p, r, DType::f64).to(dt).slice(nd - 1, 0, s[nd - 1] * step, step);
        }};
}

Vars mm(Vars& x, bool ta, bool tb) {
    return Vars{ag::matmul(x[0], x[1], ta, tb)};
}
}  // namespace

GOOSE_OP_CASES(matmul) {
    std::vector<OpCase> v;
    const auto add = [&](std::string label, Input a, Input b, bool ta, bool tb, bool fd = true) {
        v.push_back({.op = "matmul",
                     .label = label + flags(ta, tb),
                     .inputs = {std::move(a), std::move(b)},
                     .fn = [ta, tb](Vars& x) { return mm(x, ta, tb); },
                     .atol = 1e-4,
                     .rtol = 1e-4,
                     .fd = fd});
    };
    // (M, K, N) and batch dims; every flag combination.
    struct Size {
        Shape batch;
        int64_t m, k, n;
        bool shared;  // b is 2-D
    };
    const Size sizes[] = {{Shape{}, 1, 1, 1, false},     {Shape{}, 3, 7, 5, false},
                          {Shape{}, 37, 67, 19, false},  {Shape{}, 1, 37, 1, false},
                          {Shape{2}, 7, 13, 5, false},   {Shape{1}, 5, 9, 1, false},
                          {Shape{2, 3}, 5, 9, 4, false}, {Shape{3}, 7, 13, 5, true},
                          {Shape{2, 3}, 4, 17, 6, true}, {Shape{1}, 1, 7, 3, true}};
    for (const Size& s : sizes)
        for (int f = 0; f < 4; ++f) {
            const bool ta = f & 1, tb = f & 2;
            const Shape sa = stored(s.batch, s.m, s.k, ta);
            const Shape sb = stored(s.shared ? Shape{} : s.batch, s.k, s.n, tb);
            add(sa.str() + " x " + sb.str(), {.shape = sa}, {.shape = sb}, ta, tb);
        }
    // Strided views. Finite differences perturb storage in place and assume packed inputs, so
    // these run in the conformance suite only (the packed cases above cover the gradients).
    for (int f = 0; f < 4; ++f) {
        const bool ta = f & 1, tb = f & 2;
        add("transposed a, b", transposed_view(stored({}, 6, 11, ta)),
            transposed_view(stored({}, 11, 9, tb)), ta, tb, false);
        add("batched transposed a, b", transposed_view(stored({2}, 6, 11, ta)),
            transposed_view(stored({2}, 11, 9, tb)), ta, tb, false);
        add("shared transposed b", transposed_view(stored({2, 2}, 5, 7, ta)),
            transposed_view(stored({}, 7, 3, tb)), ta, tb, false);
        add("padded rows", padded_view(stored({2}, 6, 11, ta), 1),
            padded_view(stored({}, 11, 9, tb), 1), ta, tb, false);
        add("inner stride 2", padded_view(stored({2}, 6, 11, ta), 2),
            padded_view(stored({2}, 11, 9, tb), 2), ta, tb, false);
        // One row (the GEMV path) from padded and transposed storage.
        add("M=1 padded rows", padded_view(stored({}, 1, 37, ta), 1),
            padded_view(stored({}, 37, 19, tb), 1), ta, tb, false);
        add("M=1 transposed", transposed_view(stored({}, 1, 37, ta)),
            transposed_view(stored({}, 37, 19, tb)), ta, tb, false);
    }
    // Each GEMM past the size where OpenBLAS threads: a plain loop over the batch. Too slow for
    // finite differences on the reference; the gradient formulas are the ones checked above.
    add("large [2, 67, 67] x [2, 67, 67]", {.shape = Shape{2, 67, 67}}, {.shape = Shape{2, 67, 67}},
        false, false, false);
    add("large shared [2, 67, 67] x [67, 67]", {.shape = Shape{2, 67, 67}},
        {.shape = Shape{67, 67}}, true, false, false);
    return v;
}

GOOSE_OP_CASES(linear) {
    std::vector<OpCase> v;
    const auto add = [&](std::string label, std::vector<Input> in, bool fd = true) {
        const bool bias = in.size() == 3;
        v.push_back({.op = "linear",
                     .label = label + (bias ? " bias" : ""),
                     .inputs = std::move(in),
                     .fn =
                         [bias](Vars& x) {
                             return Vars{bias ? ag::linear(x[0], x[1], x[2])
                                              : ag::linear(x[0], x[1])};
                         },
                     .atol = 1e-4,
                     .rtol = 1e-4,
                     .fd = fd});
    };
    struct Size {
        Shape x;
        int64_t cout;
    };
    const Size sizes[] = {{Shape{7}, 3},         {Shape{1, 7}, 5},       {Shape{3, 37}, 19},
                          {Shape{2, 5, 67}, 13}, {Shape{2, 3, 4, 9}, 7}, {Shape{1, 1, 13}, 1}};
    for (const Size& s : sizes)
        for (bool bias : {false, true}) {
            const Shape w{s.cout, s.x[s.x.ndim() - 1]};
            std::vector<Input> in{{.shape = s.x}, {.shape = w}};
            if (bias) in.push_back({.shape = Shape{s.cout}});
            add(s.x.str() + " w " + w.str(), std::move(in));
        }
    // Strided x and w (conformance only: finite differences assume packed inputs).
    add("transposed x [11, 37], w [5, 37]",
        {transposed_view(Shape{11, 37}), {.shape = Shape{5, 37}}}, false);
    add("x [11, 37], transposed w [5, 37]",
        {{.shape = Shape{11, 37}}, transposed_view(Shape{5, 37}), {.shape = Shape{5}}}, false);
    add("batched transposed x [2, 9, 13], w [7, 13]",
        {transposed_view(Shape{2, 9, 13}), {.shape = Shape{7, 13}}, {.shape = Shape{7}}}, false);
    return v;
}

}  // namespace goose::test
