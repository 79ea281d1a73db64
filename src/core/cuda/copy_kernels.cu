// Device kernels of core: strided copy (same dtype, or converting as the CPU does through
// double) and strided fill. Grid-stride loops over the flat index; 32-bit index math when the
// index space fits.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstring>

#include "core/cuda/copy_kernels.h"
#include "core/cuda/cuda_check.h"

namespace goose::cuda_detail {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t total) {
    return static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, int64_t(1) << 16));
}

// Offsets (elements) of flat index i in the destination and the source.
template <class I>
__device__ __forceinline__ void offsets(const StridedPlan& p, I i, int64_t& d, int64_t& s) {
    d = 0;
    s = 0;
#pragma unroll
    for (int k = 4; k >= 0; --k) {
        if (k >= p.nd) continue;
        const I nk = static_cast<I>(p.n[k]);
        const I q = i / nk;
        const I c = i - q * nk;
        i = q;
        d += static_cast<int64_t>(c) * p.ds[k];
        s += static_cast<int64_t>(c) * p.ss[k];
    }
}

__device__ __forceinline__ double load_as_double(const void* base, DType t, int64_t i) {
    switch (t) {
        case DType::f32:
            return static_cast<const float*>(base)[i];
        case DType::f64:
            return static_cast<const double*>(base)[i];
        case DType::bf16: {
            const uint32_t u = static_cast<uint32_t>(static_cast<const uint16_t*>(base)[i]) << 16;
            return __uint_as_float(u);
        }
        case DType::f16: {
            const __half h = __ushort_as_half(static_cast<const uint16_t*>(base)[i]);
            return __half2float(h);
        }
        case DType::i32:
            return static_cast<const int32_t*>(base)[i];
        case DType::i64:
            return static_cast<double>(static_cast<const int64_t*>(base)[i]);
        case DType::u16:
            return static_cast<const uint16_t*>(base)[i];
        case DType::u8:
            return static_cast<const uint8_t*>(base)[i];
    }
    return 0;
}

// bf16 from float: round to nearest even, NaN kept NaN (bit-identical to the CPU's float_to_bf16).
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

__device__ __forceinline__ void store_from_double(void* base, DType t, int64_t i, double v) {
    switch (t) {
        case DType::f32:
            static_cast<float*>(base)[i] = static_cast<float>(v);
            break;
        case DType::f64:
            static_cast<double*>(base)[i] = v;
            break;
        case DType::bf16:
            static_cast<uint16_t*>(base)[i] = f32_to_bf16_bits(static_cast<float>(v));
            break;
        case DType::f16:
            static_cast<uint16_t*>(base)[i] =
                __half_as_ushort(__float2half_rn(static_cast<float>(v)));
            break;
        case DType::i32:
            static_cast<int32_t*>(base)[i] = static_cast<int32_t>(v);
            break;
        case DType::i64:
            static_cast<int64_t*>(base)[i] = static_cast<int64_t>(v);
            break;
        case DType::u16:
            static_cast<uint16_t*>(base)[i] = static_cast<uint16_t>(v);
            break;
        case DType::u8:
            static_cast<uint8_t*>(base)[i] = static_cast<uint8_t>(v);
            break;
    }
}

template <class T, class I>
__global__ void copy_same_kernel(T* __restrict__ dst, const T* __restrict__ src, StridedPlan p,
                                 I total) {
    for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<I>(gridDim.x) * blockDim.x) {
        int64_t d, s;
        offsets(p, i, d, s);
        dst[d] = src[s];
    }
}

template <class I>
__global__ void copy_convert_kernel(void* dst, DType dd, const void* src, DType sd, StridedPlan p,
                                    I total) {
    for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<I>(gridDim.x) * blockDim.x) {
        int64_t d, s;
        offsets(p, i, d, s);
        store_from_double(dst, dd, d, load_as_double(src, sd, s));
    }
}

template <class T, class I>
__global__ void fill_kernel(T* dst, T value, StridedPlan p, I total) {
    for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<I>(gridDim.x) * blockDim.x) {
        int64_t d, s;
        offsets(p, i, d, s);
        dst[d] = value;
    }
}

