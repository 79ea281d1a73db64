// CUDA reductions: sum/mean over axes, max along one axis (values and first index), their
// backwards, and sum_to_shape. Sums merge the reduced axes into runs and reduce each run as an
// (O, A, I) pass: rows (I == 1) one block per piece of a row, columns (I > 1) blocks of 32
// columns x 8 row lanes over pieces of A; pieces write partial sums in the accumulation type
// that a further pass adds, always in the same order (deterministic, no atomics). bf16 passes
// accumulate and keep partials in f32 and round once at the end.
#include "ops/cuda/ops_util.cuh"  // first (see there)

#include <algorithm>
#include <vector>

#include "ops/cuda/cuda_ops.h"

namespace goose::ops {

using namespace cuda_ops;

namespace {
constexpr int64_t kRowPiece = 8192;  // elements of a row summed by one block (I == 1)
constexpr int kColLanes = 8;         // row lanes of a column block (I > 1)

// Accumulation type of a pass from TIn to TOut: double when either is double.
template <class TIn, class TOut>
using pass_acc_t = std::conditional_t<std::is_same_v<TIn, double> || std::is_same_v<TOut, double>,
                                      double, float>;

template <class TIn, class TOut, class A>
__global__ void sum_rows_kernel(const TIn* __restrict__ in, TOut* __restrict__ out, A* part,
                                int64_t A_len, int64_t pieces, double scale) {
    const int64_t task = blockIdx.x;  // o * pieces + piece
    const int64_t o = task / pieces, pc = task % pieces;
    const int64_t a0 = pc * kRowPiece, a1 = min(A_len, a0 + kRowPiece);
    const TIn* row = in + o * A_len;
    A s = 0;
    for (int64_t a = a0 + threadIdx.x; a < a1; a += blockDim.x) s += A(to_acc(row[a]));
    s = block_sum(s);
    if (threadIdx.x == 0) {
        if (pieces == 1)
            out[o] = from_acc<TOut>(double(s) * scale);
        else
            part[task] = s;
    }
}

// Column pass: task = (piece, o, column block); block (32, kColLanes).
template <class TIn, class TOut, class A>
__global__ void sum_cols_kernel(const TIn* __restrict__ in, TOut* __restrict__ out, A* part,
                                int64_t O, int64_t A_len, int64_t I, int64_t pieces,
                                int64_t rows_per_piece, double scale) {
    __shared__ A sh[kColLanes][33];
    const int64_t cblocks = (I + 31) / 32;
    const int64_t task = blockIdx.x;
    const int64_t cb = task % cblocks, o = task / cblocks % O, pc = task / (cblocks * O);
    const int64_t i = cb * 32 + threadIdx.x;
    const int64_t a0 = pc * rows_per_piece, a1 = min(A_len, a0 + rows_per_piece);
    A s = 0;
    if (i < I)
        for (int64_t a = a0 + threadIdx.y; a < a1; a += kColLanes)
            s += A(to_acc(in[(o * A_len + a) * I + i]));
    sh[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && i < I) {
        A t = 0;
#pragma unroll
        for (int l = 0; l < kColLanes; ++l) t += sh[l][threadIdx.x];
        if (pieces == 1)
            out[o * I + i] = from_acc<TOut>(double(t) * scale);
        else
            part[(pc * O + o) * I + i] = t;
    }
}

template <class TOut>
__global__ void fill_kernel(TOut* out, int64_t n, double v) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        out[i] = from_acc<TOut>(v);
}

template <class TIn, class TOut>
void sum_oai_typed(const Tensor& in, const Tensor& out, int64_t O, int64_t A_len, int64_t I,
                   double scale) {
    using A = pass_acc_t<TIn, TOut>;
    const int64_t m = O * I;
    if (m == 0) return;
    if (A_len == 0) {
        fill_kernel<TOut><<<grid_for(m), kThreads, 0, stream()>>>(ptr<TOut>(out), m, 0.0 * scale);
        check_launch("sum");
        return;
    }
    const DType acc_dt = dtype_of_elem<A>();
    if (I == 1) {
        const int64_t pieces = (A_len + kRowPiece - 1) / kRowPiece;
        Tensor part = pieces > 1 ? empty_on(Shape{O, pieces}, acc_dt, in) : Tensor();
        sum_rows_kernel<TIn, TOut, A><<<unsigned(O * pieces), row_threads(A_len), 0, stream()>>>(
            ptr<TIn>(in), ptr<TOut>(out), pieces > 1 ? ptr<A>(part) : nullptr, A_len, pieces,
            scale);
        check_launch("sum");
        if (pieces > 1) sum_oai(part, out, O, pieces, 1, scale);
        return;
    }
    const int64_t base = O * ((I + 31) / 32);
    const int64_t pieces = std::max<int64_t>(
        1, std::min<int64_t>((A_len + 63) / 64, 2048 / std::max<int64_t>(1, base)));
    const int64_t rows_per_piece = (A_len + pieces - 1) / pieces;
    const int64_t used = (A_len + rows_per_piece - 1) / rows_per_piece;
    Tensor part = used > 1 ? empty_on(Shape{used, O * I}, acc_dt, in) : Tensor();
    sum_cols_kernel<TIn, TOut, A><<<unsigned(base * used), dim3(32, kColLanes), 0, stream()>>>(
        ptr<TIn>(in), ptr<TOut>(out), used > 1 ? ptr<A>(part) : nullptr, O, A_len, I, used,
        rows_per_piece, scale);
    check_launch("sum");
    if (used > 1) sum_oai(part, out, 1, used, O * I, scale);
}

// Reduces packed x over `axes` (sorted, unique) into a packed tensor of out_dtype, numel of the
// keepdim shape; intermediate passes keep the accumulation type.
Tensor reduce_axes(const Tensor& xc, std::span<const int> axes, double scale, DType out_dtype) {
    struct Run {
        int64_t size;
        bool reduced;
    };
    std::vector<Run> runs;
    for (int d = 0; d < xc.ndim(); ++d) {
        if (xc.size(d) == 1) continue;
        const bool red = std::find(axes.begin(), axes.end(), d) != axes.end();
        if (!runs.empty() && runs.back().reduced == red)
            runs.back().size *= xc.size(d);
        else
            runs.push_back({xc.size(d), red});
    }
    bool any_empty = false;
    for (int a : axes) any_empty = any_empty || xc.size(a) == 0;
    const DType mid_dtype = out_dtype == DType::f64 ? DType::f64 : DType::f32;
    Tensor cur = xc;
    bool done = false;
    if (any_empty) {  // a reduced axis of size 0: runs above dropped nothing of size 0, so
        int64_t keep = 1;  // the output is every kept element, all 0 * scale
        for (int d = 0; d < xc.ndim(); ++d)
            if (std::find(axes.begin(), axes.end(), d) == axes.end()) keep *= xc.size(d);
        Tensor next = empty_on(Shape{keep}, out_dtype, xc);
        sum_oai(xc, next, keep, 0, 1, scale);
        return next;
    }
    while (true) {
        int g = static_cast<int>(runs.size()) - 1;
        while (g >= 0 && !runs[size_t(g)].reduced) --g;
        if (g < 0) break;
        int64_t O = 1, I = 1;
        bool more = false;
        for (int k = 0; k < g; ++k) {
            O *= runs[size_t(k)].size;
            more = more || runs[size_t(k)].reduced;
        }
        for (size_t k = size_t(g) + 1; k < runs.size(); ++k) I *= runs[k].size;
        const int64_t A_len = runs[size_t(g)].size;
        Tensor next = empty_on(Shape{O * I}, more ? mid_dtype : out_dtype, xc);
        sum_oai(cur, next, O, A_len, I, more ? 1.0 : scale);
        done = done || !more;
        runs.erase(runs.begin() + g);
        if (g > 0 && size_t(g) < runs.size()) {
            runs[size_t(g) - 1].size *= runs[size_t(g)].size;
            runs.erase(runs.begin() + g);
        }
        cur = next;
    }
    if (!done) {  // nothing of size > 1 reduced: y = scale * x
        Tensor next = empty_on(Shape{xc.numel()}, out_dtype, xc);
        sum_oai(cur, next, 1, 1, xc.numel(), scale);
        cur = next;
    }
    return cur;
}

// ---- max ----
template <class A>
__device__ __forceinline__ bool better(A v, int64_t i, A bv, int64_t bi) {
    const bool vn = v != v, bn = bv != bv;
    if (vn || bn) return vn && bn ? i < bi : vn;
    if (v > bv) return true;
    if (v < bv) return false;
    return i < bi;
}

// One block per row (I == 1): first index of the maximum, the first NaN winning.
template <class T>
__global__ void max_rows_kernel(const T* __restrict__ x, T* __restrict__ vals,
                                int64_t* __restrict__ idx, int64_t A_len) {
    using A = acc_t<T>;
    __shared__ A sv[512];
    __shared__ int64_t si[512];
    const int64_t o = blockIdx.x;
    const T* row = x + o * A_len;
    A bv = 0;
    int64_t bi = -1;
    for (int64_t a = threadIdx.x; a < A_len; a += blockDim.x) {
        const A v = to_acc(row[a]);
        if (bi < 0 || better(v, a, bv, bi)) {
            bv = v;
            bi = a;
        }
    }
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            const int64_t oi = si[threadIdx.x + s];
            if (oi >= 0 && (si[threadIdx.x] < 0 ||
                            better(sv[threadIdx.x + s], oi, sv[threadIdx.x], si[threadIdx.x]))) {
                sv[threadIdx.x] = sv[threadIdx.x + s];
                si[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        idx[o] = si[0];
        vals[o] = row[si[0]];
    }
}

// One thread per (o, i) (I > 1), scanning a.
template <class T>
__global__ void max_cols_kernel(const T* __restrict__ x, T* __restrict__ vals,
                                int64_t* __restrict__ idx, int64_t O, int64_t A_len, int64_t I) {
    using A = acc_t<T>;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < O * I;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t o = e / I, i = e % I;
        const T* base = x + o * A_len * I + i;
        A bv = to_acc(base[0]);
        int64_t bi = 0;
        for (int64_t a = 1; a < A_len; ++a) {
            const A v = to_acc(base[a * I]);
            if (better(v, a, bv, bi)) {
                bv = v;
                bi = a;
            }
        }
        idx[e] = bi;
        vals[e] = base[bi * I];
    }
}

template <class T, class Ix>
__global__ void max_backward_kernel(const T* __restrict__ g, const Ix* __restrict__ idx,
                                    T* __restrict__ out, int64_t O, int64_t A_len, int64_t I) {
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < O * I;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t o = e / I, i = e % I, a = int64_t(idx[e]);
        // an index outside [0, A_len) only reaches here under graph capture (checked on the
        // device, reported at the next sync): its gradient is dropped
        if (a >= 0 && a < A_len) out[(o * A_len + a) * I + i] = g[e];
    }
}

