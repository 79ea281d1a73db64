// CUDA losses. Cross-entropy: one block per row (max, log-sum-exp, the row's loss; the
// backward writes softmax - onehot from the saved log-sum-exp), then one block sums the row
// losses and counts the kept rows in a fixed order; no softmax tensor, no host sync (gy and the
// count are read on the device). mse and bce_with_logits: fixed blocks of partial sums, then
// one block adds them in order (deterministic). The losses are 0-d tensors on the device; for
// bf16 logits the saved log-sum-exp is f32.
#include "ops/cuda/ops_util.cuh"  // first (see there)

#include <string>

#include "core/cuda/device_check.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/math.cuh"

namespace goose::ops {

using namespace cuda_ops;

namespace {
constexpr int kFinalThreads = 1024;

template <class T, class I, class L>
__global__ void ce_forward_kernel(const T* __restrict__ x, const I* __restrict__ t,
                                  L* __restrict__ lse, acc_t<T>* __restrict__ row_loss, int64_t v,
                                  int64_t ignore_index) {
    using A = acc_t<T>;
    const int64_t r = blockIdx.x;
    const int64_t tr = int64_t(t[r]);
    if (tr == ignore_index) {
        if (threadIdx.x == 0) {
            lse[r] = from_acc<L>(A(0));
            row_loss[r] = 0;
        }
        return;
    }
    const T* xr = x + r * v;
    A m = -INFINITY;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) m = fmax(m, to_acc(xr[j]));
    m = block_max(m);
    A s = 0;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) s += dmath::exp_(to_acc(xr[j]) - m);
    s = block_sum(s);
    if (threadIdx.x == 0) {
        const A l = m + dmath::log_(s);
        lse[r] = from_acc<L>(l);
        row_loss[r] = l - to_acc(xr[tr]);
    }
}

// One block: loss = sum(row_loss) / count (0 when every row is ignored).
template <class T, class I>
__global__ void ce_finish_kernel(const acc_t<T>* __restrict__ row_loss, const I* __restrict__ t,
                                 int64_t rows, int64_t ignore_index, T* __restrict__ loss) {
    using A = acc_t<T>;
    double s = 0;
    long long count = 0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
        s += double(row_loss[r]);
        count += int64_t(t[r]) != ignore_index;
    }
    s = block_sum(s);
    count = block_sum(count);
    if (threadIdx.x == 0) loss[0] = from_acc<T>(A(count ? s / double(count) : 0.0));
}

// One block: g = gy / count (0 when every row is ignored), in the accumulation type.
template <class T, class I>
__global__ void ce_scale_kernel(const T* __restrict__ gy, const I* __restrict__ t, int64_t rows,
                                int64_t ignore_index, acc_t<T>* __restrict__ g) {
    long long count = 0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
        count += int64_t(t[r]) != ignore_index;
    count = block_sum(count);
    if (threadIdx.x == 0) g[0] = count ? to_acc(gy[0]) / acc_t<T>(count) : acc_t<T>(0);
}

template <class T, class I, class L>
__global__ void ce_backward_kernel(const acc_t<T>* __restrict__ g, const T* __restrict__ x,
                                   const I* __restrict__ t, const L* __restrict__ lse,
                                   T* __restrict__ dx, int64_t v, int64_t ignore_index) {
    using A = acc_t<T>;
    const int64_t r = blockIdx.x;
    const int64_t tr = int64_t(t[r]);
    T* d = dx + r * v;
    if (tr == ignore_index) {
        for (int64_t j = threadIdx.x; j < v; j += blockDim.x) d[j] = from_acc<T>(A(0));
        return;
    }
    const T* xr = x + r * v;
    const A gr = g[0], l = A(to_acc(lse[r]));
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x)
        d[j] = from_acc<T>(gr * (dmath::exp_(to_acc(xr[j]) - l) - A(j == tr)));
}

