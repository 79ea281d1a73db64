// CUDA embedding and token_shift. The embedding gathers rows (one thread per element); its
// backward sorts (id, position) pairs with CUB's stable radix sort, then one block per run of
// equal ids adds that id's gradient rows in position order (deterministic, no atomics) into
// its row of dweight. Ids are checked on a host copy, or on the device while a CUDA graph is
// captured; token_shift is a shifted copy.
#include "ops/cuda/ops_util.cuh"  // first (see there)

#include <cub/device/device_radix_sort.cuh>

#include "core/cuda/device_check.h"
#include "ops/cuda/cuda_ops.h"

namespace goose::ops {

using namespace cuda_ops;

namespace {

template <class T, class I>
__global__ void gather_kernel(const T* __restrict__ w, const I* __restrict__ ids,
                              T* __restrict__ y, int64_t n, int64_t c, int64_t vocab) {
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n * c;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e / c, j = e - i * c;
        const int64_t id = int64_t(ids[i]);
        // ids outside [0, V) only reach here under graph capture: they read as zeros
        y[e] = id >= 0 && id < vocab ? w[id * c + j] : from_acc<T>(acc_t<T>(0));
    }
}

template <class I>
__global__ void keys_kernel(const I* __restrict__ ids, int32_t* __restrict__ keys,
                            int32_t* __restrict__ pos, int64_t n, int64_t vocab) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t id = int64_t(ids[i]);
        keys[i] = id >= 0 && id < vocab ? int32_t(id) : int32_t(vocab);  // vocab: dropped
        pos[i] = int32_t(i);
    }
}

// Block p handles the run of equal sorted keys that starts at p (other blocks exit).
template <class T>
__global__ void segment_sum_kernel(const T* __restrict__ g, const int32_t* __restrict__ keys,
                                   const int32_t* __restrict__ pos, T* __restrict__ dw,
                                   int64_t n, int64_t c, int64_t vocab) {
    using A = acc_t<T>;
    const int64_t p = blockIdx.x;
    const int32_t key = keys[p];
    if ((p > 0 && keys[p - 1] == key) || key >= vocab) return;
    int64_t end = p + 1;
    while (end < n && keys[end] == key) ++end;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
        A s = 0;
        for (int64_t q = p; q < end; ++q) s += to_acc(g[int64_t(pos[q]) * c + j]);
        dw[int64_t(key) * c + j] = from_acc<T>(s);
    }
}

template <class T>
__global__ void shift_kernel(const T* __restrict__ x, const T* __restrict__ prev,
                             T* __restrict__ y, int64_t B, int64_t T_len, int64_t c) {
    const int64_t n = B * T_len * c;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t j = e % c, t = e / c % T_len, b = e / (c * T_len);
        y[e] = t > 0 ? x[e - c] : (prev ? prev[b * c + j] : from_acc<T>(acc_t<T>(0)));
    }
}

template <class T>
__global__ void unshift_kernel(const T* __restrict__ gy, T* __restrict__ dx,
                               T* __restrict__ dprev, int64_t B, int64_t T_len, int64_t c) {
    const int64_t n = B * T_len * c;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t j = e % c, t = e / c % T_len, b = e / (c * T_len);
        dx[e] = t + 1 < T_len ? gy[e + c] : from_acc<T>(acc_t<T>(0));
        if (dprev && t == 0) dprev[b * c + j] = gy[e];
    }
}

// The ids' range, on a host copy; while a CUDA graph is being captured, by a device-side check
// (reported at the next sync, see cuda::check_device_errors) when on_device, else not at all.
void check_ids(const Tensor& ids, int64_t vocab, bool on_device) {
    if (capturing()) {
        if (on_device)
            cuda_detail::check_indices_on_device(ids, vocab, std::nullopt, "embedding", "id",
                                                 " (V = " + std::to_string(vocab) + ")");
        return;
    }
    const Tensor h = ids.contiguous().to(Device::cpu());
    for (int64_t k = 0; k < h.numel(); ++k) {
        const int64_t id = h.dtype() == DType::i32 ? int64_t(h.data<int32_t>()[k])
                                                   : h.data<int64_t>()[k];
        if (id < 0 || id >= vocab) {
            const Shape& s = ids.shape();
            int64_t idx[kMaxDims] = {};
            int64_t rem = k;
            for (int d = s.ndim() - 1; d >= 0; --d) {
                idx[d] = rem % s[d];
                rem /= s[d];
            }
            Shape at;
            for (int d = 0; d < s.ndim(); ++d) at.push_back(idx[d]);
            raise("embedding: id {} at position {} of ids {} is outside [0, {}) (V = {})", id,
                  at.str(), ids.desc(), vocab, vocab);
        }
    }
}

template <class F>
void with_ids(DType t, F&& f) {
    if (t == DType::i32)
        f(int32_t{});
    else
        f(int64_t{});
}
}  // namespace