template <class T, class I>
void launch_same(void* dst, const void* src, const StridedPlan& p, int64_t total, cudaStream_t st) {
    copy_same_kernel<T, I><<<blocks_for(total), kThreads, 0, st>>>(
        static_cast<T*>(dst), static_cast<const T*>(src), p, static_cast<I>(total));
}

template <class I>
void launch_copy(void* dst, DType dd, const void* src, DType sd, const StridedPlan& p,
                 int64_t total, cudaStream_t st) {
    if (dd == sd) {
        switch (dtype_size(dd)) {
            case 1:
                launch_same<uint8_t, I>(dst, src, p, total, st);
                return;
            case 2:
                launch_same<uint16_t, I>(dst, src, p, total, st);
                return;
            case 4:
                launch_same<uint32_t, I>(dst, src, p, total, st);
                return;
            case 8:
                launch_same<uint64_t, I>(dst, src, p, total, st);
                return;
        }
    }
    copy_convert_kernel<I>
        <<<blocks_for(total), kThreads, 0, st>>>(dst, dd, src, sd, p, static_cast<I>(total));
}

template <class T, class I>
void launch_fill_typed(void* dst, const void* bits, const StridedPlan& p, int64_t total,
                       cudaStream_t st) {
    T v;
    std::memcpy(&v, bits, sizeof(T));
    fill_kernel<T, I>
        <<<blocks_for(total), kThreads, 0, st>>>(static_cast<T*>(dst), v, p, static_cast<I>(total));
}

template <class I>
void launch_fill_sized(void* dst, size_t size, const void* bits, const StridedPlan& p,
                       int64_t total, cudaStream_t st) {
    switch (size) {
        case 1:
            launch_fill_typed<uint8_t, I>(dst, bits, p, total, st);
            return;
        case 2:
            launch_fill_typed<uint16_t, I>(dst, bits, p, total, st);
            return;
        case 4:
            launch_fill_typed<uint32_t, I>(dst, bits, p, total, st);
            return;
        case 8:
            launch_fill_typed<uint64_t, I>(dst, bits, p, total, st);
            return;
    }
}

constexpr int64_t kMax32 = int64_t(1) << 31;

// ---- fast paths of same-dtype copies ---------------------------------------------------------

// Outer dims of a plan (every dim but the one or two the kernel walks itself), for per-block
// offsets.
struct Outer {
    int nd = 0;
    int64_t n[5] = {};
    int64_t ds[5] = {};  // bytes
    int64_t ss[5] = {};  // bytes
    int64_t count = 1;
};

__device__ __forceinline__ void outer_offsets(const Outer& o, int64_t r, int64_t& d, int64_t& s) {
    d = 0;
    s = 0;
    for (int k = o.nd - 1; k >= 0; --k) {
        const int64_t c = r % o.n[k];
        r /= o.n[k];
        d += c * o.ds[k];
        s += c * o.ss[k];
    }
}

// Rows contiguous on both sides: one block per row (grid-stride over rows), `len` units U each.
template <class U>
__global__ void copy_rows_kernel(char* dst, const char* src, Outer o, int64_t len) {
    for (int64_t r = blockIdx.x; r < o.count; r += gridDim.x) {
        int64_t d, s;
        outer_offsets(o, r, d, s);
        const U* sp = reinterpret_cast<const U*>(src + s);
        U* dp = reinterpret_cast<U*>(dst + d);
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) dp[j] = sp[j];
    }
}

// Batched 2-D transpose through a shared tile: the source is contiguous along k, the
// destination along j; both sides read and write whole 32-element segments.
constexpr int kTile = 32;
constexpr int kTileRows = 8;

