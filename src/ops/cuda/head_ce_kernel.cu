// Fused LM head + cross-entropy in chunks of rows: cuBLASLt for the three products, one
// row kernel for the softmax statistics and the in-place logits gradient, and two small kernels
// (count the targets first, sum the per-row losses last, in a fixed order).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>

#include "ops/cuda/cuda_util.cuh"
#include "ops/cuda/head_ce_kernel.h"

namespace goose::head_ce_cuda {

namespace {

using gemm_lt::GemmType;
using cuda_util::from_f;
using cuda_util::to_f;

constexpr int kRowThreads = 256;
constexpr int kSumThreads = 1024;
// 4096 rows at V = 65536: the fastest of 1024, 2048 and 4096 measured on an H100
constexpr size_t kChunkBytes = size_t(512) << 20;

void check_launch(const char* what) {
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        throw std::runtime_error(std::string("head_ce: launch of ") + what +
                                 " failed: " + cudaGetErrorString(e));
}

size_t elem_size(GemmType t) {
    return t == GemmType::bf16 ? 2 : 4;
}
size_t align256(size_t b) {
    return (b + 255) / 256 * 256;
}

__device__ __forceinline__ int64_t target_at(const void* t, bool i64, int64_t r) {
    return i64 ? static_cast<const int64_t*>(t)[r] : static_cast<const int32_t*>(t)[r];
}

// status[0] = number of rows with a counted target, status[1] = 1 + first bad row (0: none).
__global__ void count_targets_kernel(const void* targets, bool i64, int64_t rows, int64_t vocab,
                                     int64_t ignore, int32_t* status) {
    __shared__ int32_t s_count[kSumThreads / 32];
    __shared__ long long s_bad[kSumThreads / 32];
    int32_t count = 0;
    long long bad = rows;  // first bad row, rows = none
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
        const int64_t t = target_at(targets, i64, r);
        if (t == ignore) continue;
        if (t < 0 || t >= vocab)
            bad = min(bad, static_cast<long long>(r));
        else
            ++count;
    }
    for (int o = 16; o > 0; o /= 2) {
        count += __shfl_xor_sync(0xffffffffu, count, o);
        bad = min(bad, __shfl_xor_sync(0xffffffffu, bad, o));
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) s_count[warp] = count, s_bad[warp] = bad;
    __syncthreads();
    if (threadIdx.x == 0) {
        int32_t c = 0;
        long long b = rows;
        for (int w = 0; w < int(blockDim.x / 32); ++w) c += s_count[w], b = min(b, s_bad[w]);
        status[0] = c;
        status[1] = b < rows ? static_cast<int32_t>(b + 1) : 0;
    }
}

// Running (max, sum of exp(x - max), first argmax) of a thread's elements. Exponentials use the
// hardware ex2 (__expf: 2 + 1.2|x| ulp): accurate expf made the pass compute-bound.
struct Stats {
    float mx = -INFINITY, sum = 0.f;
    int64_t idx = INT64_MAX;
    __device__ void add(float x, int64_t j) {
        if (x > mx) {
            sum = (mx == -INFINITY ? 0.f : sum * __expf(mx - x)) + 1.f;
            mx = x;
            idx = j;
        } else {
            sum += __expf(x - mx);
        }
    }
    // N consecutive elements starting at index j0: one rescale at most, then N exponentials.
    template <int N>
    __device__ void add_vec(const float (&x)[N], int64_t j0) {
        float vm = x[0];
        int qi = 0;
#pragma unroll
        for (int q = 1; q < N; ++q)
            if (x[q] > vm) vm = x[q], qi = q;
        if (vm > mx) {
            sum = mx == -INFINITY ? 0.f : sum * __expf(mx - vm);
            mx = vm;
            idx = j0 + qi;
        }
        if (mx == -INFINITY) return;
        float part = 0.f;
#pragma unroll
        for (int q = 0; q < N; ++q) part += __expf(x[q] - mx);
        sum += part;
    }
    __device__ void merge(const Stats& o) {
        if (o.mx == -INFINITY) return;
        if (mx == -INFINITY) {
            *this = o;
            return;
        }
        const float m = fmaxf(mx, o.mx);
        sum = sum * __expf(mx - m) + o.sum * __expf(o.mx - m);
        idx = mx > o.mx ? idx : (o.mx > mx ? o.idx : min(idx, o.idx));
        mx = m;
    }
};

__device__ Stats shfl_stats(const Stats& s, int o) {
    Stats r;
    r.mx = __shfl_xor_sync(0xffffffffu, s.mx, o);
    r.sum = __shfl_xor_sync(0xffffffffu, s.sum, o);
    r.idx = __shfl_xor_sync(0xffffffffu, s.idx, o);
    return r;
}

// What every thread of a row's block needs after the statistics.
struct RowResult {
    float lse, scale, l2;    // scale = gy / count (0 on an uncounted row); l2 = L2Wrap's term
    int64_t target, argmax;  // target -1 on an uncounted row
};

// Block reduction of the threads' statistics (NT threads), then thread 0 writes the row's loss
// and lse; returns the row's results to every thread. `row` is read for the target logit.
template <int NT, class T>
__device__ RowResult finish_stats(Stats st, const T* row, int64_t vocab, int64_t grow,
                                  const void* targets, bool i64, int64_t ignore,
                                  const int32_t* status, float gy, float l2_scale, float* row_loss,
                                  float* row_lse) {
    __shared__ Stats s_warp[NT / 32];
    __shared__ RowResult s_res;
    for (int o = 16; o > 0; o /= 2) st.merge(shfl_stats(st, o));
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) s_warp[warp] = st;
    __syncthreads();
    if (threadIdx.x == 0) {
        Stats all = s_warp[0];
        for (int w = 1; w < NT / 32; ++w) all.merge(s_warp[w]);
        const float lse = all.mx + logf(all.sum);
        const int64_t t = target_at(targets, i64, grow);
        const bool counted = t != ignore && t >= 0 && t < vocab;
        const int32_t count = status[0];
        s_res.lse = lse;
        s_res.scale = counted && count > 0 ? gy / float(count) : 0.f;
        s_res.l2 = gy * all.mx * l2_scale;  // l2_scale = 1e-4 / rows, or 0
        s_res.target = counted ? t : -1;
        s_res.argmax = all.idx;
        row_loss[grow] = counted ? lse - to_f(row[t]) : 0.f;
        if (row_lse) row_lse[grow] = counted ? lse : 0.f;
    }
    __syncthreads();
    return s_res;
}

