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

}  // namespace

void launch_strided_copy(void* dst, DType dst_dtype, const void* src, DType src_dtype,
                         const StridedPlan& plan, int64_t total, void* stream) {
    if (total <= 0) return;
    const auto st = static_cast<cudaStream_t>(stream);
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
    if (total < kMax32)
        launch_fill_sized<uint32_t>(dst, dtype_size(dtype), bits, plan, total, st);
    else
        launch_fill_sized<int64_t>(dst, dtype_size(dtype), bits, plan, total, st);
    GOOSE_CUDA_LAUNCH_CHECK();
}

}  // namespace goose::cuda_detail
