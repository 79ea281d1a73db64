// Helpers shared by the CUDA op kernels (src/ops/cuda/*.cu): the accumulation type of each
// element type (f32 for f32 and bf16, f64 for f64), element loads and stores in it, warp and
// block sums, launch sizes, dtype dispatch, broadcast plans, and the host-side reductions that
// several families reuse (sum_oai, sum_to_shape_as).
#pragma once
// Include this first in every .cu file: fmt 9 (via goose/core/error.h) marks some functions
// constexpr that call non-constexpr ones once __NVCC__ disables FMT_USE_CONSTEXPR, which GCC
// rejects in C++20; turning it on keeps them consistent. Format strings in .cu files are
// checked at run time (raise below), since nvcc cannot evaluate fmt's consteval checks.
#ifndef FMT_USE_CONSTEXPR
#define FMT_USE_CONSTEXPR 1
#endif
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "goose/core/cuda.h"
#include "goose/core/error.h"
#include "goose/core/tensor.h"
#include "ops/broadcast_plan.h"

namespace goose::ops::cuda_ops {

using bf16 = __nv_bfloat16;

// ---- element types ----
template <class T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };
template <class T> using acc_t = typename AccOf<T>::type;

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ uint8_t to_acc(uint8_t v) { return v; }

template <class T> __device__ __forceinline__ T from_acc(float v);
template <> __device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_acc<bf16>(float v) { return __float2bfloat16(v); }
template <class T> __device__ __forceinline__ T from_acc(double v);
template <> __device__ __forceinline__ double from_acc<double>(double v) { return v; }
template <> __device__ __forceinline__ float from_acc<float>(double v) { return float(v); }
template <> __device__ __forceinline__ bf16 from_acc<bf16>(double v) {
    return __float2bfloat16(float(v));
}

// goose::fail for .cu files: nvcc cannot evaluate fmt's compile-time format checks.
template <class... Args>
[[noreturn]] void raise(const char* f, Args&&... args) {
    throw Error(fmt::format(fmt::runtime(f), std::forward<Args>(args)...));
}

template <class T> DType dtype_of_elem();
template <> inline DType dtype_of_elem<float>() { return DType::f32; }
template <> inline DType dtype_of_elem<double>() { return DType::f64; }
template <> inline DType dtype_of_elem<bf16>() { return DType::bf16; }
template <class T> DType acc_dtype() { return dtype_of_elem<acc_t<T>>(); }

// Calls f(T{}) for the float dtype t (f32, f64, bf16).
template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
    switch (t) {
        case DType::f32: f(float{}); return;
        case DType::f64: f(double{}); return;
        case DType::bf16: f(bf16{}); return;
        default: raise("{}: the CUDA backend has no kernel for dtype {}", op, dtype_name(t));
    }
}

// ---- tensors in the glue ----
template <class T>
T* ptr(const Tensor& t) {
    return static_cast<T*>(t.raw_data());
}
template <class T>
const T* ptr_or_null(const Tensor& t) {
    return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}

inline cudaStream_t stream() { return static_cast<cudaStream_t>(goose::cuda::current_stream()); }

inline void check_cuda(cudaError_t e, const char* what) {
    if (e != cudaSuccess) raise("{}: CUDA error: {}", what, cudaGetErrorString(e));
}
// After a launch: a launch error (bad configuration, no device) names the op.
inline void check_launch(const char* op) { check_cuda(cudaGetLastError(), op); }

inline Tensor empty_on(const Shape& s, DType t, const Tensor& like) {
    return Tensor::empty(s, t, like.device());
}
inline Tensor zeros_on(const Shape& s, DType t, const Tensor& like) {
    Tensor z = Tensor::empty(s, t, like.device());
    if (z.nbytes()) check_cuda(cudaMemsetAsync(z.raw_data(), 0, z.nbytes(), stream()), "zeros");
    return z;
}

// Whether the current stream is being captured into a CUDA graph (host syncs are illegal).
inline bool capturing() {
    cudaStreamCaptureStatus s = cudaStreamCaptureStatusNone;
    check_cuda(cudaStreamIsCapturing(stream(), &s), "cudaStreamIsCapturing");
    return s != cudaStreamCaptureStatusNone;
}

// ---- launch sizes ----
inline constexpr int kThreads = 256;
inline unsigned grid_for(int64_t n, int threads = kThreads) {
    const int64_t b = (n + threads - 1) / threads;
    return static_cast<unsigned>(b < 1 ? 1 : (b > 65536 * 8 ? 65536 * 8 : b));
}
// Threads for one block per row of n elements: a power of two in [32, 512].
inline int row_threads(int64_t n) {
    int t = 32;
    while (t < 512 && t < n) t *= 2;
    return t > 256 && n < 2048 ? 256 : t;
}