__device__ __forceinline__ float grad_of(float x, int64_t j, const RowResult& r) {
    float g = r.scale * (__expf(x - r.lse) - (j == r.target ? 1.f : 0.f));
    if (j == r.argmax) g += r.l2;
    return g;
}

// One block per row of the chunk: statistics, loss and the in-place gradient; the row is read
// twice (the second read hits L2 only when the rows in flight fit there).
template <class T>
__global__ void __launch_bounds__(kRowThreads)
    ce_rows_kernel(T* logits, int64_t vocab, int64_t row0, const void* targets, bool i64,
                   int64_t ignore, const int32_t* status, float gy, float l2_scale, float* row_loss,
                   float* row_lse) {
    constexpr int kVec = 16 / sizeof(T);
    const int64_t r = blockIdx.x;
    T* row = logits + r * vocab;
    const bool vec = vocab % kVec == 0;
    Stats st;
    if (vec) {
        for (int64_t j = int64_t(threadIdx.x) * kVec; j < vocab; j += int64_t(kRowThreads) * kVec) {
            const uint4 raw = *reinterpret_cast<const uint4*>(row + j);
            const T* v = reinterpret_cast<const T*>(&raw);
            float f[kVec];
#pragma unroll
            for (int q = 0; q < kVec; ++q) f[q] = to_f(v[q]);
            st.add_vec(f, j);
        }
    } else {
        for (int64_t j = threadIdx.x; j < vocab; j += kRowThreads) st.add(to_f(row[j]), j);
    }
    const RowResult res = finish_stats<kRowThreads>(st, row, vocab, row0 + r, targets, i64, ignore,
                                                    status, gy, l2_scale, row_loss, row_lse);
    if (vec) {
        for (int64_t j = int64_t(threadIdx.x) * kVec; j < vocab; j += int64_t(kRowThreads) * kVec) {
            uint4 raw = *reinterpret_cast<const uint4*>(row + j);
            T* v = reinterpret_cast<T*>(&raw);
#pragma unroll
            for (int q = 0; q < kVec; ++q) v[q] = from_f<T>(grad_of(to_f(v[q]), j + q, res));
            *reinterpret_cast<uint4*>(row + j) = raw;
        }
    } else {
        for (int64_t j = threadIdx.x; j < vocab; j += kRowThreads)
            row[j] = from_f<T>(grad_of(to_f(row[j]), j, res));
    }
}

// The same with the row held in registers between the two passes: one read and one write of
// the logits. kCachedThreads threads x kCachedVecs 16-byte vectors cover a row of up to
// 65536 bf16 (V % 8 == 0).
constexpr int kCachedThreads = 512;
constexpr int kCachedVecs = 16;

