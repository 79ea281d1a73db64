// Inputs shared by the cases of the binary, select and reduce families.
#pragma once
#include "common/op_cases.h"

namespace goose::test {

// A (rows, cols) input presented as its transpose: a non-contiguous (cols, rows) leaf. Cases
// with one set fd = false: the finite-difference suite perturbs an input's storage in index
// order, which a transposed view does not follow.
inline Input transposed(int64_t rows, int64_t cols, Init init = Init::normal) {
    return {.shape = Shape{cols, rows},
            .init = Init::custom,
            .make = [rows, cols, init](DType dt, Rng& r) {
                const Shape s{rows, cols};
                Tensor t;
                if (init == Init::positive)
                    t = Tensor::uniform(s, r, DType::f64, 0.5, 2.0);
                else if (init == Init::unit_interval)
                    t = Tensor::uniform(s, r, DType::f64, 0.0, 1.0);
                else if (init == Init::mask) {
                    t = Tensor::empty(s, DType::u8);
                    for (int64_t k = 0; k < t.numel(); ++k)
                        t.data<uint8_t>()[k] = r.uniform() < 0.5;
                    return t.transpose(0, 1);
                } else
                    t = Tensor::randn(s, r, DType::f64);
                return t.to(dt).transpose(0, 1);
            }};
}

}  // namespace goose::test
