// Measured hardware limits: FMA throughput with independent accumulator chains (enough to
// cover FMA latency x pipes), and large-buffer copy bandwidth.
#include "goose/bench/peak.h"

#include <omp.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "ops/cpu/simd.h"

namespace goose::bench {

namespace {
constexpr int kChains = 12;

// 2 * kLanes * kChains flops per iteration. Returns a value so the work is not optimised away.
__attribute__((noinline)) float fma_chains(int64_t iters, float seed) {
    using namespace simd;
    VecF acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = broadcast(seed + static_cast<float>(c));
    const VecF m = broadcast(0.999999f), a = broadcast(1e-7f);
    for (int64_t i = 0; i < iters; ++i)
        for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], m, a);
    VecF s = acc[0];
    for (int c = 1; c < kChains; ++c) s = add(s, acc[c]);
    return reduce_add(s);
}
}  // namespace

double peak_gflops_f32(int threads) {
    const int64_t iters = 20'000'000;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
        float sink = 0;
        const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += fma_chains(iters, static_cast<float>(omp_get_thread_num()));
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double flops = 2.0 * simd::kLanes * kChains * static_cast<double>(iters) * threads;
        if (sink != sink) return 0;  // keeps the result alive (never NaN)
        best = std::max(best, flops / s / 1e9);
    }
    return best;
}

double copy_bandwidth_gbs(int threads) {
    const size_t n = size_t(256) << 20;  // 256 MiB each way: far beyond any cache
    std::vector<char> src(n, 1), dst(n, 0);
    double best = 0;
    for (int rep = 0; rep < 4; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
        {
            const int nt = omp_get_num_threads(), id = omp_get_thread_num();
            const size_t chunk = n / static_cast<size_t>(nt);
            const size_t begin = chunk * static_cast<size_t>(id);
            const size_t len = id == nt - 1 ? n - begin : chunk;
            std::memcpy(dst.data() + begin, src.data() + begin, len);
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, 2.0 * static_cast<double>(n) / s / 1e9);
    }
    return best;
}

}  // namespace goose::bench