// ---- reductions in a block ----
template <class A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <class A>
__device__ __forceinline__ A warp_max(A v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The sum of v over the block (blockDim.x a multiple of 32), returned to every thread.
template <class A>
__device__ A block_sum(A v) {
    __shared__ A sh[32];
    v = warp_sum(v);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();  // a previous call's readers are done with sh
    if (lane == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        A r = lane < nw ? sh[lane] : A(0);
        r = warp_sum(r);
        if (lane == 0) sh[0] = r;
    }
    __syncthreads();
    return sh[0];
}

// Max over the block; NaN propagates (fmax would drop it, so NaN is tracked separately).
template <class A>
__device__ A block_max(A v) {
    __shared__ A sh[32];
    __shared__ int nan_seen;
    if (threadIdx.x == 0) nan_seen = 0;
    __syncthreads();
    if (v != v) nan_seen = 1;
    v = warp_max(v);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        A r = lane < nw ? sh[lane] : sh[0];
        r = warp_max(r);
        __syncwarp();  // every lane has read sh[0] before lane 0 overwrites it
        if (lane == 0) sh[0] = r;
    }
    __syncthreads();
    const A r = nan_seen ? A(NAN) : sh[0];
    __syncthreads();
    return r;
}

// ---- one warp per row ----
// Rows of up to kWarpRowMax elements run one warp per row with the row in registers (VPL
// values per lane: element j = lane + 32 k), several rows per block: one read of the input
// and warp shuffles only. Longer rows use one block per row.
inline constexpr int64_t kWarpRowMax = 1024;
inline constexpr int kWarpRowsPerBlock = 8;