// Sum of f(a[i], b[i]) over n elements: partial sums of fixed blocks, then one block.
template <class T, class F>
__global__ void pair_partial_kernel(const T* __restrict__ a, const T* __restrict__ b, int64_t n,
                                    F f, acc_t<T>* __restrict__ part) {
    acc_t<T> s = 0;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        s += f(to_acc(a[i]), to_acc(b[i]));
    s = block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

template <class T>
__global__ void mean_of_parts_kernel(const acc_t<T>* __restrict__ part, int parts, int64_t n,
                                     T* __restrict__ out) {
    double s = 0;
    for (int i = threadIdx.x; i < parts; i += blockDim.x) s += double(part[i]);
    s = block_sum(s);
    if (threadIdx.x == 0) out[0] = from_acc<T>(acc_t<T>(s / double(n)));
}

struct SqDiff {
    template <class A>
    __device__ A operator()(A p, A t) const { return (p - t) * (p - t); }
};
struct Bce {
    template <class A>
    __device__ A operator()(A x, A y) const {
        return fmax(x, A(0)) - x * y + dmath::log1p_(dmath::exp_(-dmath::abs_(x)));
    }
};

// mean over n of f(a, b), as a 0-d tensor of a's dtype on the device.
template <class F>
Tensor pair_mean(const char* op, const Tensor& a, const Tensor& b, F f) {
    const Tensor ac = a.contiguous(), bc = b.contiguous();
    Tensor out = empty_on(Shape{}, a.dtype(), a);
    const int64_t n = a.numel();
    const int parts = int(std::min<int64_t>(1024, std::max<int64_t>(1, (n + 2047) / 2048)));
    dispatch_float(a.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        Tensor part = empty_on(Shape{parts}, acc_dtype<T>(), a);
        pair_partial_kernel<T, F><<<parts, kThreads, 0, stream()>>>(ptr<T>(ac), ptr<T>(bc), n, f,
                                                                   ptr<acc_t<T>>(part));
        mean_of_parts_kernel<T><<<1, kFinalThreads, 0, stream()>>>(ptr<acc_t<T>>(part), parts, n,
                                                                  ptr<T>(out));
    });
    check_launch(op);
    return out;
}

template <class T>
__global__ void mse_grad_kernel(const T* __restrict__ gy, double k, const T* __restrict__ p,
                                const T* __restrict__ t, T* __restrict__ dp, T* __restrict__ dt,
                                int64_t n) {
    using A = acc_t<T>;
    const A g = A(double(to_acc(gy[0])) * k);
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const A d = g * (to_acc(p[i]) - to_acc(t[i]));
        dp[i] = from_acc<T>(d);
        dt[i] = from_acc<T>(-d);
    }
}

template <class T>
__global__ void bce_grad_kernel(const T* __restrict__ gy, double k, const T* __restrict__ x,
                                const T* __restrict__ y, T* __restrict__ dx, T* __restrict__ dy,
                                int64_t n) {
    using A = acc_t<T>;
    const A g = A(double(to_acc(gy[0])) * k);
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const A xi = to_acc(x[i]);
        dx[i] = from_acc<T>(g * (dmath::sigmoid(xi) - to_acc(y[i])));
        dy[i] = from_acc<T>(-g * xi);
    }
}

// The multi-index of element k (row-major) of shape s, as "[i, j]".
std::string position_of(int64_t k, const Shape& s) {
    int64_t idx[kMaxDims] = {};
    for (int d = s.ndim() - 1; d >= 0; --d) {
        idx[d] = k % s[d];
        k /= s[d];
    }
    std::string p = "[";
    for (int d = 0; d < s.ndim(); ++d) p += (d ? ", " : "") + std::to_string(idx[d]);
    return p + "]";
}

// The targets' range, on a host copy; while a CUDA graph is being captured, by a device-side
// check (reported at the next sync, see cuda::check_device_errors).
void check_targets(const Tensor& targets, int64_t v, int64_t ignore_index) {
    if (capturing()) {
        cuda_detail::check_indices_on_device(
            targets, v, ignore_index, "cross_entropy", "target",
            " and is not ignore_index (" + std::to_string(ignore_index) + ")");
        return;
    }
    const Tensor t = targets.contiguous().to(Device::cpu());
    const int64_t n = t.numel();
    for (int64_t k = 0; k < n; ++k) {
        const int64_t tk = t.dtype() == DType::i32 ? int64_t(t.data<int32_t>()[k])
                                                   : t.data<int64_t>()[k];
        if (tk != ignore_index && (tk < 0 || tk >= v))
            raise("cross_entropy: target {} at position {} of targets {} is outside [0, {}) and "
                  "is not ignore_index ({})",
                  tk, position_of(k, targets.shape()), targets.desc(), v, ignore_index);
    }
}

// Calls f(T{}, I{}, L{}): T the logits' element type, I the targets', L the saved lse's.
template <class F>
void ce_dispatch(DType logits, DType targets, F&& f) {
    dispatch_float(logits, "cross_entropy", [&](auto tf) {
        using T = decltype(tf);
        using L = std::conditional_t<std::is_same_v<T, bf16>, float, T>;
        if (targets == DType::i32)
            f(tf, int32_t{}, L{});
        else
            f(tf, int64_t{}, L{});
    });
}
}  // namespace