template <class T>
__global__ void transpose_kernel(T* __restrict__ dst, const T* __restrict__ src, Outer o,
                                 int64_t nk, int64_t nj, int64_t dk, int64_t sj) {
    __shared__ T tile[kTile][kTile + 1];
    const int64_t k0 = int64_t(blockIdx.y) * kTile, j0 = int64_t(blockIdx.x) * kTile;
    for (int64_t r = blockIdx.z; r < o.count; r += gridDim.z) {
        int64_t d0, s0;
        outer_offsets(o, r, d0, s0);  // in elements here
        for (int y = threadIdx.y; y < kTile; y += kTileRows) {
            const int64_t k = k0 + threadIdx.x, j = j0 + y;
            if (k < nk && j < nj) tile[y][threadIdx.x] = src[s0 + k + j * sj];
        }
        __syncthreads();
        for (int y = threadIdx.y; y < kTile; y += kTileRows) {
            const int64_t k = k0 + y, j = j0 + threadIdx.x;
            if (k < nk && j < nj) dst[d0 + k * dk + j] = tile[threadIdx.x][y];
        }
        __syncthreads();
    }
}

template <class T>
void launch_transpose(void* dst, const void* src, const Outer& o, int64_t nk, int64_t nj,
                      int64_t dk, int64_t sj, cudaStream_t st) {
    const dim3 grid(static_cast<unsigned>((nj + kTile - 1) / kTile),
                    static_cast<unsigned>((nk + kTile - 1) / kTile),
                    static_cast<unsigned>(std::min<int64_t>(o.count, 65535)));
    transpose_kernel<T><<<grid, dim3(kTile, kTileRows), 0, st>>>(
        static_cast<T*>(dst), static_cast<const T*>(src), o, nk, nj, dk, sj);
}

// A same-dtype copy by a fast path, if one fits the plan; false leaves it to the generic kernel.
bool copy_fast(void* dst, const void* src, size_t esize, const StridedPlan& p, cudaStream_t st) {
    if (p.nd == 0) return false;
    const int in = p.nd - 1;
    // Rows contiguous on both sides and long enough to fill a block.
    if (p.ds[in] == 1 && p.ss[in] == 1 && p.n[in] >= 64) {
        Outer o;
        for (int k = 0; k < in; ++k) {
            o.n[o.nd] = p.n[k];
            o.ds[o.nd] = p.ds[k] * static_cast<int64_t>(esize);
            o.ss[o.nd] = p.ss[k] * static_cast<int64_t>(esize);
            o.count *= p.n[k];
            ++o.nd;
        }
        // The widest unit dividing both base addresses, every row stride and the row length.
        const int64_t row_bytes = p.n[in] * static_cast<int64_t>(esize);
        uint64_t bits = reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src) |
                        static_cast<uint64_t>(row_bytes);
        for (int k = 0; k < o.nd; ++k)
            bits |= static_cast<uint64_t>(o.ds[k]) | static_cast<uint64_t>(o.ss[k]);
        size_t unit = 16;
        while (unit > 1 && (bits & (unit - 1))) unit /= 2;
        const int64_t len = row_bytes / static_cast<int64_t>(unit);
        const int threads = len >= 256 ? 256 : 128;
        const int grid = static_cast<int>(std::min<int64_t>(o.count, int64_t(1) << 16));
        auto d = static_cast<char*>(dst);
        auto s = static_cast<const char*>(src);
        switch (unit) {
            case 16:
                copy_rows_kernel<uint4><<<grid, threads, 0, st>>>(d, s, o, len);
                break;
            case 8:
                copy_rows_kernel<uint2><<<grid, threads, 0, st>>>(d, s, o, len);
                break;
            case 4:
                copy_rows_kernel<uint32_t><<<grid, threads, 0, st>>>(d, s, o, len);
                break;
            case 2:
                copy_rows_kernel<uint16_t><<<grid, threads, 0, st>>>(d, s, o, len);
                break;
            default:
                copy_rows_kernel<uint8_t><<<grid, threads, 0, st>>>(d, s, o, len);
                break;
        }
        return true;
    }
    // Transpose-like: the destination runs along the innermost dim, the source along dim k.
    if (p.ds[in] == 1 && p.ss[in] != 1) {
        int k = -1;
        for (int d = 0; d < in; ++d)
            if (p.ss[d] == 1) k = d;
        if (k < 0 || p.n[k] < 8 || p.n[in] < 8 || (p.n[k] + kTile - 1) / kTile > 65535)
            return false;
        Outer o;  // offsets in elements for this kernel
        for (int d = 0; d < in; ++d) {
            if (d == k) continue;
            o.n[o.nd] = p.n[d];
            o.ds[o.nd] = p.ds[d];
            o.ss[o.nd] = p.ss[d];
            o.count *= p.n[d];
            ++o.nd;
        }
        switch (esize) {
            case 1:
                launch_transpose<uint8_t>(dst, src, o, p.n[k], p.n[in], p.ds[k], p.ss[in], st);
                break;
            case 2:
                launch_transpose<uint16_t>(dst, src, o, p.n[k], p.n[in], p.ds[k], p.ss[in], st);
                break;
            case 4:
                launch_transpose<uint32_t>(dst, src, o, p.n[k], p.n[in], p.ds[k], p.ss[in], st);
                break;
            case 8:
                launch_transpose<uint64_t>(dst, src, o, p.n[k], p.n[in], p.ds[k], p.ss[in], st);
                break;
            default:
                return false;
        }
        return true;
    }
    return false;
}

