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
    float decay, step_size, bc2_sqrt, grad_scale;
};

__device__ __forceinline__ StepCoeffs step_coeffs(const AdamEntry& e, const AdamShared& s) {
    const float gs = s.grad_scale ? *s.grad_scale : 1.f;
    if (!s.coeffs) return {e.decay, e.step_size, s.bc2_sqrt, gs};
    return {s.coeffs[1 + s.coeff_entries + e.slot], s.coeffs[1 + e.slot], s.coeffs[0], gs};
}

// One element: see adamw_kernel.h for the formula; p, m, v in/out.
__device__ __forceinline__ void update(float& p, float gi, float& m, float& v, const AdamEntry& e,
                                       const AdamShared& s, const StepCoeffs& c) {
    if (s.grad_scale) gi = __fmul_rn(gi, c.grad_scale);
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

// The entry whose block range holds block blk (binary search over the block offsets).
__device__ __forceinline__ int entry_of(const Batch& b, int32_t blk) {
    int lo = 0, hi = b.count - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (b.block_start[mid] <= blk)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

__global__ void __launch_bounds__(kThreads) adam_kernel(const __grid_constant__ Batch b) {
    const int32_t blk = static_cast<int32_t>(blockIdx.x);
    const int lo = entry_of(b, blk);
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

// Sum of squares of one chunk of one entry's gradient (the block layout of adam_kernel) into
// partials[first + blockIdx.x].
__global__ void __launch_bounds__(kThreads) sq_kernel(const __grid_constant__ Batch b,
                                                       float* partials, int64_t first) {
    const int32_t blk = static_cast<int32_t>(blockIdx.x);
    const int lo = entry_of(b, blk);
    const AdamEntry& e = b.e[lo];
    const int64_t start = int64_t(blk - b.block_start[lo]) * kChunk;
    const int64_t end = min(e.n, start + kChunk);
    const bool gb = e.g_bf16 != 0;
    // 16-byte loads (8 bf16 or 4 f32) where aligned, single elements for the tail.
    const int per = gb ? 8 : 4;
    const bool vec = reinterpret_cast<uintptr_t>(e.g) % 16 == 0;
    const int64_t vend = vec ? start + (end - start) / per * per : start;
    float s = 0.f;
#pragma unroll 4
    for (int64_t i = start + int64_t(threadIdx.x) * per; i < vend; i += int64_t(kThreads) * per) {
        if (gb) {
            const uint4 raw =
                *reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(e.g) + i);
            const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const float lo = __uint_as_float(w[q] << 16);
                const float hi = __uint_as_float(w[q] & 0xffff0000u);
                s = __fmaf_rn(lo, lo, s);
                s = __fmaf_rn(hi, hi, s);
            }
        } else {
            const float4 g = *reinterpret_cast<const float4*>(static_cast<const float*>(e.g) + i);
            s = __fmaf_rn(g.x, g.x, s);
            s = __fmaf_rn(g.y, g.y, s);
            s = __fmaf_rn(g.z, g.z, s);
            s = __fmaf_rn(g.w, g.w, s);
        }
    }
    for (int64_t j = vend + threadIdx.x; j < end; j += kThreads) {
        const float g = load_g(e.g, j, gb);
        s = __fmaf_rn(g, g, s);
    }
    __shared__ float red[kThreads];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int w = kThreads / 2; w > 0; w /= 2) {
        if (int(threadIdx.x) < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[first + blk] = red[0];
}

constexpr int kSumThreads = 1024;

// out = {norm, scale} from n partials (one block, fixed order, double).
__global__ void __launch_bounds__(kSumThreads)
    clip_finish_kernel(const float* partials, int64_t n, float max_norm, float* out) {
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += kSumThreads) s += double(partials[i]);
    __shared__ double red[kSumThreads];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int w = kSumThreads / 2; w > 0; w /= 2) {
        if (int(threadIdx.x) < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const double norm = sqrt(red[0]);
        out[0] = float(norm);
        out[1] = norm > double(max_norm) ? float(double(max_norm) / (norm + 1e-6)) : 1.f;
    }
}

// The entries in launches of at most kAdamMaxEntries tensors: f(batch, blocks) per launch.
template <class F>
void for_each_batch(const AdamEntry* entries, int64_t count, Batch& b, F&& f) {
    auto flush = [&]() {
        if (b.count == 0) return;
        const int32_t blocks = b.block_start[b.count];
        if (blocks > 0) f(b, blocks);
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

void check_launch(const char* what) {
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        throw std::runtime_error(std::string(what) + ": kernel launch failed: " +
                                 cudaGetErrorString(err));
}

}  // namespace

int64_t clip_partials(const AdamEntry* entries, int64_t count) {
    int64_t n = 0;
    for (int64_t i = 0; i < count; ++i)
        if (entries[i].n > 0) n += (entries[i].n + kChunk - 1) / kChunk;
    return n;
}

void grad_clip_scale(const AdamEntry* entries, int64_t count, float max_norm, float* partials,
                     float* out, void* stream) {
    auto st = static_cast<cudaStream_t>(stream);
    Batch b{};
    int64_t first = 0;
    for_each_batch(entries, count, b, [&](const Batch& batch, int32_t blocks) {
        sq_kernel<<<blocks, kThreads, 0, st>>>(batch, partials, first);
        check_launch("grad_clip_scale");
        first += blocks;
    });
    clip_finish_kernel<<<1, kSumThreads, 0, st>>>(partials, first, max_norm, out);
    check_launch("grad_clip_scale");
}

void adam_step(const AdamEntry* entries, int64_t count, const AdamShared& s, void* stream) {
    auto st = static_cast<cudaStream_t>(stream);
    static_assert(sizeof(Batch) < 32000, "the kernel parameter block must stay under 32 KB");
    Batch b{};
    b.s = s;
    for_each_batch(entries, count, b, [&](const Batch& batch, int32_t blocks) {
        adam_kernel<<<blocks, kThreads, 0, st>>>(batch);
        check_launch("adam_step");
    });
}

}  // namespace goose::adamw_cuda
