// The broadcast plan the CPU and CUDA elementwise loops share: the output's dims of size > 1,
// merged wherever every operand is contiguous across them (a same-shape op becomes one flat
// loop, a row broadcast rows of unit-stride loops). Operands are packed tensors broadcastable to
// the output; stride 0 marks a dim an operand is broadcast along. Plain host code and a plain
// struct, so a CUDA kernel takes the plan by value.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "goose/core/shape.h"

namespace goose::ops::broadcast {

template <int K>
struct Plan {
    int ndim = 0;
    int64_t size[kMaxDims] = {};
    int64_t stride[K][kMaxDims] = {};
};

template <int K>
Plan<K> make_plan(const Shape& out, const std::array<Shape, size_t(K)>& in) {
    Plan<K> p;
    std::array<Strides, size_t(K)> cs;
    for (int k = 0; k < K; ++k) cs[k] = contiguous_strides(in[k]);
    const int n = out.ndim();
    for (int d = 0; d < n; ++d) {
        if (out[d] == 1) continue;
        int64_t st[K];
        for (int k = 0; k < K; ++k) {
            const int dk = d - (n - in[k].ndim());
            st[k] = dk >= 0 && in[k][dk] != 1 ? cs[k][dk] : 0;
        }
        bool merge = p.ndim > 0;
        for (int k = 0; k < K && merge; ++k) merge = p.stride[k][p.ndim - 1] == st[k] * out[d];
        if (merge) {
            p.size[p.ndim - 1] *= out[d];
            for (int k = 0; k < K; ++k) p.stride[k][p.ndim - 1] = st[k];
        } else {
            for (int k = 0; k < K; ++k) p.stride[k][p.ndim] = st[k];
            p.size[p.ndim++] = out[d];
        }
    }
    if (p.ndim == 0) p.size[p.ndim++] = 1;
    return p;
}

}  // namespace goose::ops::broadcast