Tensor embedding_forward_cuda(const Tensor& weight, const Tensor& ids) {
    const int64_t c = weight.size(1), n = ids.numel(), vocab = weight.size(0);
    check_ids(ids, vocab, /*on_device=*/true);
    Shape out = ids.shape();
    out.push_back(c);
    Tensor y = empty_on(out, weight.dtype(), weight);
    if (n == 0 || c == 0) return y;
    const Tensor w = weight.contiguous(), id = ids.contiguous();
    dispatch_float(weight.dtype(), "embedding", [&](auto tag) {
        using T = decltype(tag);
        with_ids(id.dtype(), [&](auto it) {
            using I = decltype(it);
            gather_kernel<T, I><<<grid_for(n * c), kThreads, 0, stream()>>>(
                ptr<T>(w), ptr<I>(id), ptr<T>(y), n, c, vocab);
        });
    });
    check_launch("embedding");
    return y;
}

Tensor embedding_backward_cuda(const Tensor& gy, const Tensor& ids, int64_t vocab) {
    const int64_t c = gy.size(-1), n = ids.numel();
    if (vocab >= (int64_t(1) << 31) - 1 || n >= (int64_t(1) << 31))
        raise("embedding: the CUDA backward needs V and the number of ids below 2^31 (V = {}, "
              "ids {})", vocab, ids.desc());
    check_ids(ids, vocab, /*on_device=*/false);  // the forward checked them
    Tensor dw = zeros_on(Shape{vocab, c}, gy.dtype(), gy);
    if (n == 0 || c == 0) return dw;
    const Tensor g = gy.contiguous(), id = ids.contiguous();
    Tensor keys = empty_on(Shape{n}, DType::i32, gy), pos = empty_on(Shape{n}, DType::i32, gy);
    Tensor skeys = empty_on(Shape{n}, DType::i32, gy), spos = empty_on(Shape{n}, DType::i32, gy);
    with_ids(id.dtype(), [&](auto it) {
        using I = decltype(it);
        keys_kernel<I><<<grid_for(n), kThreads, 0, stream()>>>(ptr<I>(id), ptr<int32_t>(keys),
                                                               ptr<int32_t>(pos), n, vocab);
    });
    check_launch("embedding");
    int end_bit = 1;
    while (end_bit < 31 && (int64_t(1) << end_bit) <= vocab) ++end_bit;
    size_t temp_bytes = 0;
    check_cuda(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, ptr<int32_t>(keys),
                                               ptr<int32_t>(skeys), ptr<int32_t>(pos),
                                               ptr<int32_t>(spos), int(n), 0, end_bit, stream()),
               "embedding: radix sort");
    Tensor temp = empty_on(Shape{int64_t(temp_bytes) + 1}, DType::u8, gy);
    check_cuda(cub::DeviceRadixSort::SortPairs(temp.raw_data(), temp_bytes, ptr<int32_t>(keys),
                                               ptr<int32_t>(skeys), ptr<int32_t>(pos),
                                               ptr<int32_t>(spos), int(n), 0, end_bit, stream()),
               "embedding: radix sort");
    dispatch_float(gy.dtype(), "embedding", [&](auto tag) {
        using T = decltype(tag);
        segment_sum_kernel<T><<<unsigned(n), row_threads(c), 0, stream()>>>(
            ptr<T>(g), ptr<int32_t>(skeys), ptr<int32_t>(spos), ptr<T>(dw), n, c, vocab);
    });
    check_launch("embedding");
    return dw;
}

Tensor token_shift_forward_cuda(const Tensor& x, const Tensor& prev) {
    Tensor y = empty_on(x.shape(), x.dtype(), x);
    if (x.numel() == 0) return y;
    const Tensor xc = x.contiguous();
    const Tensor pc = prev.defined() ? prev.contiguous() : Tensor();
    dispatch_float(x.dtype(), "token_shift", [&](auto tag) {
        using T = decltype(tag);
        shift_kernel<T><<<grid_for(x.numel()), kThreads, 0, stream()>>>(
            ptr<T>(xc), ptr_or_null<T>(pc), ptr<T>(y), x.size(0), x.size(1), x.size(2));
    });
    check_launch("token_shift");
    return y;
}

TokenShiftGrads token_shift_backward_cuda(const Tensor& gy, bool want_prev) {
    const int64_t B = gy.size(0), T_len = gy.size(1), c = gy.size(2);
    TokenShiftGrads g;
    g.x = empty_on(gy.shape(), gy.dtype(), gy);
    if (want_prev) g.prev = T_len > 0 ? empty_on(Shape{B, c}, gy.dtype(), gy)
                                      : zeros_on(Shape{B, c}, gy.dtype(), gy);
    if (gy.numel() == 0) return g;
    const Tensor gc = gy.contiguous();
    dispatch_float(gy.dtype(), "token_shift", [&](auto tag) {
        using T = decltype(tag);
        unshift_kernel<T><<<grid_for(gy.numel()), kThreads, 0, stream()>>>(
            ptr<T>(gc), ptr<T>(g.x), want_prev ? ptr<T>(g.prev) : nullptr, B, T_len, c);
    });
    check_launch("token_shift");
    return g;
}

}  // namespace goose::ops
