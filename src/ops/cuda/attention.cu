// CUDA causal attention, written for correctness (not speed): one block per query row keeps
// the row's scores in shared memory (materialised softmax, f32 math), and the backward runs
// one block per query row (D = <gy, y>, dq) and one per key row (dk, dv), each recomputing
// the probabilities from the saved log-sum-exp. For bf16 inputs the log-sum-exp is f32.
#include "ops/cuda/ops_util.cuh"  // first (see there)

#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/math.cuh"

namespace goose::ops {

using namespace cuda_ops;

namespace {
constexpr int kAttnThreads = 128;
constexpr int64_t kMaxSharedBytes = 48 * 1024;
// Slack after each dynamic shared-memory layout: compute-sanitizer saw an 8-byte read of the
// score array at its last element (the loop's loads widened in pairs), 4 bytes past a layout
// of exactly 2N + T floats. For the same reason the rows dot_row reads (length N, odd N read one
// past the end) come after the score arrays: the extra element is the pad or a row no thread
// writes meanwhile, never a score another thread is writing (compute-sanitizer's racecheck
// reported that race when the q row came first).
constexpr int64_t kSharedPad = 16;

template <class T>
using lse_t = std::conditional_t<std::is_same_v<T, bf16>, float, T>;

template <class A, class T>
__device__ __forceinline__ A dot_row(const A* qs, const T* kr, int64_t n) {
    A s = 0;
    for (int64_t i = 0; i < n; ++i) s += qs[i] * to_acc(kr[i]);
    return s;
}

// Block = (bh, t). Shared: the scores / probabilities of keys 0..t (T_len), then the q row (N).
template <class T>
__global__ void attn_fwd_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                const T* __restrict__ v, T* __restrict__ y,
                                lse_t<T>* __restrict__ lse, int64_t T_len, int64_t N,
                                double scale) {
    using A = acc_t<T>;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    A* sc = reinterpret_cast<A*>(smem_raw);
    A* qs = sc + T_len;
    const int64_t bh = blockIdx.x / T_len, t = blockIdx.x % T_len;
    const int64_t base = bh * T_len * N;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) qs[i] = to_acc(q[base + t * N + i]);
    __syncthreads();
    A m = -INFINITY;
    for (int64_t s = threadIdx.x; s <= t; s += blockDim.x) {
        sc[s] = A(scale) * dot_row(qs, k + base + s * N, N);
        m = fmax(m, sc[s]);
    }
    m = block_max(m);
    A sum = 0;
    for (int64_t s = threadIdx.x; s <= t; s += blockDim.x) {
        sc[s] = dmath::exp_(sc[s] - m);
        sum += sc[s];
    }
    sum = block_sum(sum);  // also orders the writes to sc before the reads below
    const A inv = A(1) / sum;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
        A acc = 0;
        for (int64_t s = 0; s <= t; ++s) acc += sc[s] * to_acc(v[base + s * N + i]);
        y[base + t * N + i] = from_acc<T>(acc * inv);
    }
    if (threadIdx.x == 0) lse[bh * T_len + t] = lse_t<T>(m + dmath::log_(sum));
}

// Block = (bh, t): D[t] = <gy[t], y[t]>, ds[t, s] for s <= t, dq[t] = scale sum_s ds k[s].
template <class T>
__global__ void attn_bwd_q_kernel(const T* __restrict__ gy, const T* __restrict__ q,
                                  const T* __restrict__ k, const T* __restrict__ v,
                                  const T* __restrict__ y, const lse_t<T>* __restrict__ lse,
                                  acc_t<T>* __restrict__ D, T* __restrict__ dq, int64_t T_len,
                                  int64_t N, double scale) {
    using A = acc_t<T>;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    A* ds = reinterpret_cast<A*>(smem_raw);  // T_len, then the q and gy rows
    A* qs = ds + T_len;
    A* gs = qs + N;
    const int64_t bh = blockIdx.x / T_len, t = blockIdx.x % T_len;
    const int64_t base = bh * T_len * N, row = base + t * N;
    A d = 0;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
        qs[i] = to_acc(q[row + i]);
        gs[i] = to_acc(gy[row + i]);
        d += gs[i] * to_acc(y[row + i]);
    }
    d = block_sum(d);  // also orders qs and gs
    const A l = A(lse[bh * T_len + t]);
    for (int64_t s = threadIdx.x; s <= t; s += blockDim.x) {
        const A p = dmath::exp_(A(scale) * dot_row(qs, k + base + s * N, N) - l);
        const A dp = dot_row(gs, v + base + s * N, N);
        ds[s] = p * (dp - d);
    }
    __syncthreads();
    if (threadIdx.x == 0) D[bh * T_len + t] = d;
    if (!dq) return;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
        A acc = 0;
        for (int64_t s = 0; s <= t; ++s) acc += ds[s] * to_acc(k[base + s * N + i]);
        dq[row + i] = from_acc<T>(A(scale) * acc);
    }
}

