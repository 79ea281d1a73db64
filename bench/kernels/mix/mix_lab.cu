// Lab of token_mix's backward kernel (mix_bwd_v of src/ops/cuda/rwkv7_fused_vec.cu, included
// here) at the RWKV-7 time mix's shape: six mixes, seven gradients (v: the value's and the v
// LoRA's). Times the kernel variants (stages, channels per thread) against the old shape of the
// work (six gradients after a separate add of v's two) and a streaming kernel that moves the same
// bytes (the bandwidth limit), cold (inputs out of L2) and warm (the gradients and x just
// rewritten, as inside a training step), and checks every variant against the default one.
//   bash bench/kernels/mix/run.sh [ROOT] [B T C]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../../src/ops/cuda/rwkv7_fused_vec.cu"

namespace goose::cuda_detail {
void cuda_fail(cudaError_t err, const char* expr, const char* file, int line) {
    std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(err), file, line,
                 expr);
    std::exit(1);
}
}  // namespace goose::cuda_detail

namespace {

using goose::cuda_util::bf16;
namespace ck = goose::models::fused::cuda_kernels;

// out = Σ_k in[k] (K bf16 tensors of n elements, 16-byte loads): the bytes of the backward
// (8 read, 1 written) at streaming speed.
template <int K>
__global__ void stream_sum(const uint4* const* in, uint4* out, int64_t n16) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n16;
         i += int64_t(gridDim.x) * blockDim.x) {
        float s[8] = {};
#pragma unroll
        for (int k = 0; k < K; ++k) {
            const uint4 q = __ldcs(in[k] + i);
            float v[8];
            goose::cuda_util::unpack(q, v);
#pragma unroll
            for (int j = 0; j < 8; ++j) s[j] += v[j];
        }
        uint4 o;
        uint32_t* w = reinterpret_cast<uint32_t*>(&o);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const __nv_bfloat162 h = __floats2bfloat162_rn(s[2 * j], s[2 * j + 1]);
            w[j] = *reinterpret_cast<const uint32_t*>(&h);
        }
        __stcs(out + i, o);
    }
}

// Rewrites K bf16 tensors in place (read, write back), as the GEMMs that make the gradients
// leave them: the last written still in L2 when the backward kernel runs.
__global__ void touch(uint4* const* t, int K, int64_t n16) {
    for (int k = 0; k < K; ++k)
        for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n16;
             i += int64_t(gridDim.x) * blockDim.x) {
            uint4 q = t[k][i];
            q.x ^= 0u;
            t[k][i] = q;
        }
}

struct Timer {
    cudaEvent_t a, b;
    Timer() {
        cudaEventCreate(&a);
        cudaEventCreate(&b);
    }
    // median time of f over reps runs, each after before() (not timed)
    static void nothing() {}
    template <class F, class P = void (*)()>
    float us(F&& f, P before = nothing, int reps = 30) {
        f();
        f();
        std::vector<float> t;
        for (int r = 0; r < reps; ++r) {
            before();
            cudaEventRecord(a);
            f();
            cudaEventRecord(b);
            cudaEventSynchronize(b);
            float ms = 0;
            cudaEventElapsedTime(&ms, a, b);
            t.push_back(ms * 1000.f);
        }
        std::sort(t.begin(), t.end());
        return t[t.size() / 2];
    }
};

std::vector<float> to_host(const bf16* d, size_t n) {
    std::vector<bf16> h(n);
    cudaMemcpy(h.data(), d, n * sizeof(bf16), cudaMemcpyDeviceToHost);
    std::vector<float> f(n);
    for (size_t i = 0; i < n; ++i) f[i] = __bfloat162float(h[i]);
    return f;
}