// Calls f(std::integral_constant<int, VPL>{}) with VPL the power of two >= ceil(n / 32).
template <class F>
void with_vpl(int64_t n, F&& f) {
    if (n <= 32) f(std::integral_constant<int, 1>{});
    else if (n <= 64) f(std::integral_constant<int, 2>{});
    else if (n <= 128) f(std::integral_constant<int, 4>{});
    else if (n <= 256) f(std::integral_constant<int, 8>{});
    else if (n <= 512) f(std::integral_constant<int, 16>{});
    else f(std::integral_constant<int, 32>{});
}
inline unsigned warp_row_blocks(int64_t rows) {
    return unsigned((rows + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock);
}
// The row of this warp (may be >= rows: the warp then has nothing to do).
__device__ __forceinline__ int64_t warp_row() {
    return int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
}

// ---- broadcasting ----
// The plan (ops/broadcast_plan.h): the output's merged dims, stride 0 where an operand is
// broadcast.
using broadcast::make_plan;
using broadcast::Plan;

// Offsets of output element i in each operand.
template <int K, class Idx>
__device__ __forceinline__ void plan_offsets(const Plan<K>& p, Idx i, Idx (&off)[K]) {
#pragma unroll
    for (int k = 0; k < K; ++k) off[k] = 0;
    if (p.ndim == 1) {
#pragma unroll
        for (int k = 0; k < K; ++k) off[k] = i * Idx(p.stride[k][0]);
        return;
    }
    Idx rem = i;
#pragma unroll
    for (int d = kMaxDims - 1; d >= 0; --d) {
        if (d >= p.ndim) continue;
        const Idx s = Idx(p.size[d]);
        const Idx q = rem / s;
        const Idx id = rem - q * s;
        rem = q;
#pragma unroll
        for (int k = 0; k < K; ++k) off[k] += id * Idx(p.stride[k][d]);
    }
}

// out[i] = f(in0[..], in1[..], in2[..]) over the output (packed, n elements), each operand read
// at its broadcast position as its accumulation type; f returns the output's accumulation type.
template <class Idx, class TO, class F, class T0, class T1, class T2, int K>
__global__ void bmap_kernel(TO* __restrict__ out, Idx n, Plan<K> p, F f, const T0* __restrict__ a0,
                            const T1* __restrict__ a1, const T2* __restrict__ a2) {
    for (Idx i = Idx(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += Idx(gridDim.x) * blockDim.x) {
        Idx off[K];
        plan_offsets<K, Idx>(p, i, off);
        if constexpr (K == 1) out[i] = from_acc<TO>(f(to_acc(a0[off[0]])));
        if constexpr (K == 2) out[i] = from_acc<TO>(f(to_acc(a0[off[0]]), to_acc(a1[off[1]])));
        if constexpr (K == 3)
            out[i] = from_acc<TO>(
                f(to_acc(a0[off[0]]), to_acc(a1[off[1]]), to_acc(a2[off[2]])));
    }
}

// W elements of T in one aligned load or store.
template <int W, class T>
struct alignas(sizeof(T) * W) VecOf {
    T v[W];
};

// W-wide operand load at off: a vector when the operand runs along the inner dim (stride 1),
// one element repeated when it is broadcast along it (stride 0).
template <int W, class T, class Idx>
__device__ __forceinline__ VecOf<W, T> load_vec(const T* a, Idx off, bool along) {
    VecOf<W, T> x;
    if (along) {
        x = *reinterpret_cast<const VecOf<W, T>*>(a + off);
    } else {
        const T s = a[off];
#pragma unroll
        for (int w = 0; w < W; ++w) x.v[w] = s;
    }
    return x;
}

// bmap_kernel with W consecutive output elements per thread step (the inner dim's size is a
// multiple of W, and every operand that runs along it is aligned to its W-element vector):
// one index computation and one wide load per operand for W elements.
template <int W, class Idx, class TO, class F, class T0, class T1, class T2, int K>
__global__ void bmap_vec_kernel(TO* __restrict__ out, Idx nvec, Plan<K> p, F f,
                                const T0* __restrict__ a0, const T1* __restrict__ a1,
                                const T2* __restrict__ a2, unsigned along) {
    // along: bit k set when operand k runs along the inner dim. (Computed on the host: reading
    // p.stride[k][p.ndim - 1] here would index the parameter struct at run time and copy it to
    // the stack of every thread.)
    const bool s0 = along & 1u, s1 = along & 2u, s2 = along & 4u;
    for (Idx v = Idx(blockIdx.x) * blockDim.x + threadIdx.x; v < nvec;
         v += Idx(gridDim.x) * blockDim.x) {
        Idx off[K];
        plan_offsets<K, Idx>(p, v * Idx(W), off);
        VecOf<W, TO> o;
        const VecOf<W, T0> x0 = load_vec<W>(a0, off[0], s0);
        if constexpr (K == 1) {
#pragma unroll
            for (int w = 0; w < W; ++w) o.v[w] = from_acc<TO>(f(to_acc(x0.v[w])));
        } else if constexpr (K == 2) {
            const VecOf<W, T1> x1 = load_vec<W>(a1, off[1], s1);
#pragma unroll
            for (int w = 0; w < W; ++w) o.v[w] = from_acc<TO>(f(to_acc(x0.v[w]), to_acc(x1.v[w])));
        } else {
            const VecOf<W, T1> x1 = load_vec<W>(a1, off[1], s1);
            const VecOf<W, T2> x2 = load_vec<W>(a2, off[2], s2);
#pragma unroll
            for (int w = 0; w < W; ++w)
                o.v[w] = from_acc<TO>(f(to_acc(x0.v[w]), to_acc(x1.v[w]), to_acc(x2.v[w])));
        }
        *reinterpret_cast<VecOf<W, TO>*>(out + v * Idx(W)) = o;
    }
}

inline bool aligned_to(const void* p, size_t bytes) {
    return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// Host side of bmap_kernel: packed operands (K = 1..3 of them; unused ones null). Takes the
// W-wide kernel (16-byte output vectors) when the shapes and alignments allow.
template <class TO, class F, class T0, class T1 = T0, class T2 = T0, size_t KS>
void bmap(TO* out, const Shape& out_shape, const std::array<Shape, KS>& shapes, F f,
          const T0* a0, const T1* a1 = nullptr, const T2* a2 = nullptr) {
    constexpr int K = int(KS);
    const int64_t n = out_shape.numel();
    if (n == 0) return;
    const Plan<K> p = make_plan<K>(out_shape, shapes);
    constexpr int W = int(16 / sizeof(TO));
    const int last = p.ndim - 1;
    bool vec = W > 1 && p.size[last] % W == 0 && aligned_to(out, 16);
    const void* ptrs[3] = {a0, a1, a2};
    const size_t sizes[3] = {sizeof(T0), sizeof(T1), sizeof(T2)};
    for (int k = 0; k < K && vec; ++k)
        vec = p.stride[k][last] == 0 || aligned_to(ptrs[k], sizes[k] * W);
    if (vec && n < (int64_t(1) << 31)) {
        const int64_t nvec = n / W;
        unsigned along = 0;
        for (int k = 0; k < K; ++k) along |= p.stride[k][last] != 0 ? 1u << k : 0u;
        bmap_vec_kernel<W, uint32_t, TO, F, T0, T1, T2, K>
            <<<grid_for(nvec), kThreads, 0, stream()>>>(out, uint32_t(nvec), p, f, a0, a1, a2,
                                                        along);
    } else if (n < (int64_t(1) << 31)) {
        bmap_kernel<uint32_t, TO, F, T0, T1, T2, K>
            <<<grid_for(n), kThreads, 0, stream()>>>(out, uint32_t(n), p, f, a0, a1, a2);
    } else {
        bmap_kernel<int64_t, TO, F, T0, T1, T2, K>
            <<<grid_for(n), kThreads, 0, stream()>>>(out, n, p, f, a0, a1, a2);
    }
    check_launch("broadcast map");
}

// ---- reductions reused across families (defined in reduce.cu) ----
// out[o, i] = scale * sum_a in[o, a, i]: in packed (O, A, I) of dtype f32, f64 or bf16, out
// packed (O, I) of out's dtype; sums in the accumulation type, in a fixed order (deterministic).
void sum_oai(const Tensor& in, const Tensor& out, int64_t O, int64_t A, int64_t I, double scale);
// g (packed, any float dtype) summed over the axes broadcasting expanded from `shape`, as a
// new packed tensor of `shape` and `dtype`.
Tensor sum_to_shape_as(const Tensor& g, const Shape& shape, DType dtype);

}  // namespace goose::ops::cuda_ops