// Block = (bh, s): dv[s] = sum_{t >= s} p gy[t], dk[s] = scale sum_{t >= s} ds q[t].
template <class T>
__global__ void attn_bwd_kv_kernel(const T* __restrict__ gy, const T* __restrict__ q,
                                   const T* __restrict__ k, const T* __restrict__ v,
                                   const lse_t<T>* __restrict__ lse,
                                   const acc_t<T>* __restrict__ D, T* __restrict__ dk,
                                   T* __restrict__ dv, int64_t T_len, int64_t N, double scale) {
    using A = acc_t<T>;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    A* ps = reinterpret_cast<A*>(smem_raw);  // T_len each, then the k and v rows
    A* ds = ps + T_len;
    A* ks = ds + T_len;
    A* vs = ks + N;
    const int64_t bh = blockIdx.x / T_len, s = blockIdx.x % T_len;
    const int64_t base = bh * T_len * N, row = base + s * N;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
        ks[i] = to_acc(k[row + i]);
        vs[i] = to_acc(v[row + i]);
    }
    __syncthreads();
    for (int64_t t = s + threadIdx.x; t < T_len; t += blockDim.x) {
        const A p = dmath::exp_(A(scale) * dot_row(ks, q + base + t * N, N) -
                                A(lse[bh * T_len + t]));
        const A dp = dot_row(vs, gy + base + t * N, N);
        ps[t - s] = p;
        ds[t - s] = p * (dp - D[bh * T_len + t]);
    }
    __syncthreads();
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
        A av = 0, ak = 0;
        for (int64_t t = s; t < T_len; ++t) {
            av += ps[t - s] * to_acc(gy[base + t * N + i]);
            ak += ds[t - s] * to_acc(q[base + t * N + i]);
        }
        if (dv) dv[row + i] = from_acc<T>(av);
        if (dk) dk[row + i] = from_acc<T>(A(scale) * ak);
    }
}

void check_shared(int64_t bytes, const Tensor& q) {
    if (bytes > kMaxSharedBytes)
        raise("attention: the CUDA kernel keeps a row of scores in shared memory and supports "
              "T up to about 5000 (f32); got q {}",
              q.desc());
}
}  // namespace

AttentionOut attention_forward_cuda(const Tensor& q, const Tensor& k, const Tensor& v,
                                    double scale) {
    const int64_t B = q.size(0), H = q.size(1), T_len = q.size(2), N = q.size(3);
    const Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
    const DType lse_dt = q.dtype() == DType::bf16 ? DType::f32 : q.dtype();
    AttentionOut r{empty_on(q.shape(), q.dtype(), q), empty_on(Shape{B, H, T_len}, lse_dt, q)};
    if (q.numel() == 0 || B * H * T_len == 0) return r;
    dispatch_float(q.dtype(), "attention", [&](auto tag) {
        using T = decltype(tag);
        using A = acc_t<T>;
        const int64_t bytes = (N + T_len) * int64_t(sizeof(A)) + kSharedPad;
        check_shared(bytes, q);
        attn_fwd_kernel<T><<<unsigned(B * H * T_len), kAttnThreads, size_t(bytes), stream()>>>(
            ptr<T>(qc), ptr<T>(kc), ptr<T>(vc), ptr<T>(r.y), ptr<lse_t<T>>(r.lse), T_len, N,
            scale);
    });
    check_launch("attention");
    return r;
}

AttentionGrads attention_backward_cuda(const Tensor& gy, const Tensor& q, const Tensor& k,
                                       const Tensor& v, const Tensor& y, const Tensor& lse,
                                       double scale, bool need_q, bool need_k, bool need_v) {
    const int64_t B = q.size(0), H = q.size(1), T_len = q.size(2), N = q.size(3);
    const Tensor gc = gy.contiguous(), qc = q.contiguous(), kc = k.contiguous(),
                 vc = v.contiguous(), yc = y.contiguous();
    AttentionGrads g;
    if (need_q) g.q = empty_on(q.shape(), q.dtype(), q);
    if (need_k) g.k = empty_on(q.shape(), q.dtype(), q);
    if (need_v) g.v = empty_on(q.shape(), q.dtype(), q);
    if (q.numel() == 0 || !(need_q || need_k || need_v)) return g;
    dispatch_float(q.dtype(), "attention", [&](auto tag) {
        using T = decltype(tag);
        using A = acc_t<T>;
        using L = lse_t<T>;
        const DType ldt = dtype_of_elem<L>();
        const Tensor lc = lse.dtype() == ldt ? lse.contiguous() : lse.to(ldt);
        Tensor D = empty_on(Shape{B * H * T_len}, acc_dtype<T>(), q);
        const int64_t bytes_q = (2 * N + T_len) * int64_t(sizeof(A)) + kSharedPad;
        const int64_t bytes_kv = (2 * N + 2 * T_len) * int64_t(sizeof(A)) + kSharedPad;
        check_shared(bytes_kv, q);
        attn_bwd_q_kernel<T><<<unsigned(B * H * T_len), kAttnThreads, size_t(bytes_q),
                               stream()>>>(ptr<T>(gc), ptr<T>(qc), ptr<T>(kc), ptr<T>(vc),
                                           ptr<T>(yc), ptr<L>(lc), ptr<A>(D),
                                           need_q ? ptr<T>(g.q) : nullptr, T_len, N, scale);
        if (need_k || need_v)
            attn_bwd_kv_kernel<T><<<unsigned(B * H * T_len), kAttnThreads, size_t(bytes_kv),
                                    stream()>>>(ptr<T>(gc), ptr<T>(qc), ptr<T>(kc), ptr<T>(vc),
                                                ptr<L>(lc), ptr<A>(D),
                                                need_k ? ptr<T>(g.k) : nullptr,
                                                need_v ? ptr<T>(g.v) : nullptr, T_len, N, scale);
    });
    check_launch("attention");
    return g;
}

}  // namespace goose::ops