// bf16 element q (0..7) of a 16-byte vector held in registers, as float (exact).
__device__ __forceinline__ float bf16_lane(const uint4& w, int q) {
    const uint32_t word = q < 2 ? w.x : q < 4 ? w.y : q < 6 ? w.z : w.w;
    return __uint_as_float((q & 1) ? (word & 0xffff0000u) : (word << 16));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return (uint32_t(__bfloat16_as_ushort(h.y)) << 16) | __bfloat16_as_ushort(h.x);
}

__global__ void __launch_bounds__(kCachedThreads, 1)
    ce_rows_cached_kernel(__nv_bfloat16* logits, int64_t vocab, int64_t row0, const void* targets,
                          bool i64, int64_t ignore, const int32_t* status, float gy, float l2_scale,
                          float* row_loss, float* row_lse) {
    const int64_t r = blockIdx.x;
    __nv_bfloat16* row = logits + r * vocab;
    const int nv = int(vocab / 8);  // 16-byte vectors in the row: vector i * threads + tid
    const int tid = int(threadIdx.x);
    uint4 cache[kCachedVecs];
#pragma unroll
    for (int i = 0; i < kCachedVecs; ++i)  // every load in flight before the math
        if (i * kCachedThreads + tid < nv)
            cache[i] = reinterpret_cast<const uint4*>(row)[i * kCachedThreads + tid];
    // The thread's max and its first index, then the sum of exponentials against it.
    float mx = -INFINITY;
    int idx = INT_MAX;
#pragma unroll
    for (int i = 0; i < kCachedVecs; ++i) {
        if (i * kCachedThreads + tid >= nv) continue;
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            const float x = bf16_lane(cache[i], q);
            if (x > mx) mx = x, idx = (i * kCachedThreads + tid) * 8 + q;
        }
    }
    float sum = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
        for (int i = 0; i < kCachedVecs; ++i) {
            if (i * kCachedThreads + tid >= nv) continue;
#pragma unroll
            for (int q = 0; q < 8; ++q) sum += __expf(bf16_lane(cache[i], q) - mx);
        }
    }
    Stats st;
    st.mx = mx, st.sum = sum, st.idx = idx == INT_MAX ? INT64_MAX : idx;
    const RowResult res = finish_stats<kCachedThreads>(
        st, row, vocab, row0 + r, targets, i64, ignore, status, gy, l2_scale, row_loss, row_lse);
    const int tgt = int(res.target), amax = int(res.argmax);
    const float lse = res.lse, scale = res.scale, l2 = res.l2;
#pragma unroll
    for (int i = 0; i < kCachedVecs; ++i) {
        const int vi = i * kCachedThreads + tid;
        if (vi >= nv) continue;
        float g[8];
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            const int j = vi * 8 + q;
            g[q] = scale * (__expf(bf16_lane(cache[i], q) - lse) - (j == tgt ? 1.f : 0.f));
            if (j == amax) g[q] += l2;
        }
        reinterpret_cast<uint4*>(row)[vi] =
            make_uint4(pack_bf16(g[0], g[1]), pack_bf16(g[2], g[3]), pack_bf16(g[4], g[5]),
                       pack_bf16(g[6], g[7]));
    }
}

// loss = sum(row_loss) / count (0 when count = 0), summed in double in a fixed order.
__global__ void finish_loss_kernel(const float* row_loss, int64_t rows, const int32_t* status,
                                   float* loss) {
    __shared__ double s[kSumThreads];
    double acc = 0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) acc += row_loss[r];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int h = kSumThreads / 2; h > 0; h /= 2) {
        if (int(threadIdx.x) < h) s[threadIdx.x] += s[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) *loss = status[0] > 0 ? float(s[0] / status[0]) : 0.f;
}

}  // namespace

int64_t pick_chunk_rows(const HeadCeArgs& a) {
    if (a.chunk_rows > 0) return std::min(a.chunk_rows, std::max<int64_t>(a.rows, 1));
    const int64_t per_row = std::max<int64_t>(1, a.vocab * int64_t(elem_size(a.type)));
    int64_t r = std::max<int64_t>(1, int64_t(kChunkBytes) / per_row);
    if (r >= 256) r = r / 256 * 256;  // whole GEMM tiles
    return std::min(r, std::max<int64_t>(a.rows, 1));
}

size_t workspace_bytes(const HeadCeArgs& a) {
    const int64_t cr = pick_chunk_rows(a);
    return align256(size_t(cr) * size_t(a.vocab) * elem_size(a.type)) +
           align256(size_t(std::max<int64_t>(a.rows, 1)) * sizeof(float));
}