template <class A>
struct Scaled {
    A s;
    __device__ A operator()(A g) const { return s * g; }
};

void split_at(const Shape& s, int axis, int64_t& O, int64_t& A_len, int64_t& I) {
    O = 1;
    I = 1;
    for (int d = 0; d < axis; ++d) O *= s[d];
    for (int d = axis + 1; d < s.ndim(); ++d) I *= s[d];
    A_len = s[axis];
}
}  // namespace

namespace cuda_ops {

void sum_oai(const Tensor& in, const Tensor& out, int64_t O, int64_t A_len, int64_t I,
             double scale) {
    dispatch_float(in.dtype(), "sum", [&](auto ti) {
        dispatch_float(out.dtype(), "sum", [&](auto to) {
            sum_oai_typed<decltype(ti), decltype(to)>(in, out, O, A_len, I, scale);
        });
    });
}

Tensor sum_to_shape_as(const Tensor& g, const Shape& shape, DType dtype) {
    const std::vector<int> axes = broadcast_axes(shape, g.shape());
    return reduce_axes(g.contiguous(), axes, 1.0, dtype).view(shape);
}

}  // namespace cuda_ops

Tensor sum_forward_cuda(const Tensor& x, std::span<const int> axes, double scale) {
    Shape keep = x.shape();
    for (int a : axes) keep[a] = 1;
    return reduce_axes(x.contiguous(), axes, scale, x.dtype()).view(keep);
}