CrossEntropyForward cross_entropy_forward_cuda(const Tensor& logits, const Tensor& targets,
                                               int64_t ignore_index) {
    const int64_t v = logits.size(-1), rows = targets.numel();
    check_targets(targets, v, ignore_index);
    const Tensor xc = logits.contiguous(), tc = targets.contiguous();
    const DType lse_dt = logits.dtype() == DType::bf16 ? DType::f32 : logits.dtype();
    CrossEntropyForward r{empty_on(Shape{}, logits.dtype(), logits),
                          empty_on(targets.shape(), lse_dt, logits)};
    ce_dispatch(logits.dtype(), targets.dtype(), [&](auto tf, auto ti, auto tl) {
        using T = decltype(tf);
        using I = decltype(ti);
        using L = decltype(tl);
        Tensor row_loss = empty_on(Shape{std::max<int64_t>(rows, 1)}, acc_dtype<T>(), logits);
        if (rows > 0)
            ce_forward_kernel<T, I, L><<<unsigned(rows), row_threads(v), 0, stream()>>>(
                ptr<T>(xc), ptr<I>(tc), ptr<L>(r.lse), ptr<acc_t<T>>(row_loss), v, ignore_index);
        ce_finish_kernel<T, I><<<1, kFinalThreads, 0, stream()>>>(
            ptr<acc_t<T>>(row_loss), ptr<I>(tc), rows, ignore_index, ptr<T>(r.loss));
    });
    check_launch("cross_entropy");
    return r;
}

Tensor cross_entropy_backward_cuda(const Tensor& gy, const Tensor& logits, const Tensor& targets,
                                   const Tensor& lse, int64_t ignore_index) {
    const int64_t v = logits.size(-1), rows = targets.numel();
    const Tensor xc = logits.contiguous(), tc = targets.contiguous(), gc = gy.contiguous();
    Tensor dx = empty_on(logits.shape(), logits.dtype(), logits);
    if (rows == 0 || v == 0) return dx;
    ce_dispatch(logits.dtype(), targets.dtype(), [&](auto tf, auto ti, auto tl) {
        using T = decltype(tf);
        using I = decltype(ti);
        using L = decltype(tl);
        const DType ldt = dtype_of_elem<L>();
        const Tensor lc = lse.dtype() == ldt ? lse.contiguous() : lse.to(ldt);
        Tensor g = empty_on(Shape{1}, acc_dtype<T>(), logits);
        ce_scale_kernel<T, I><<<1, kFinalThreads, 0, stream()>>>(ptr<T>(gc), ptr<I>(tc), rows,
                                                                ignore_index, ptr<acc_t<T>>(g));
        ce_backward_kernel<T, I, L><<<unsigned(rows), row_threads(v), 0, stream()>>>(
            ptr<acc_t<T>>(g), ptr<T>(xc), ptr<I>(tc), ptr<L>(lc), ptr<T>(dx), v, ignore_index);
    });
    check_launch("cross_entropy");
    return dx;
}

Tensor mse_forward_cuda(const Tensor& pred, const Tensor& target) {
    return pair_mean("mse", pred, target, SqDiff{});
}

std::pair<Tensor, Tensor> mse_backward_cuda(const Tensor& gy, const Tensor& pred,
                                            const Tensor& target) {
    const Tensor pc = pred.contiguous(), tc = target.contiguous(), gc = gy.contiguous();
    Tensor dp = empty_on(pred.shape(), pred.dtype(), pred);
    Tensor dt = empty_on(pred.shape(), pred.dtype(), pred);
    const int64_t n = pred.numel();
    if (n == 0) return {dp, dt};
    dispatch_float(pred.dtype(), "mse", [&](auto tag) {
        using T = decltype(tag);
        mse_grad_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(
            ptr<T>(gc), 2.0 / double(n), ptr<T>(pc), ptr<T>(tc), ptr<T>(dp), ptr<T>(dt), n);
    });
    check_launch("mse");
    return {dp, dt};
}

Tensor bce_with_logits_forward_cuda(const Tensor& logits, const Tensor& targets) {
    return pair_mean("bce_with_logits", logits, targets, Bce{});
}

std::pair<Tensor, Tensor> bce_with_logits_backward_cuda(const Tensor& gy, const Tensor& logits,
                                                        const Tensor& targets) {
    const Tensor xc = logits.contiguous(), yc = targets.contiguous(), gc = gy.contiguous();
    Tensor dx = empty_on(logits.shape(), logits.dtype(), logits);
    Tensor dy = empty_on(logits.shape(), logits.dtype(), logits);
    const int64_t n = logits.numel();
    if (n == 0) return {dx, dy};
    dispatch_float(logits.dtype(), "bce_with_logits", [&](auto tag) {
        using T = decltype(tag);
        bce_grad_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(
            ptr<T>(gc), 1.0 / double(n), ptr<T>(xc), ptr<T>(yc), ptr<T>(dx), ptr<T>(dy), n);
    });
    check_launch("bce_with_logits");
    return {dx, dy};
}

}  // namespace goose::ops