// ---- packed conversions between f32, bf16 and f64 (the mixed-precision casts) -----------------

template <class T>
struct Bits;  // storage type of a float dtype on the device
template <>
struct Bits<float> {
    using type = float;
    __device__ static double load(float v) { return v; }
    __device__ static float store(double v) { return static_cast<float>(v); }
};
template <>
struct Bits<double> {
    using type = double;
    __device__ static double load(double v) { return v; }
    __device__ static double store(double v) { return v; }
};
struct Bf16Tag {};
template <>
struct Bits<Bf16Tag> {
    using type = uint16_t;
    __device__ static double load(uint16_t h) {
        return __uint_as_float(static_cast<uint32_t>(h) << 16);
    }
    __device__ static uint16_t store(double v) { return f32_to_bf16_bits(static_cast<float>(v)); }
};

// Same rounding as the generic kernel (through double, bf16 via float), without index math.
template <class S, class D>
__global__ void convert_packed_kernel(typename Bits<D>::type* __restrict__ dst,
                                      const typename Bits<S>::type* __restrict__ src, int64_t n) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {  // four independent loads in flight
        typename Bits<S>::type v[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) v[u] = src[i + u * stride];
#pragma unroll
        for (int u = 0; u < 4; ++u) dst[i + u * stride] = Bits<D>::store(Bits<S>::load(v[u]));
    }
    for (; i < n; i += stride) dst[i] = Bits<D>::store(Bits<S>::load(src[i]));
}

template <class S>
bool convert_packed_from(void* dst, DType dd, const void* src, int64_t n, cudaStream_t st) {
    const int grid = blocks_for(n);
    auto s = static_cast<const typename Bits<S>::type*>(src);
    switch (dd) {
        case DType::f32:
            convert_packed_kernel<S, float>
                <<<grid, kThreads, 0, st>>>(static_cast<float*>(dst), s, n);
            return true;
        case DType::f64:
            convert_packed_kernel<S, double>
                <<<grid, kThreads, 0, st>>>(static_cast<double*>(dst), s, n);
            return true;
        case DType::bf16:
            convert_packed_kernel<S, Bf16Tag>
                <<<grid, kThreads, 0, st>>>(static_cast<uint16_t*>(dst), s, n);
            return true;
        default:
            return false;
    }
}

bool convert_packed(void* dst, DType dd, const void* src, DType sd, int64_t n, cudaStream_t st) {
    switch (sd) {
        case DType::f32:
            return convert_packed_from<float>(dst, dd, src, n, st);
        case DType::f64:
            return convert_packed_from<double>(dst, dd, src, n, st);
        case DType::bf16:
            return convert_packed_from<Bf16Tag>(dst, dd, src, n, st);
        default:
            return false;
    }
}

