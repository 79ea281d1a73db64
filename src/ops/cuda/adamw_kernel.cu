// Multi-tensor Adam/AdamW kernel: the tensors of a step are packed into one kernel parameter
// block; each thread block updates one chunk of one tensor (found by binary search over the
// chunk offsets), 4 elements per thread-iteration with 16-byte accesses where aligned.
// Arithmetic uses explicit round-to-nearest intrinsics so nvcc cannot contract it differently
// from the CPU optimizer.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "ops/cuda/adamw_kernel.h"

namespace goose::adamw_cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 8192;  // elements per thread block

struct Batch {
    AdamEntry e[kAdamMaxEntries];
    int32_t block_start[kAdamMaxEntries + 1];  // first block of each entry; [count] = total
    int32_t count;
    AdamShared s;
};

__device__ __forceinline__ float load_g(const void* g, int64_t i, bool bf16) {
    if (bf16) return __bfloat162float(static_cast<const __nv_bfloat16*>(g)[i]);
    return static_cast<const float*>(g)[i];
}

// The per-step coefficients of one entry: from the kernel parameters or the device array.
struct StepCoeffs {
    float decay, step_size, bc2_sqrt;
};

__device__ __forceinline__ StepCoeffs step_coeffs(const AdamEntry& e, const AdamShared& s) {
    if (!s.coeffs) return {e.decay, e.step_size, s.bc2_sqrt};
    return {s.coeffs[1 + s.coeff_entries + e.slot], s.coeffs[1 + e.slot], s.coeffs[0]};
}

// One element: see adamw_kernel.h for the formula; p, m, v in/out.
__device__ __forceinline__ void update(float& p, float gi, float& m, float& v, const AdamEntry& e,
                                       const AdamShared& s, const StepCoeffs& c) {
    if (e.any_wd) {
        if (s.decoupled)
            p = __fmul_rn(p, c.decay);
        else
            gi = __fmaf_rn(e.wd, p, gi);
    }
    m = __fmaf_rn(s.one_minus_beta1, __fsub_rn(gi, m), m);
    v = __fmaf_rn(v, s.beta2, __fmul_rn(__fmul_rn(s.one_minus_beta2, gi), gi));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), c.bc2_sqrt), s.eps);
    p = __fsub_rn(p, __fdiv_rn(__fmul_rn(c.step_size, m), denom));
}

// Four consecutive elements of p, m, v and the gradient.
struct Quad {
    float4 p, m, v, g;
};

__device__ __forceinline__ Quad load_quad(const AdamEntry& e, int64_t i, bool gb) {
    Quad q;
    q.p = *reinterpret_cast<const float4*>(e.p + i);
    q.m = *reinterpret_cast<const float4*>(e.m + i);
    q.v = *reinterpret_cast<const float4*>(e.v + i);
    if (gb) {
        const uint2 raw =
            *reinterpret_cast<const uint2*>(static_cast<const __nv_bfloat16*>(e.g) + i);
        const __nv_bfloat162 g01 = *reinterpret_cast<const __nv_bfloat162*>(&raw.x);
        const __nv_bfloat162 g23 = *reinterpret_cast<const __nv_bfloat162*>(&raw.y);
        q.g = make_float4(__low2float(g01), __high2float(g01), __low2float(g23), __high2float(g23));
    } else {
        q.g = *reinterpret_cast<const float4*>(static_cast<const float*>(e.g) + i);
    }
    return q;
}

__device__ __forceinline__ void update_quad(Quad& q, const AdamEntry& e, const AdamShared& s,
                                            const StepCoeffs& c) {
    update(q.p.x, q.g.x, q.m.x, q.v.x, e, s, c);
    update(q.p.y, q.g.y, q.m.y, q.v.y, e, s, c);
    update(q.p.z, q.g.z, q.m.z, q.v.z, e, s, c);
    update(q.p.w, q.g.w, q.m.w, q.v.w, e, s, c);
}