Tensor sum_backward_cuda(const Tensor& gy, const Shape& x_shape, double scale) {
    const Tensor gc = gy.contiguous();
    Tensor gx = empty_on(x_shape, gy.dtype(), gy);
    dispatch_float(gy.dtype(), "sum", [&](auto tag) {
        using T = decltype(tag);
        using A = acc_t<T>;
        const A s = A(scale);
        bmap<T>(ptr<T>(gx), x_shape, std::array<Shape, 1>{gc.shape()}, Scaled<A>{s},
                ptr<T>(gc));
    });
    return gx;
}

Tensor sum_to_shape_cuda(const Tensor& g, const Shape& shape) {
    return sum_to_shape_as(g, shape, g.dtype());
}

MaxResult max_forward_cuda(const Tensor& x, int axis) {
    const Shape keep = x.shape().without(axis).with_inserted(axis, 1);
    const Tensor xc = x.contiguous();
    MaxResult r{empty_on(keep, x.dtype(), x), empty_on(keep, DType::i64, x)};
    int64_t O, A_len, I;
    split_at(x.shape(), axis, O, A_len, I);
    if (O * I == 0) return r;
    dispatch_float(x.dtype(), "max", [&](auto tag) {
        using T = decltype(tag);
        if (I == 1)
            max_rows_kernel<T><<<unsigned(O), row_threads(A_len), 0, stream()>>>(
                ptr<T>(xc), ptr<T>(r.values), ptr<int64_t>(r.indices), A_len);
        else
            max_cols_kernel<T><<<grid_for(O * I), kThreads, 0, stream()>>>(
                ptr<T>(xc), ptr<T>(r.values), ptr<int64_t>(r.indices), O, A_len, I);
    });
    check_launch("max");
    return r;
}

Tensor max_backward_cuda(const Tensor& gy, const Tensor& indices, const Shape& x_shape,
                         int axis) {
    const Tensor gc = gy.contiguous(), ic = indices.contiguous();
    Tensor gx = zeros_on(x_shape, gy.dtype(), gy);
    int64_t O, A_len, I;
    split_at(x_shape, axis, O, A_len, I);
    if (O * I == 0) return gx;
    dispatch_float(gy.dtype(), "max", [&](auto tag) {
        using T = decltype(tag);
        if (ic.dtype() == DType::i32)
            max_backward_kernel<T, int32_t><<<grid_for(O * I), kThreads, 0, stream()>>>(
                ptr<T>(gc), ptr<int32_t>(ic), ptr<T>(gx), O, A_len, I);
        else
            max_backward_kernel<T, int64_t><<<grid_for(O * I), kThreads, 0, stream()>>>(
                ptr<T>(gc), ptr<int64_t>(ic), ptr<T>(gx), O, A_len, I);
    });
    check_launch("max");
    return gx;
}

}  // namespace goose::ops
