// Broadcast loops of the CPU backend (binary, select and reduce families). Operands are packed
// and broadcast against a packed output; adjacent dims merge wherever every operand allows, so
// a same-shape op becomes one flat loop and a row broadcast (bias (C) against (N, C)) becomes
// rows of unit-stride loops that reread the vector. The innermost loop is always unit-stride:
// an operand broadcast along it is first copied into a small per-thread buffer.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <tuple>
#include <utility>

#include "goose/core/dtype.h"
#include "goose/core/shape.h"
#include "ops/broadcast_plan.h"

namespace goose::ops::bcast {

inline constexpr int64_t kPiece = 1024;         // elements per task: a row or a piece of one
inline constexpr int64_t kParallelMin = 16384;  // below this, threads cost more than they save

// One packed operand and its shape (broadcastable to the output's).
template <class T>
struct In {
    const T* data;
    Shape shape;
};

using broadcast::make_plan;
using broadcast::Plan;

namespace detail {

template <class T>
const T* piece(const In<T>& in, int64_t off, int64_t inner_stride, int64_t j0, int64_t len,
               unsigned char* raw) {
    if (inner_stride != 0) return in.data + off + j0;  // inner stride is 1 for a packed operand
    T* buf = reinterpret_cast<T*>(raw);
    std::fill_n(buf, len, in.data[off]);
    return buf;
}

template <class TOut, class F, class... P>
inline void run(TOut* __restrict o, int64_t len, F& f, const P* __restrict... p) {
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) o[i] = f(p[i]...);
}

template <class TOut, class F, class... T, size_t... I>
void map_impl(std::index_sequence<I...>, TOut* out, const Shape& out_shape, F& f,
              const In<T>&... in) {
    constexpr int K = sizeof...(T);
    const int64_t numel = out_shape.numel();
    if (numel == 0) return;
    const Plan<K> p = make_plan<K>(out_shape, {in.shape...});
    const int last = p.ndim - 1;
    const int64_t inner = p.size[last];
    const int64_t pieces = (inner + kPiece - 1) / kPiece;
    const int64_t tasks = numel / inner * pieces;
#pragma omp parallel if (numel > kParallelMin)
    {
        alignas(64) unsigned char raw[K][kPiece * sizeof(double)];
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; ++t) {
            const int64_t r = t / pieces, j0 = (t % pieces) * kPiece;
            const int64_t len = std::min(kPiece, inner - j0);
            int64_t off[K] = {};
            int64_t rem = r;
            for (int d = last - 1; d >= 0; --d) {
                const int64_t i = rem % p.size[d];
                rem /= p.size[d];
                for (int k = 0; k < K; ++k) off[k] += i * p.stride[k][d];
            }
            run(out + r * inner + j0, len, f,
                piece(in, off[I], p.stride[I][last], j0, len, raw[I])...);
        }
    }
}

}  // namespace detail

// out[i] = f(in_0[i'], in_1[i''], ...) over every index i of out_shape (packed output), each
// operand read at its broadcast position. f must be a pure elementwise function.
template <class TOut, class F, class... T>
void map(TOut* out, const Shape& out_shape, F f, const In<T>&... in) {
    detail::map_impl(std::index_sequence_for<T...>{}, out, out_shape, f, in...);
}

// Calls f(float{}) or f(double{}) by dtype (f32 or f64).
template <class F>
decltype(auto) float_dispatch(DType t, F&& f) {
    if (t == DType::f32) return f(float{});
    return f(double{});
}

}  // namespace goose::ops::bcast