void head_ce(const HeadCeArgs& a, void* stream) {
    auto s = static_cast<cudaStream_t>(stream);
    if (a.type != GemmType::bf16 && a.type != GemmType::f32)
        throw std::runtime_error("head_ce: type must be bf16 or f32");
    const int64_t cr = pick_chunk_rows(a);
    auto* chunk = static_cast<unsigned char*>(a.workspace);
    auto* row_loss = reinterpret_cast<float*>(
        chunk + align256(size_t(cr) * size_t(a.vocab) * elem_size(a.type)));
    count_targets_kernel<<<1, kSumThreads, 0, s>>>(a.targets, a.targets_i64, a.rows, a.vocab,
                                                   a.ignore_index, a.status);
    check_launch("count_targets");
    const size_t es = elem_size(a.type);
    const float l2_scale = a.l2wrap && a.rows > 0 ? float(1e-4 / double(a.rows)) : 0.f;
    for (int64_t r0 = 0; r0 < a.rows; r0 += cr) {
        const int64_t n = std::min(cr, a.rows - r0);
        const auto* xc = static_cast<const unsigned char*>(a.x) + size_t(r0 * a.dim) * es;
        gemm_lt::GemmArgs g;  // logits (n, V) = x_c (n, C) wᵀ
        g.m = n, g.n = a.vocab, g.k = a.dim;
        g.a = xc, g.lda = a.dim;
        g.b = a.w, g.ldb = a.dim, g.trans_b = true;
        g.c = chunk, g.ldc = a.vocab;
        g.ab_type = g.c_type = a.type;
        gemm_lt::gemm(g, s);
        const bool cached = a.row_cache && a.type == GemmType::bf16 && a.vocab % 8 == 0 &&
                            a.vocab <= int64_t(kCachedThreads) * kCachedVecs * 8;
        if (cached)
            ce_rows_cached_kernel<<<unsigned(n), kCachedThreads, 0, s>>>(
                reinterpret_cast<__nv_bfloat16*>(chunk), a.vocab, r0, a.targets, a.targets_i64,
                a.ignore_index, a.status, float(a.gy), l2_scale, row_loss, a.row_lse);
        else if (a.type == GemmType::bf16)
            ce_rows_kernel<__nv_bfloat16><<<unsigned(n), kRowThreads, 0, s>>>(
                reinterpret_cast<__nv_bfloat16*>(chunk), a.vocab, r0, a.targets, a.targets_i64,
                a.ignore_index, a.status, float(a.gy), l2_scale, row_loss, a.row_lse);
        else
            ce_rows_kernel<float><<<unsigned(n), kRowThreads, 0, s>>>(
                reinterpret_cast<float*>(chunk), a.vocab, r0, a.targets, a.targets_i64,
                a.ignore_index, a.status, float(a.gy), l2_scale, row_loss, a.row_lse);
        check_launch("ce_rows");
        if (a.dx) {  // dx_c (n, C) = dlogits (n, V) w (V, C)
            gemm_lt::GemmArgs d;
            d.m = n, d.n = a.dim, d.k = a.vocab;
            d.a = chunk, d.lda = a.vocab;
            d.b = a.w, d.ldb = a.dim;
            d.c = static_cast<unsigned char*>(a.dx) + size_t(r0 * a.dim) * es, d.ldc = a.dim;
            d.ab_type = d.c_type = a.type;
            gemm_lt::gemm(d, s);
        }
        if (a.dw) {  // dw (V, C) += dlogitsᵀ (V, n) x_c (n, C)
            gemm_lt::GemmArgs d;
            d.m = a.vocab, d.n = a.dim, d.k = n;
            d.a = chunk, d.lda = a.vocab, d.trans_a = true;
            d.b = xc, d.ldb = a.dim;
            d.c = a.dw, d.ldc = a.dim;
            d.ab_type = a.type, d.c_type = GemmType::f32;
            d.beta = (r0 == 0 && !a.accumulate_dw) ? 0.0 : 1.0;
            gemm_lt::gemm(d, s);
        }
    }
    if (a.rows == 0 && a.dw && !a.accumulate_dw)
        cudaMemsetAsync(a.dw, 0, size_t(a.vocab * a.dim) * sizeof(float), s);
    finish_loss_kernel<<<1, kSumThreads, 0, s>>>(row_loss, a.rows, a.status, a.loss);
    check_launch("finish_loss");
}

}  // namespace goose::head_ce_cuda
