// The engine's matrix kernels: a multi-matrix, few-row GEMV that streams each weight row once
// (f32, bf16 widened in registers, int8 converted in registers and scaled per row), and the
// many-row linear on OpenBLAS sgemm.
#include <cblas.h>
#include <omp.h>

#include <algorithm>

#include "engine_kernels.h"
#include "ops/cpu/simd.h"

namespace goose::infer::detail {

namespace {

using simd::kLanes;
using simd::VecF;

// Bytes of weights per OpenMP work item: long enough streams for the prefetchers, short enough
// for load balance between threads (and against other processes on the same cores).
constexpr int64_t kTileBytes = 64 << 10;
// Below this much work (weight bytes x row blocks) a GEMV call runs on the calling thread: a
// parallel region costs microseconds, and much more when the cores are shared.
constexpr int64_t kParallelGemvBytes = 192 << 10;
// The same for the sgemm path, in multiply-adds.
constexpr int64_t kParallelGemmMacs = int64_t(1) << 22;
// How far ahead of its loads the GEMV prefetches weights into L1 (measured on the 0.1B shape,
// 2 cores: int8 decode 8.8 -> 7.7 ms/token with 128 to 4096 bytes; f32/bf16 unchanged; the
// batched kernel, with more arithmetic per byte, gained most from the longer distances).
constexpr int64_t kPrefetchBytes = 2048;
// Input rows per register block of the GEMV kernel.
constexpr int kRowBlock = 4;
// Rows of a bf16/int8 matrix one thread widens to f32 at once for sgemm (about 2 MiB of f32).
constexpr int64_t kWidenFloats = int64_t(1) << 19;

struct F32 {
    using T = float;
    static const T* data(const QMatrix& m) { return m.f32(); }
    static VecF vec(const T* p) { return simd::load(p); }
    static float one(const T* p) { return *p; }
};
struct Bf16 {
    using T = uint16_t;
    static const T* data(const QMatrix& m) { return m.bf16(); }
    static VecF vec(const T* p) { return simd::load_bf16(p); }
    static float one(const T* p) { return simd::bf16_to_f32(*p); }
};
struct I8 {
    using T = int8_t;
    static const T* data(const QMatrix& m) { return m.i8(); }
    static VecF vec(const T* p) { return simd::load_i8(p); }
    static float one(const T* p) { return static_cast<float>(*p); }
};

// out[b] = sum_i w[i] x[b * ldx + i] for b < NB; U vectors per step per row of x.
template <class W, int NB, int U>
[[gnu::always_inline]] inline void dots(const typename W::T* w, const float* x, int64_t ldx,
                                        int64_t n, float* out) {
    VecF acc[NB][U];
    for (int b = 0; b < NB; ++b)
        for (int u = 0; u < U; ++u) acc[b][u] = simd::broadcast(0.f);
    int64_t i = 0;
    for (; i + U * kLanes <= n; i += U * kLanes) {
        if (NB == 1) __builtin_prefetch(w + i + kPrefetchBytes / sizeof(*w));
        for (int u = 0; u < U; ++u) {
            const VecF wv = W::vec(w + i + u * kLanes);
            for (int b = 0; b < NB; ++b)
                acc[b][u] = simd::fma(wv, simd::load(x + b * ldx + i + u * kLanes), acc[b][u]);
        }
    }
    for (; i + kLanes <= n; i += kLanes) {
        const VecF wv = W::vec(w + i);
        for (int b = 0; b < NB; ++b)
            acc[b][0] = simd::fma(wv, simd::load(x + b * ldx + i), acc[b][0]);
    }
    for (int b = 0; b < NB; ++b) {
        VecF s = acc[b][0];
        for (int u = 1; u < U; ++u) s = simd::add(s, acc[b][u]);
        float t = simd::reduce_add(s);
        for (int64_t j = i; j < n; ++j) t += W::one(w + j) * x[b * ldx + j];
        out[b] = t;
    }
}

// Two weight rows at once against NB input rows: out0[b] = w0 . x_b, out1[b] = w1 . x_b. Each
// input vector loaded feeds two FMAs (the batched case is bound by loads and FMAs, not memory).
template <class W, int NB>
[[gnu::always_inline]] inline void dots2(const typename W::T* w0, const typename W::T* w1,
                                         const float* x, int64_t ldx, int64_t n, float* out0,
                                         float* out1) {
    VecF a0[NB], a1[NB];
    for (int b = 0; b < NB; ++b) a0[b] = a1[b] = simd::broadcast(0.f);
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        __builtin_prefetch(w0 + i + kPrefetchBytes / sizeof(*w0));
        __builtin_prefetch(w1 + i + kPrefetchBytes / sizeof(*w1));
        const VecF v0 = W::vec(w0 + i), v1 = W::vec(w1 + i);
        for (int b = 0; b < NB; ++b) {
            const VecF xv = simd::load(x + b * ldx + i);
            a0[b] = simd::fma(v0, xv, a0[b]);
            a1[b] = simd::fma(v1, xv, a1[b]);
        }
    }
    for (int b = 0; b < NB; ++b) {
        float t0 = simd::reduce_add(a0[b]), t1 = simd::reduce_add(a1[b]);
        for (int64_t j = i; j < n; ++j) {
            t0 += W::one(w0 + j) * x[b * ldx + j];
            t1 += W::one(w1 + j) * x[b * ldx + j];
        }
        out0[b] = t0;
        out1[b] = t1;
    }
}

inline void finish(float* y, float v, Epilogue ep) {
    switch (ep) {
        case Epilogue::store: *y = v; break;
        case Epilogue::add: *y += v; break;
        case Epilogue::relu2: {
            const float r = v > 0 ? v : 0.f;
            *y = r * r;
            break;
        }
    }
}

template <class W>
void run_tile(const GemvJob& j, int64_t rows, int64_t r0, int64_t r1) {
    const QMatrix& m = *j.w;
    const int64_t n = m.cols;
    const typename W::T* base = W::data(m);
    const float* scale = m.scale.empty() ? nullptr : m.scale.data();
    float d0[kRowBlock], d1[kRowBlock];
    int64_t o = r0;
    if (rows > 1) {  // pairs of weight rows, blocks of up to 4 input rows
        for (; o + 2 <= r1; o += 2) {
            const typename W::T *w0 = base + o * n, *w1 = w0 + n;
            for (int64_t b0 = 0; b0 < rows; b0 += kRowBlock) {
                const int64_t nb = std::min<int64_t>(kRowBlock, rows - b0);
                const float* x = j.x + b0 * j.ldx;
                switch (nb) {
                    case 1: dots2<W, 1>(w0, w1, x, j.ldx, n, d0, d1); break;
                    case 2: dots2<W, 2>(w0, w1, x, j.ldx, n, d0, d1); break;
                    case 3: dots2<W, 3>(w0, w1, x, j.ldx, n, d0, d1); break;
                    default: dots2<W, 4>(w0, w1, x, j.ldx, n, d0, d1); break;
                }
                const float s0 = scale ? scale[o] : 1.f, s1 = scale ? scale[o + 1] : 1.f;
                for (int64_t b = 0; b < nb; ++b) {
                    finish(j.y + (b0 + b) * j.ldy + o, d0[b] * s0, j.ep);
                    finish(j.y + (b0 + b) * j.ldy + o + 1, d1[b] * s1, j.ep);
                }
            }
        }
    }
    for (; o < r1; ++o) {  // one input row (decoding one sequence), or the last odd weight row
        const typename W::T* wr = base + o * n;
        for (int64_t b0 = 0; b0 < rows; b0 += kRowBlock) {
            const int64_t nb = std::min<int64_t>(kRowBlock, rows - b0);
            const float* x = j.x + b0 * j.ldx;
            switch (nb) {
                case 1: dots<W, 1, 4>(wr, x, j.ldx, n, d0); break;
                case 2: dots<W, 2, 2>(wr, x, j.ldx, n, d0); break;
                case 3: dots<W, 3, 2>(wr, x, j.ldx, n, d0); break;
                default: dots<W, 4, 2>(wr, x, j.ldx, n, d0); break;
            }
            const float s = scale ? scale[o] : 1.f;
            for (int64_t b = 0; b < nb; ++b) finish(j.y + (b0 + b) * j.ldy + o, d0[b] * s, j.ep);
        }
    }
}

// y = relu(y)^2 on a (rows, cols) block with leading dim ldy (the calling thread's columns).
void relu2_cols(float* y, int64_t rows, int64_t cols, int64_t ldy) {
    const VecF zero = simd::broadcast(0.f);
    for (int64_t r = 0; r < rows; ++r) {
        float* p = y + r * ldy;
        int64_t i = 0;
        for (; i + kLanes <= cols; i += kLanes) {
            const VecF v = simd::max(zero, simd::load(p + i));
            simd::store(p + i, simd::mul(v, v));
        }
        for (; i < cols; ++i) {
            const float v = p[i] > 0 ? p[i] : 0.f;
            p[i] = v * v;
        }
    }
}

void sgemm_rows(int64_t rows, int64_t out, int64_t in, const float* x, int64_t ldx,
                const float* w, float beta, float* y, int64_t ldy) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
                static_cast<blasint>(out), static_cast<blasint>(in), 1.f, x,
                static_cast<blasint>(ldx), w, static_cast<blasint>(in), beta, y,
                static_cast<blasint>(ldy));
}

}  // namespace

