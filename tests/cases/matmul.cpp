// Cases of matmul and linear: 2-D to 4-D, every transpose flag, a shared 2-D b, strided views
// (transposed storage, padded rows, non-unit inner stride), bias or none; linear with bf16
// weights (f32 x).
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

// A bf16 weight w (Cout, Cin) that keeps its dtype in every run (f32 activations, no gradient):
// packed, held as the transpose of packed (Cin, Cout) storage, or with padded rows.
enum class Layout : uint8_t { packed, transposed, padded };
Input bf16_weight(int64_t cout, int64_t cin, Layout layout = Layout::packed) {
    return {.shape = Shape{cout, cin},
            .init = Init::custom,
            .make =
                [cout, cin, layout](DType, Rng& r) {
                    switch (layout) {
                        case Layout::transposed:
                            return Tensor::randn(Shape{cin, cout}, r, DType::f64)
                                .to(DType::bf16)
                                .transpose(0, 1);
                        case Layout::padded:
                            return Tensor::randn(Shape{cout, cin + 3}, r, DType::f64)
                                .to(DType::bf16)
                                .slice(1, 0, cin);
                        default:
                            return Tensor::randn(Shape{cout, cin}, r, DType::f64).to(DType::bf16);
                    }
                },
            .keep_dtype = true};
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

    // bf16 weights with f32 x (inference): w keeps its dtype and takes no gradient; dx and db
    // flow. Both backends use the same bf16 values (widened exactly), so only the order of the
    // f32 sums differs: tight tolerances. M <= 4 rows take the direct kernel, more rows the
    // widened GEMM. No finite differences: that suite runs in f64, and linear takes bf16 w with
    // f32 x only; the weight is fixed bf16 data, and dx = gy w is the formula that the f32
    // cases above prove by finite differences.
    const auto add_bf16 = [&](std::string label, std::vector<Input> in) {
        const bool bias = in.size() == 3;
        v.push_back({.op = "linear",
                     .label = "bf16 w " + label + (bias ? " bias" : ""),
                     .inputs = std::move(in),
                     .fn =
                         [bias](Vars& x) {
                             return Vars{bias ? ag::linear(x[0], x[1], x[2])
                                              : ag::linear(x[0], x[1])};
                         },
                     .atol = 1e-5,
                     .rtol = 1e-5,
                     .fd = false});
    };
    // Leading dims of x for M = 1 (1-D x), 3, 4 (batched), 5 and 37 rows.
    const Shape leads[] = {Shape{}, Shape{1, 3}, Shape{2, 2}, Shape{5}, Shape{37}};
    for (const Shape& lead : leads)
        for (int64_t cin : {7, 37, 100})
            for (int64_t cout : {1, 19, 67})
                for (bool bias : {false, true}) {
                    Shape xs = lead;
                    xs.push_back(cin);
                    std::vector<Input> in{{.shape = xs}, bf16_weight(cout, cin)};
                    if (bias) in.push_back({.shape = Shape{cout}});
                    add_bf16("x " + xs.str() + " w " + Shape{cout, cin}.str(), std::move(in));
                }
    // Strided weights and x on both paths (a copy where the inner stride is not 1).
    for (int64_t m : {1, 5}) {
        add_bf16("M=" + std::to_string(m) + " transposed w [19, 37]",
                 {{.shape = Shape{m, 37}}, bf16_weight(19, 37, Layout::transposed)});
        add_bf16(
            "M=" + std::to_string(m) + " padded w [67, 37]",
            {{.shape = Shape{m, 37}}, bf16_weight(67, 37, Layout::padded), {.shape = Shape{67}}});
        add_bf16("M=" + std::to_string(m) + " transposed x, w [19, 37]",
                 {transposed_view(Shape{m, 37}), bf16_weight(19, 37)});
    }
    return v;
}

}  // namespace goose::test