template <class T>
__global__ void fill_packed_kernel(T* __restrict__ dst, T value, int64_t n) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        dst[i] = value;
}

// Fills a packed run of `total` elements of `esize` bytes with the pattern in bits, 16 bytes per
// store where the address and length allow.
bool fill_packed(void* dst, size_t esize, const unsigned char* bits, int64_t total,
                 cudaStream_t st) {
    const int64_t bytes = total * static_cast<int64_t>(esize);
    if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || bytes % 16 != 0) return false;
    uint4 v;
    auto* w = reinterpret_cast<unsigned char*>(&v);
    for (size_t b = 0; b < 16; ++b) w[b] = bits[b % esize];
    const int64_t n = bytes / 16;
    fill_packed_kernel<uint4><<<blocks_for(n), kThreads, 0, st>>>(static_cast<uint4*>(dst), v, n);
    return true;
}

}  // namespace

void launch_strided_copy(void* dst, DType dst_dtype, const void* src, DType src_dtype,
                         const StridedPlan& plan, int64_t total, void* stream) {
    if (total <= 0) return;
    const auto st = static_cast<cudaStream_t>(stream);
    if (dst_dtype == src_dtype && copy_fast(dst, src, dtype_size(dst_dtype), plan, st)) {
        GOOSE_CUDA_LAUNCH_CHECK();
        return;
    }
    const bool packed = plan.nd == 1 && plan.ds[0] == 1 && plan.ss[0] == 1;
    if (packed && convert_packed(dst, dst_dtype, src, src_dtype, total, st)) {
        GOOSE_CUDA_LAUNCH_CHECK();
        return;
    }
    if (total < kMax32)
        launch_copy<uint32_t>(dst, dst_dtype, src, src_dtype, plan, total, st);
    else
        launch_copy<int64_t>(dst, dst_dtype, src, src_dtype, plan, total, st);
    GOOSE_CUDA_LAUNCH_CHECK();
}

void launch_fill(void* dst, DType dtype, const StridedPlan& plan, int64_t total, double value,
                 void* stream) {
    if (total <= 0) return;
    // The element's bit pattern, converted on the host exactly as the CPU fill converts.
    unsigned char bits[8] = {};
    switch (dtype) {
        case DType::f32: {
            const float v = static_cast<float>(value);
            std::memcpy(bits, &v, 4);
            break;
        }
        case DType::f64:
            std::memcpy(bits, &value, 8);
            break;
        case DType::bf16: {
            const uint16_t v = float_to_bf16(static_cast<float>(value));
            std::memcpy(bits, &v, 2);
            break;
        }
        case DType::f16: {
            const uint16_t v = float_to_f16(static_cast<float>(value));
            std::memcpy(bits, &v, 2);
            break;
        }
        case DType::i32: {
            const int32_t v = static_cast<int32_t>(value);
            std::memcpy(bits, &v, 4);
            break;
        }
        case DType::i64: {
            const int64_t v = static_cast<int64_t>(value);
            std::memcpy(bits, &v, 8);
            break;
        }
        case DType::u16: {
            const uint16_t v = static_cast<uint16_t>(value);
            std::memcpy(bits, &v, 2);
            break;
        }
        case DType::u8: {
            const uint8_t v = static_cast<uint8_t>(value);
            std::memcpy(bits, &v, 1);
            break;
        }
    }
    const auto st = static_cast<cudaStream_t>(stream);
    const bool packed = plan.nd == 0 || (plan.nd == 1 && plan.ds[0] == 1);
    if (packed && fill_packed(dst, dtype_size(dtype), bits, total, st)) {
        GOOSE_CUDA_LAUNCH_CHECK();
        return;
    }
    if (total < kMax32)
        launch_fill_sized<uint32_t>(dst, dtype_size(dtype), bits, plan, total, st);
    else
        launch_fill_sized<int64_t>(dst, dtype_size(dtype), bits, plan, total, st);
    GOOSE_CUDA_LAUNCH_CHECK();
}

}  // namespace goose::cuda_detail