BlasOneThread::BlasOneThread() : prev_(openblas_get_num_threads()) {
    if (prev_ != 1) openblas_set_num_threads(1);
}
BlasOneThread::~BlasOneThread() {
    if (prev_ != 1) openblas_set_num_threads(prev_);
}

void gemv(std::span<const GemvJob> jobs, int64_t rows, std::vector<GemvTile>& tiles) {
    if (rows <= 0) return;
    tiles.clear();
    int64_t work = 0;
    for (size_t k = 0; k < jobs.size(); ++k) {
        const QMatrix& m = *jobs[k].w;
        work += m.bytes() * ((rows + kRowBlock - 1) / kRowBlock);
        const int64_t row_bytes = std::max<int64_t>(1, m.bytes() / std::max<int64_t>(1, m.rows));
        const int64_t step = std::max<int64_t>(1, kTileBytes / row_bytes);
        for (int64_t r = 0; r < m.rows; r += step)
            tiles.push_back({static_cast<int32_t>(k), r, std::min(m.rows, r + step)});
    }
    const auto nt = static_cast<int64_t>(tiles.size());
#pragma omp parallel for schedule(dynamic, 1) if (nt > 1 && work >= kParallelGemvBytes)
    for (int64_t t = 0; t < nt; ++t) {
        const GemvTile& tile = tiles[static_cast<size_t>(t)];
        const GemvJob& j = jobs[static_cast<size_t>(tile.job)];
        switch (j.w->format) {
            case WeightFormat::f32: run_tile<F32>(j, rows, tile.r0, tile.r1); break;
            case WeightFormat::bf16: run_tile<Bf16>(j, rows, tile.r0, tile.r1); break;
            case WeightFormat::int8: run_tile<I8>(j, rows, tile.r0, tile.r1); break;
        }
    }
}

