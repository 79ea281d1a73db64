// GEMM shapes of the model zoo, timed through the linear op (fast CPU backend = OpenBLAS),
// against measured hardware limits.
#include "goose/bench/ops_bench.h"

#include <cstdio>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "goose/autograd/matmul.h"
#include "goose/bench/peak.h"
#include "goose/bench/timer.h"
#include "goose/core/rng.h"
#include "goose/core/threads.h"
#include "goose/io/atomic_file.h"

namespace goose::bench {

namespace {
struct GemmShape {
    const char* name;
    int64_t m, n, k;  // y (M, N) = x (M, K) · W (N, K)ᵀ
};

const GemmShape kShapes[] = {
    {"ICL 64x64, B*T=64*22", 1408, 64, 64},
    {"ICL 256x256, B*T=64*41", 2624, 256, 256},
    {"att 768x768, T=512", 512, 768, 768},
    {"ffn 768->3072, T=512", 512, 3072, 768},
    {"ffn 3072->768, T=512", 512, 768, 3072},
    {"head 768->65536, T=128", 128, 65536, 768},
    {"GEMV 768x768 (decode)", 1, 768, 768},
    {"GEMV head 65536x768 (decode)", 1, 65536, 768},
};
}  // namespace

void run_ops_bench(const OpsBenchConfig& cfg) {
    if (cfg.threads < 0) fail("bench ops: --threads must be >= 0");
    ThreadScope scope(cfg.threads > 0 ? cfg.threads : num_threads());
    const int nt = num_threads();
    std::printf("goose bench ops: %s\n", machine_summary().c_str());
    std::printf("measuring the machine: FMA peak on 1 thread and %d threads, copy bandwidth...\n", nt);
    std::fflush(stdout);
    const double peak1 = peak_gflops_f32(1), peak_all = peak_gflops_f32(nt);
    const double bw = copy_bandwidth_gbs(nt);
    std::printf("  f32 FMA peak: %.1f GFLOP/s (1 thread), %.1f GFLOP/s (%d threads); copy "
                "bandwidth %.1f GB/s\n\n", peak1, peak_all, nt, bw);

    std::printf("%-30s %6s %6s %5s %9s %9s %8s %8s %8s\n", "shape (f32, y = x Wᵀ)", "M", "N", "K",
                "ms", "GFLOP/s", "%peak", "GB/s W", "%copyBW");
    Rng rng(0, "bench-ops");
    ag::NoGradGuard ng;
    std::string json = fmt::format("{{\"machine\": \"{}\", \"threads\": {}, \"peak_gflops_1\": {:.2f}, "
                                   "\"peak_gflops_all\": {:.2f}, \"copy_gbs\": {:.2f}, \"shapes\": [",
                                   machine_summary(), nt, peak1, peak_all, bw);
    bool first = true;
    for (const GemmShape& s : kShapes) {
        Var x(Tensor::randn(Shape{s.m, s.k}, rng));
        Var w(Tensor::randn(Shape{s.n, s.k}, rng));
        const Timing t = time_fn([&] { (void)ag::linear(x, w); }, cfg.quick ? 1 : 3,
                                 cfg.quick ? 2 : 7, cfg.quick ? 0.0 : 0.5);
        const double flops = 2.0 * static_cast<double>(s.m * s.n * s.k);
        const double gflops = flops / t.median_s / 1e9;
        const double wbytes = static_cast<double>(s.n * s.k) * 4.0;
        const double gbs = wbytes / t.median_s / 1e9;
        std::printf("%-30s %6lld %6lld %5lld %9.3f %9.1f %7.1f%% %8.1f %7.1f%%\n", s.name,
                    (long long)s.m, (long long)s.n, (long long)s.k, t.median_s * 1e3, gflops,
                    100 * gflops / peak_all, gbs, 100 * gbs / bw);
        json += fmt::format("{}{{\"name\": \"{}\", \"m\": {}, \"n\": {}, \"k\": {}, \"median_ms\": {:.4f}, "
                            "\"min_ms\": {:.4f}, \"max_ms\": {:.4f}, \"gflops\": {:.2f}, "
                            "\"ratio_peak\": {:.4f}, \"weight_gbs\": {:.2f}}}",
                            first ? "" : ", ", s.name, s.m, s.n, s.k, t.median_s * 1e3,
                            t.min_s * 1e3, t.max_s * 1e3, gflops, gflops / peak_all, gbs);
        first = false;
    }
    json += "]}\n";
    std::printf("\n%%peak: against the measured all-thread FMA peak. GEMVs are bandwidth-bound: "
                "%%copyBW compares weight bytes per call / time with the copy bandwidth.\n");
    if (!cfg.json_out.empty()) {
        io::write_file_atomic(cfg.json_out, json);
        std::printf("results: %s\n", cfg.json_out.c_str());
    }
}

}  // namespace goose::bench
