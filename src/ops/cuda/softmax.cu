// CUDA softmax and log_softmax along the last axis: one warp per row with the row in registers
// up to 1024 elements, one block per row beyond (warp shuffles then shared memory for the row
// max and sums); math in f32 (f64 for f64).
// The backwards work from the saved output like the CPU kernels.
#include "ops/cuda/ops_util.cuh"  // first (see there)

#include "goose/ops/softmax.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/math.cuh"

namespace goose::ops {

using namespace cuda_ops;

namespace {

template <class T, bool kLog>
__global__ void softmax_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t c) {
    using A = acc_t<T>;
    const T* xr = x + int64_t(blockIdx.x) * c;
    T* yr = y + int64_t(blockIdx.x) * c;
    A m = -INFINITY;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) m = fmax(m, to_acc(xr[j]));
    m = block_max(m);
    A s = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += dmath::exp_(to_acc(xr[j]) - m);
    s = block_sum(s);
    if constexpr (kLog) {
        const A log_s = dmath::log_(s);  // (x - m) - log s: exact near the max
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            yr[j] = from_acc<T>((to_acc(xr[j]) - m) - log_s);
    } else {
        const A inv = A(1) / s;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            yr[j] = from_acc<T>(dmath::exp_(to_acc(xr[j]) - m) * inv);
    }
}

template <class T, bool kLog>
__global__ void softmax_bwd_kernel(const T* __restrict__ gy, const T* __restrict__ y,
                                   T* __restrict__ dx, int64_t c) {
    using A = acc_t<T>;
    const int64_t off = int64_t(blockIdx.x) * c;
    const T *g = gy + off, *yr = y + off;
    T* d = dx + off;
    A s = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
        s += kLog ? to_acc(g[j]) : to_acc(g[j]) * to_acc(yr[j]);
    s = block_sum(s);
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
        const A gj = to_acc(g[j]), yj = to_acc(yr[j]);
        d[j] = from_acc<T>(kLog ? gj - dmath::exp_(yj) * s : yj * (gj - s));
    }
}

// Warp versions for rows of up to kWarpRowMax (the row in registers, one read of x).
template <class T, bool kLog, int VPL>
__global__ void softmax_fwd_warp_kernel(const T* __restrict__ x, T* __restrict__ y,
                                        int64_t rows, int64_t c) {
    using A = acc_t<T>;
    const int64_t r = warp_row();
    if (r >= rows) return;
    const int lane = threadIdx.x & 31;
    const int64_t off = r * c;
    A v[VPL];
    A m = -INFINITY;
    bool nan = false;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        v[k] = j < c ? to_acc(x[off + j]) : A(-INFINITY);
        nan = nan || v[k] != v[k];
        m = fmax(m, v[k]);
    }
    m = __any_sync(0xffffffffu, nan) ? A(NAN) : warp_max(m);
    A s = 0;
#pragma unroll
    for (int k = 0; k < VPL; ++k)
        if (lane + 32 * k < c) s += dmath::exp_(v[k] - m);
    s = warp_sum(s);
    const A log_s = dmath::log_(s), inv = A(1) / s;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        if (j >= c) break;
        y[off + j] = from_acc<T>(kLog ? (v[k] - m) - log_s : dmath::exp_(v[k] - m) * inv);
    }
}

template <class T, bool kLog, int VPL>
__global__ void softmax_bwd_warp_kernel(const T* __restrict__ gy, const T* __restrict__ y,
                                        T* __restrict__ dx, int64_t rows, int64_t c) {
    using A = acc_t<T>;
    const int64_t r = warp_row();
    if (r >= rows) return;
    const int lane = threadIdx.x & 31;
    const int64_t off = r * c;
    A gv[VPL], yv[VPL];
    A s = 0;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        gv[k] = j < c ? to_acc(gy[off + j]) : A(0);
        yv[k] = j < c ? to_acc(y[off + j]) : A(0);
        s += kLog ? gv[k] : gv[k] * yv[k];
    }
    s = warp_sum(s);
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int64_t j = lane + 32 * k;
        if (j >= c) break;
        dx[off + j] = from_acc<T>(kLog ? gv[k] - dmath::exp_(yv[k]) * s : yv[k] * (gv[k] - s));
    }
}

template <bool kLog>
Tensor forward(const Tensor& x) {
    const char* op = kLog ? "log_softmax" : "softmax";
    const Tensor xc = x.contiguous();
    Tensor y = empty_on(x.shape(), x.dtype(), x);
    if (x.numel() == 0) return y;
    const int64_t c = x.size(-1), rows = x.numel() / c;
    dispatch_float(x.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        if (c <= kWarpRowMax)
            with_vpl(c, [&](auto vpl) {
                softmax_fwd_warp_kernel<T, kLog, decltype(vpl)::value>
                    <<<warp_row_blocks(rows), 32 * kWarpRowsPerBlock, 0, stream()>>>(
                        ptr<T>(xc), ptr<T>(y), rows, c);
            });
        else
            softmax_fwd_kernel<T, kLog><<<unsigned(rows), row_threads(c), 0, stream()>>>(
                ptr<T>(xc), ptr<T>(y), c);
    });
    check_launch(op);
    return y;
}

template <bool kLog>
Tensor backward(const Tensor& gy, const Tensor& y) {
    const char* op = kLog ? "log_softmax" : "softmax";
    const Tensor gc = gy.contiguous(), yc = y.contiguous();
    Tensor dx = empty_on(y.shape(), y.dtype(), y);
    if (y.numel() == 0) return dx;
    const int64_t c = y.size(-1), rows = y.numel() / c;
    dispatch_float(y.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        if (c <= kWarpRowMax)
            with_vpl(c, [&](auto vpl) {
                softmax_bwd_warp_kernel<T, kLog, decltype(vpl)::value>
                    <<<warp_row_blocks(rows), 32 * kWarpRowsPerBlock, 0, stream()>>>(
                        ptr<T>(gc), ptr<T>(yc), ptr<T>(dx), rows, c);
            });
        else
            softmax_bwd_kernel<T, kLog><<<unsigned(rows), row_threads(c), 0, stream()>>>(
                ptr<T>(gc), ptr<T>(yc), ptr<T>(dx), c);
    });
    check_launch(op);
    return dx;
}
}  // namespace

Tensor softmax_forward_cuda(const Tensor& x) { return forward<false>(x); }
Tensor log_softmax_forward_cuda(const Tensor& x) { return forward<true>(x); }
Tensor softmax_backward_cuda(const Tensor& gy, const Tensor& y) { return backward<false>(gy, y); }
Tensor log_softmax_backward_cuda(const Tensor& gy, const Tensor& y) {
    return backward<true>(gy, y);
}

}  // namespace goose::ops