double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
    double w = 0, s = 1e-30;
    for (size_t i = 0; i < a.size(); ++i) {
        w = std::max(w, double(std::fabs(a[i] - b[i])));
        s = std::max(s, double(std::fabs(b[i])));
    }
    return w / s;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace goose::models::fused::cuda_kernels;
    const int64_t B = argc > 3 ? std::atoll(argv[1]) : 16, Tn = argc > 3 ? std::atoll(argv[2]) : 512;
    const int C = argc > 3 ? std::atoi(argv[3]) : 768;
    const int64_t rows = B * Tn, n = rows * C;
    const int M = 6, G = 7;
    std::printf("mix_lab B%lld T%lld C%d bf16: 6 mixes, 7 gradients (two on mix 3)\n",
                (long long)B, (long long)Tn, C);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.f, 1.f);
    auto dev = [&](size_t count, float std) {
        std::vector<bf16> h(count);
        for (auto& v : h) v = __float2bfloat16(nd(rng) * std);
        bf16* d = nullptr;
        GOOSE_CUDA_CHECK(cudaMalloc(&d, count * sizeof(bf16)));
        cudaMemcpy(d, h.data(), count * sizeof(bf16), cudaMemcpyHostToDevice);
        return d;
    };
    bf16* x = dev(n, 1.f);
    bf16* prev = dev(B * C, 1.f);
    bf16* mu[M];
    for (auto& m : mu) m = dev(C, 0.5f);
    bf16* g[G];
    for (auto& t : g) t = dev(n, 1.f);
    bf16 *dx = nullptr, *dprev = nullptr, *gsum = nullptr;
    cudaMalloc(&dx, n * 2);
    cudaMalloc(&dprev, B * C * 2);
    cudaMalloc(&gsum, n * 2);
    float* part = nullptr;
    cudaMalloc(&part, size_t(4096) * M * C * 4);

    MixArgsV<bf16> a{};
    a.x = x;
    a.prev = prev;
    for (int m = 0; m < M; ++m) a.mu[m] = mu[m];
    // gradients grouped by mix: 0 1 2 3 3' 4 5
    const int order[G] = {0, 1, 2, 3, 6, 4, 5};
    for (int k = 0; k < G; ++k) a.g[k] = g[order[k]];
    const int first[] = {0, 1, 2, 3, 5, 6, 7, 7, 7};
    for (int m = 0; m <= kMaxMix; ++m) a.g_first[m] = first[m];
    a.G = G;
    a.dx = dx;
    a.dprev = dprev;
    a.part = part;
    a.M = M;
    a.rows = rows;
    a.Tn = Tn;
    a.C = C;

    Timer tm;
    struct Row {
        std::string name;
        float us, warm_us;
        double bytes;
        double err;
    };
    // the warm L2 state: x read (the mixes' rebuild) and the gradients just written, in order
    uint4** touched = nullptr;
    cudaMalloc(&touched, 8 * sizeof(void*));
    {
        const void* t[8] = {g[0], g[1], g[2], g[3], g[6], g[4], g[5], x};
        cudaMemcpy(touched, t, sizeof(t), cudaMemcpyHostToDevice);
    }
    const int tblocks = goose::cuda_util::num_sms() * 8;
    auto warm = [&] { touch<<<tblocks, 256>>>(touched, 8, n / 8); };
    std::vector<Row> table;
    const double mb_new = double(n) * 2 * (1 + G + 1);  // x, 7 g read; dx written
    const double mb_old = double(n) * 2 * (1 + 6 + 1);

    auto run_variant = [&](const char* name, auto kernel, int V, int smem_per_thread,
                           size_t extra, MixArgsV<bf16> args, double bytes,
                           std::vector<float>* keep) {
        const Plan pl = make_plan(kernel, rows, C, V, smem_per_thread, extra);
        args.L = pl.L;
        auto go = [&] { launch(kernel, pl, nullptr, args); };
        const float us = tm.us(go);
        const float wus = tm.us(go, warm);
        GOOSE_CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<float> out = to_host(dx, n);
        double err = 0;
        if (keep) {
            if (keep->empty())
                *keep = out;
            else
                err = max_rel(out, *keep);
        }
        std::printf("  %-34s %8.1f us (warm L2 %5.1f)  %6.0f GB/s  blocks %d x %d, L %d, smem %zu\n",
                    name, us, wus, bytes / us * 1e-3, pl.blocks, pl.threads, pl.L, pl.smem);
        table.push_back({name, us, wus, bytes, err});
        return us;
    };

    std::vector<float> ref;
    const size_t mus = size_t(M) * C * 4;
    // the default (what the library launches)
    run_variant("V8 S2 (default)", mix_bwd_v<bf16, 8, 6, 7, 2, false>, 8,
                smem_of<bf16, 8, 8, 2>(true), 0, a, mb_new, &ref);
    run_variant("V8 S2 mu in smem", mix_bwd_v<bf16, 8, 6, 7, 2, true>, 8,
                smem_of<bf16, 8, 8, 2>(true), mus, a, mb_new, &ref);
    run_variant("V8 S3 mu in smem", mix_bwd_v<bf16, 8, 6, 7, 3, true>, 8,
                smem_of<bf16, 8, 8, 3>(true), mus, a, mb_new, &ref);
    run_variant("V4 S2 mu in smem", mix_bwd_v<bf16, 4, 6, 7, 2, true>, 4,
                smem_of<bf16, 4, 8, 2>(true), mus, a, mb_new, &ref);
    run_variant("V4 S3 mu in smem", mix_bwd_v<bf16, 4, 6, 7, 3, true>, 4,
                smem_of<bf16, 4, 8, 3>(true), mus, a, mb_new, &ref);
    run_variant("V4 S3 (8-byte pieces)", mix_bwd_v<bf16, 4, 6, 7, 3, false>, 4,
                smem_of<bf16, 4, 8, 3>(true), 0, a, mb_new, &ref);
    run_variant("generic (MC 0, GK 10) V8 S2", mix_bwd_v<bf16, 8, 0, kMaxMixGrads, 2, false>, 8,
                smem_of<bf16, 8, 1 + kMaxMixGrads, 2>(true), 0, a, mb_new, &ref);

    // the old shape: v's two gradients added first (a bf16 pass), then six gradients
    MixArgsV<bf16> old = a;
    for (int k = 0; k < 6; ++k) old.g[k] = k == 3 ? gsum : g[k];
    const int first_old[] = {0, 1, 2, 3, 4, 5, 6, 6, 6};
    for (int m = 0; m <= kMaxMix; ++m) old.g_first[m] = first_old[m];
    old.G = 6;
    const uint4** addin = nullptr;
    cudaMalloc(&addin, 8 * sizeof(void*));
    const void* two[2] = {g[3], g[6]};
    cudaMemcpy(addin, two, sizeof(two), cudaMemcpyHostToDevice);
    const int sblocks = goose::cuda_util::num_sms() * 8;
    auto add = [&] {
        stream_sum<2><<<sblocks, 256>>>(addin, reinterpret_cast<uint4*>(gsum), n / 8);
    };
    const float add_us = tm.us(add), add_wus = tm.us(add, warm);
    std::printf("  %-34s %8.1f us (warm L2 %5.1f)  %6.0f GB/s\n",
                "old: add of v's two gradients", add_us, add_wus, 3.0 * n * 2 / add_us * 1e-3);
    std::vector<float> ref_old;
    const float old_us =
        run_variant("old: six gradients, V4 S3", mix_bwd_v<bf16, 4, 6, 6, 3, false>, 4,
                    smem_of<bf16, 4, 7, 3>(true), 0, old, mb_old, &ref_old);
    std::printf("  old total (add + kernel)           %8.1f us (warm L2 %5.1f)\n", add_us + old_us,
                add_wus + table.back().warm_us);
    std::printf("  old vs new default dx: max rel diff %.2e (bf16 sum vs f32 sum of v's two)\n",
                max_rel(ref_old, ref));

    // the bandwidth limit: the same bytes (8 tensors read, 1 written) at streaming speed
    const void* eight[8] = {x, g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
    cudaMemcpy(addin, eight, sizeof(eight), cudaMemcpyHostToDevice);
    const float lim = tm.us([&] {
        stream_sum<8><<<sblocks, 256>>>(addin, reinterpret_cast<uint4*>(gsum), n / 8);
    });
    std::printf("  %-34s %8.1f us  %6.0f GB/s\n", "stream 8 read + 1 write (limit)", lim,
                mb_new / lim * 1e-3);
    // the forward it pairs with
    {
        MixArgsV<bf16> f = a;
        bf16* outs[M];
        for (auto& o : outs) cudaMalloc(&o, n * 2);
        for (int m = 0; m < M; ++m) f.out[m] = outs[m];
        const Plan pl = make_plan(mix_fwd_v<bf16>, rows, C, 8, smem_of<bf16, 8, 1, kMixFwdStages>(false));
        f.L = pl.L;
        const float us = tm.us([&] { launch(mix_fwd_v<bf16>, pl, nullptr, f); });
        std::printf("  %-34s %8.1f us  %6.0f GB/s\n", "mix_fwd_v (6 mixes)", us,
                    double(n) * 2 * 7 / us * 1e-3);
        const float lim_w = tm.us([&] {
            stream_sum<1><<<sblocks, 256>>>(addin, reinterpret_cast<uint4*>(outs[0]), n / 8);
        });
        std::printf("  %-34s %8.1f us per 1 read + 1 write: x 6 = %.1f us\n",
                    "stream copy (fwd limit)", lim_w, 3.5 * lim_w);
    }
    GOOSE_CUDA_CHECK(cudaDeviceSynchronize());
    std::printf("\n%-34s %9s %9s %10s %9s %s\n", "variant", "us", "GB/s", "vs limit", "warm us",
                "dx vs default");
    for (const Row& r : table)
        std::printf("%-34s %9.1f %9.0f %9.2fx %9.1f %.1e\n", r.name.c_str(), r.us,
                    r.bytes / r.us * 1e-3, r.us / lim, r.warm_us, r.err);
    bool ok = true;
    for (const Row& r : table)
        if (r.name.rfind("old", 0) != 0 && r.err > 1e-2) ok = false;
    std::printf("check: %s\n", ok ? "all variants agree with the default (1e-2)" : "MISMATCH");
    return ok ? 0 : 1;
}