void linear_rows(std::span<const GemvJob> jobs, int64_t rows, std::vector<GemvTile>& chunks,
                 std::vector<Scratch>& widen) {
    if (rows <= 0) return;
    int64_t macs = 0;
    for (const GemvJob& j : jobs) macs += rows * j.w->rows * j.w->cols;
    const int threads = macs >= kParallelGemmMacs ? omp_get_max_threads() : 1;
    if (widen.size() < static_cast<size_t>(threads)) widen.resize(static_cast<size_t>(threads));
    // Chunks of output features (rows of W) of every job, about three per thread in all,
    // largest first, taken dynamically (small jobs fill in beside large ones; a thread slowed
    // down by another process on its core does not hold the others up).
    constexpr int64_t kAlign = 16, kMinRows = 64;
    const int64_t target = std::max<int64_t>(1, macs / (3 * threads));
    chunks.clear();
    for (size_t k = 0; k < jobs.size(); ++k) {
        const QMatrix& m = *jobs[k].w;
        const int64_t per_row = std::max<int64_t>(1, rows * m.cols);
        const int64_t step = std::max(kMinRows, (target / per_row + kAlign - 1) / kAlign * kAlign);
        for (int64_t r = 0; r < m.rows; r += step)
            chunks.push_back({static_cast<int32_t>(k), r, std::min(m.rows, r + step)});
    }
    std::stable_sort(chunks.begin(), chunks.end(), [&](const GemvTile& a, const GemvTile& b) {
        return (a.r1 - a.r0) * jobs[static_cast<size_t>(a.job)].w->cols >
               (b.r1 - b.r0) * jobs[static_cast<size_t>(b.job)].w->cols;
    });
    const auto n = static_cast<int64_t>(chunks.size());
    // Each chunk: widen its rows (bf16, int8) tile by tile into the thread's buffer, a one-thread
    // sgemm per tile, then the epilogue on its columns. No BLAS threads.
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t ci = 0; ci < n; ++ci) {
        const GemvTile& c = chunks[static_cast<size_t>(ci)];
        const GemvJob& j = jobs[static_cast<size_t>(c.job)];
        const QMatrix& m = *j.w;
        const float beta = j.ep == Epilogue::add ? 1.f : 0.f;
        const int64_t a = c.r0, b = c.r1;
        if (m.format == WeightFormat::f32) {
            sgemm_rows(rows, b - a, m.cols, j.x, j.ldx, m.f32() + a * m.cols, beta, j.y + a, j.ldy);
        } else {
            const int64_t tile =
                std::clamp<int64_t>(kWidenFloats / std::max<int64_t>(1, m.cols), 16, b - a);
            float* buf = widen[static_cast<size_t>(omp_get_thread_num())].get(
                static_cast<size_t>(tile * m.cols));
            for (int64_t r0 = a; r0 < b; r0 += tile) {
                const int64_t r1 = std::min(b, r0 + tile);
                m.rows_to_f32(r0, r1, buf);
                sgemm_rows(rows, r1 - r0, m.cols, j.x, j.ldx, buf, beta, j.y + r0, j.ldy);
            }
        }
        if (j.ep == Epilogue::relu2) relu2_cols(j.y + a, rows, b - a, j.ldy);
    }
}

void linear_jobs(std::span<const GemvJob> jobs, int64_t rows, std::vector<GemvTile>& tiles,
                 std::vector<Scratch>& widen) {
    if (rows < kGemvMaxRows)
        gemv(jobs, rows, tiles);
    else
        linear_rows(jobs, rows, tiles, widen);
}

}  // namespace goose::infer::detail
