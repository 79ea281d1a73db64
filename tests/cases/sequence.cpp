// Cases of embedding (i32 and i64 ids of several shapes, repeated ids, strided weight and ids)
// and token_shift (with and without prev, T = 1, a strided x).
#include "goose/autograd/sequence.h"
#include "common/op_cases.h"

namespace goose::test {

GOOSE_OP_CASES(embedding) {
    std::vector<OpCase> v;
    struct Size {
        int64_t vocab, c;
        Shape ids;
    };
    // Ids repeat (more ids than rows) so the backward's scatter-add sums several rows.
    const Size sizes[] = {{1, 1, Shape{1}},        {5, 7, Shape{3}},
                          {11, 37, Shape{2, 9}},   {7, 67, Shape{2, 3, 5}},
                          {50, 130, Shape{1, 67}}, {3, 13, Shape{2, 1, 2, 3}}};
    for (const Size& s : sizes)
        for (DType dt : {DType::i64, DType::i32}) {
            v.push_back(
                {.op = "embedding",
                 .label = "V " + std::to_string(s.vocab) + " C " + std::to_string(s.c) + " ids " +
                          s.ids.str() + (dt == DType::i32 ? " i32" : " i64"),
                 .inputs =
                     {{.shape = Shape{s.vocab, s.c}},
                      {.shape = s.ids, .init = Init::index, .hi = s.vocab, .index_dtype = dt}},
                 .fn = [](Vars& x) { return Vars{ag::embedding(x[0], x[1].value())}; }});
        }
    // Transposed weight and ids views. Conformance only: finite differences perturb storage in
    // place and assume packed inputs.
    v.push_back(
        {.op = "embedding",
         .label = "transposed weight [9, 37], transposed ids [4, 6]",
         .inputs =
             {{.shape = Shape{9, 37},
               .init = Init::custom,
               .make =
                   [](DType dt, Rng& r) {
                       return Tensor::randn(Shape{37, 9}, r, DType::f64).to(dt).transpose(0, 1);
                   }},
              {.shape = Shape{6, 4}, .init = Init::index, .hi = 9}},
         .fn = [](Vars& x) { return Vars{ag::embedding(x[0], x[1].value().transpose(0, 1))}; },
         .fd = false});
    return v;
}

GOOSE_OP_CASES(token_shift) {
    std::vector<OpCase> v;
    const Shape sizes[] = {Shape{1, 1, 1}, Shape{2, 1, 7}, Shape{1, 5, 37}, Shape{3, 7, 67},
                           Shape{2, 130, 13}};
    for (const Shape& s : sizes)
        for (bool prev : {false, true}) {
            std::vector<Input> in{{.shape = s}};
            if (prev) in.push_back({.shape = Shape{s[0], s[2]}});
            v.push_back({.op = "token_shift",
                         .label = s.str() + (prev ? " prev" : ""),
                         .inputs = std::move(in),
                         .fn = [prev](Vars& x) {
                             return Vars{prev ? ag::token_shift(x[0], x[1])
                                              : ag::token_shift(x[0])};
                         }});
        }
    // x as a (B, T, C) view of packed (T, B, C), prev a column slice. Conformance only.
    v.push_back(
        {.op = "token_shift",
         .label = "strided x [3, 9, 17] and prev",
         .inputs =
             {{.shape = Shape{3, 9, 17},
               .init = Init::custom,
               .make =
                   [](DType dt, Rng& r) {
                       return Tensor::randn(Shape{9, 3, 17}, r, DType::f64).to(dt).transpose(0, 1);
                   }},
              {.shape = Shape{3, 17},
               .init = Init::custom,
               .make =
                   [](DType dt, Rng& r) {
                       return Tensor::randn(Shape{3, 20}, r, DType::f64).to(dt).slice(1, 2, 19);
                   }}},
         .fn = [](Vars& x) { return Vars{ag::token_shift(x[0], x[1])}; },
         .fd = false});
    return v;
}

}  // namespace goose::test