__device__ __forceinline__ void store_quad(const Quad& q, const AdamEntry& e, int64_t i) {
    *reinterpret_cast<float4*>(e.p + i) = q.p;
    *reinterpret_cast<float4*>(e.m + i) = q.m;
    *reinterpret_cast<float4*>(e.v + i) = q.v;
    if (e.p_bf16) {
        const __nv_bfloat162 lo2 = __floats2bfloat162_rn(q.p.x, q.p.y);
        const __nv_bfloat162 hi2 = __floats2bfloat162_rn(q.p.z, q.p.w);
        uint2 raw;
        raw.x = *reinterpret_cast<const uint32_t*>(&lo2);
        raw.y = *reinterpret_cast<const uint32_t*>(&hi2);
        *reinterpret_cast<uint2*>(static_cast<__nv_bfloat16*>(e.p_bf16) + i) = raw;
    }
}

__global__ void __launch_bounds__(kThreads) adam_kernel(const __grid_constant__ Batch b) {
    const int32_t blk = static_cast<int32_t>(blockIdx.x);
    int lo = 0, hi = b.count - 1;  // the entry whose block range holds blk
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (b.block_start[mid] <= blk)
            lo = mid;
        else
            hi = mid - 1;
    }
    const AdamEntry& e = b.e[lo];
    const AdamShared& s = b.s;
    const StepCoeffs c = step_coeffs(e, s);
    const int64_t start = int64_t(blk - b.block_start[lo]) * kChunk;
    const int64_t end = min(e.n, start + kChunk);
    const bool gb = e.g_bf16 != 0;
    const auto addr = [](const void* q) { return reinterpret_cast<uintptr_t>(q); };
    const bool vec = ((addr(e.p) | addr(e.m) | addr(e.v)) % 16 == 0) &&
                     (addr(e.g) % (gb ? 8 : 16) == 0) && (addr(e.p_bf16) % 8 == 0);
    // Vectors of 4 over [start, vend) when aligned, two per thread and iteration (all eight
    // loads issued before the math); single elements over [vend, end).
    const int64_t vend = vec ? start + (end - start) / 4 * 4 : start;
    constexpr int64_t kStep = int64_t(kThreads) * 4;
    for (int64_t i = start + int64_t(threadIdx.x) * 4; i < vend; i += 2 * kStep) {
        const bool second = i + kStep < vend;
        Quad q0 = load_quad(e, i, gb), q1;
        if (second) q1 = load_quad(e, i + kStep, gb);
        update_quad(q0, e, s, c);
        store_quad(q0, e, i);
        if (second) {
            update_quad(q1, e, s, c);
            store_quad(q1, e, i + kStep);
        }
    }
    for (int64_t j = vend + threadIdx.x; j < end; j += kThreads) {
        float p = e.p[j], m = e.m[j], v = e.v[j];
        update(p, load_g(e.g, j, gb), m, v, e, s, c);
        e.p[j] = p;
        e.m[j] = m;
        e.v[j] = v;
        if (e.p_bf16) static_cast<__nv_bfloat16*>(e.p_bf16)[j] = __float2bfloat16_rn(p);
    }
}

}  // namespace

void adam_step(const AdamEntry* entries, int64_t count, const AdamShared& s, void* stream) {
    auto st = static_cast<cudaStream_t>(stream);
    static_assert(sizeof(Batch) < 32000, "the kernel parameter block must stay under 32 KB");
    Batch b{};
    b.s = s;
    auto flush = [&]() {
        if (b.count == 0) return;
        const int32_t blocks = b.block_start[b.count];
        if (blocks > 0) {
            adam_kernel<<<blocks, kThreads, 0, st>>>(b);
            const cudaError_t err = cudaGetLastError();
            if (err != cudaSuccess)
                throw std::runtime_error(std::string("adam_step: kernel launch failed: ") +
                                         cudaGetErrorString(err));
        }
        b.count = 0;
    };
    int64_t blocks = 0;
    for (int64_t i = 0; i < count; ++i) {
        const AdamEntry& e = entries[i];
        if (e.n <= 0) continue;
        const int64_t nb = (e.n + kChunk - 1) / kChunk;
        if (b.count == kAdamMaxEntries || (b.count > 0 && blocks + nb > (int64_t(1) << 30))) {
            flush();
            blocks = 0;
        }
        b.e[b.count] = e;
        b.block_start[b.count] = static_cast<int32_t>(blocks);
        blocks += nb;
        ++b.count;
        b.block_start[b.count] = static_cast<int32_t>(blocks);
    }
    flush();
}

}  // namespace goose::adamw_cuda
