// Sizes of a matmul call (M, K, N, batch), shared by the front end and the variants.
#pragma once
#include "goose/core/tensor.h"

namespace goose::ops {

struct MatmulDims {
    int64_t m = 0, k = 0, n = 0;
    int64_t batch = 1;      // product of a's batch dims
    bool b_shared = false;  // b is 2-D and a has batch dims: one b for every batch
    Shape out;              // a's batch dims + (M, N)
};

// Assumes checked inputs (see matmul_forward): a (..., M, K), b (..., K, N) up to the flags.
inline MatmulDims matmul_dims(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
    MatmulDims d;
    d.m = trans_a ? a.size(-1) : a.size(-2);
    d.k = trans_a ? a.size(-2) : a.size(-1);
    d.n = trans_b ? b.size(-2) : b.size(-1);
    for (int i = 0; i < a.ndim() - 2; ++i) {
        d.batch *= a.size(i);
        d.out.push_back(a.size(i));
    }
    d.out.push_back(d.m);
    d.out.push_back(d.n);
    d.b_shared = b.ndim() == 2 && a.ndim() > 2;
    return d;
}

}  // namespace goose::ops
