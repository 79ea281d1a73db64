// Standalone check + timing of the CUDA GEMM layer (cuBLASLt), the multi-tensor AdamW kernel and
// the fused head + cross-entropy, on raw pointers (no goose library). Build and run:
// `make build CUDA=1 TARGETS=gemm_bench && build-cuda/gemm_bench`, or with plain nvcc
// `bash bench/kernels/gemm/run.sh .` (from the repository root).
// Checks against double-precision host references (fresh random inputs, poisoned outputs),
// then times the RWKV-7 L12 C768 V65536 training GEMMs (B*T = 32768 rows) in bf16 beside a
// bf16 8192^3 product on the same device. Exit code 1 when a check fails.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/cuda/adamw_kernel.h"
#include "ops/cuda/gemm_lt.h"
#include "ops/cuda/head_ce_kernel.h"

using goose::gemm_lt::GemmArgs;
using goose::gemm_lt::GemmType;

#define CK(call)                                                                                 \
    do {                                                                                         \
        cudaError_t e_ = (call);                                                                 \
        if (e_ != cudaSuccess) {                                                                 \
            std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
            std::exit(2);                                                                        \
        }                                                                                        \
    } while (0)

static int g_failures = 0;
static std::mt19937_64 g_rng(12345);

static void report(const char* what, double err, double tol) {
    const bool ok = std::isfinite(err) && err <= tol;
    if (!ok) ++g_failures;
    std::printf("%-58s err %.3e tol %.1e %s\n", what, err, tol, ok ? "ok" : "FAIL");
}

static float bf16_round(float f) {
    return __bfloat162float(__float2bfloat16_rn(f));
}

static std::vector<float> randv(size_t n, float scale = 1.f) {
    std::normal_distribution<float> d(0.f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g_rng);
    return v;
}

// Device buffer of host floats in f32, f64 or bf16.
static void* upload(const std::vector<float>& v, GemmType t) {
    void* p = nullptr;
    const size_t n = v.size();
    if (t == GemmType::f32) {
        CK(cudaMalloc(&p, std::max<size_t>(n, 1) * 4));
        CK(cudaMemcpy(p, v.data(), n * 4, cudaMemcpyHostToDevice));
    } else if (t == GemmType::f64) {
        std::vector<double> d(v.begin(), v.end());
        CK(cudaMalloc(&p, std::max<size_t>(n, 1) * 8));
        CK(cudaMemcpy(p, d.data(), n * 8, cudaMemcpyHostToDevice));
    } else {
        std::vector<__nv_bfloat16> h(n);
        for (size_t i = 0; i < n; ++i) h[i] = __float2bfloat16_rn(v[i]);
        CK(cudaMalloc(&p, std::max<size_t>(n, 1) * 2));
        CK(cudaMemcpy(p, h.data(), n * 2, cudaMemcpyHostToDevice));
    }
    return p;
}
static std::vector<double> download(const void* p, size_t n, GemmType t) {
    std::vector<double> out(n);
    if (t == GemmType::f32) {
        std::vector<float> h(n);
        CK(cudaMemcpy(h.data(), p, n * 4, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; ++i) out[i] = h[i];
    } else if (t == GemmType::f64) {
        CK(cudaMemcpy(out.data(), p, n * 8, cudaMemcpyDeviceToHost));
    } else {
        std::vector<__nv_bfloat16> h(n);
        CK(cudaMemcpy(h.data(), p, n * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; ++i) out[i] = __bfloat162float(h[i]);
    }
    return out;
}
static size_t tsize(GemmType t) {
    return t == GemmType::f64 ? 8 : t == GemmType::f32 ? 4 : 2;
}

static double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return NAN;
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// ---- GEMM checks ------------------------------------------------------------------------------

static void check_gemm(int64_t m, int64_t n, int64_t k, bool ta, bool tb, int64_t batch,
                       bool b_shared, GemmType ab, GemmType ct, double beta, bool bias) {
    const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;  // padded rows
    const int64_t rows_a = ta ? k : m, rows_b = tb ? n : k;
    const int64_t sa = rows_a * lda, sb = b_shared ? 0 : rows_b * ldb, sc = m * ldc;
    auto ha = randv(size_t(sa * batch)), hb = randv(size_t(rows_b * ldb * (b_shared ? 1 : batch)));
    auto hc = randv(size_t(sc * batch)), hbias = randv(size_t(n));
    auto round = [&](std::vector<float>& v, GemmType t) {
        if (t == GemmType::bf16)
            for (auto& x : v) x = bf16_round(x);
    };
    round(ha, ab), round(hb, ab), round(hc, ct), round(hbias, ct);
    void *da = upload(ha, ab), *db = upload(hb, ab), *dc = upload(hc, ct);
    void* dbias = bias ? upload(hbias, ct) : nullptr;
    GemmArgs g;
    g.m = m, g.n = n, g.k = k, g.trans_a = ta, g.trans_b = tb;
    g.a = da, g.lda = lda, g.stride_a = sa;
    g.b = db, g.ldb = ldb, g.stride_b = sb;
    g.c = dc, g.ldc = ldc, g.stride_c = sc;
    g.batch = batch, g.ab_type = ab, g.c_type = ct, g.alpha = 1.5, g.beta = beta, g.bias = dbias;
    goose::gemm_lt::gemm(g, nullptr);
    CK(cudaDeviceSynchronize());
    const auto out = download(dc, hc.size(), ct);
    std::vector<double> ref(hc.size()), got(hc.size());
    size_t cnt = 0;
    for (int64_t bt = 0; bt < batch; ++bt)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                double acc = 0;
                for (int64_t q = 0; q < k; ++q) {
                    const double av = ha[bt * sa + (ta ? q * lda + i : i * lda + q)];
                    const double bv = hb[bt * sb + (tb ? j * ldb + q : q * ldb + j)];
                    acc += av * bv;
                }
                const size_t ci = size_t(bt * sc + i * ldc + j);
                double r = 1.5 * acc + beta * hc[ci];
                if (bias) r += hbias[j];
                ref[cnt] = r;
                got[cnt] = out[ci];
                ++cnt;
            }
    ref.resize(cnt), got.resize(cnt);
    // Padding between rows must be untouched.
    double pad_err = 0;
    for (int64_t bt = 0; bt < batch; ++bt)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = n; j < ldc; ++j) {
                const size_t ci = size_t(bt * sc + i * ldc + j);
                pad_err = std::max(pad_err, std::fabs(out[ci] - hc[ci]));
            }
    const char* tn[] = {"f32", "f64", "bf16"};
    char what[200];
    std::snprintf(what, sizeof what, "gemm %s->%s m%ld n%ld k%ld ta%d tb%d b%ld%s beta%.0f%s",
                  tn[int(ab)], tn[int(ct)], long(m), long(n), long(k), ta, tb, long(batch),
                  b_shared ? "(shared)" : "", beta, bias ? " bias" : "");
    const double tol = ab == GemmType::f64 ? 1e-12 : ab == GemmType::f32 ? 1e-5 : 1e-2;
    report(what, std::max(rel_err(got, ref), pad_err), tol);
    CK(cudaFree(da));
    CK(cudaFree(db));
    CK(cudaFree(dc));
    if (dbias) CK(cudaFree(dbias));
}

// ---- AdamW check ------------------------------------------------------------------------------

// The CPU optimizer's formula (src/optim/adamw.cpp) with the same fused multiply-adds.
static void adam_host(float* p, const float* g, float* m, float* v, int64_t n,
                      const goose::adamw_cuda::AdamEntry& e,
                      const goose::adamw_cuda::AdamShared& s) {
    for (int64_t i = 0; i < n; ++i) {
        float gi = g[i];
        if (e.any_wd) {
            if (s.decoupled)
                p[i] *= e.decay;
            else
                gi = std::fma(e.wd, p[i], gi);
        }
        m[i] = std::fma(s.one_minus_beta1, gi - m[i], m[i]);
        v[i] = std::fma(v[i], s.beta2, s.one_minus_beta2 * gi * gi);
        const float denom = std::sqrt(v[i]) / s.bc2_sqrt + s.eps;
        p[i] -= e.step_size * m[i] / denom;
    }
}

static void check_adam(bool decoupled, bool g_bf16) {
    using namespace goose::adamw_cuda;
    const std::vector<int64_t> sizes = {1, 7, 33, 4097, 8192, 8193, 100003, 3};
    const int nt = int(sizes.size());
    std::vector<std::vector<float>> hp(nt), hm(nt), hv(nt), hg(nt);
    std::vector<float*> dp(nt), dm(nt), dv(nt);
    std::vector<void*> dg(nt), dbf(nt);
    for (int t = 0; t < nt; ++t) {
        const size_t n = size_t(sizes[t]);
        hp[t] = randv(n), hm[t] = std::vector<float>(n, 0.f), hv[t] = std::vector<float>(n, 0.f);
        dp[t] = static_cast<float*>(upload(hp[t], GemmType::f32));
        dm[t] = static_cast<float*>(upload(hm[t], GemmType::f32));
        dv[t] = static_cast<float*>(upload(hv[t], GemmType::f32));
        CK(cudaMalloc(&dbf[t], n * 2 + 2));
        dg[t] = nullptr;
    }
    const double beta1 = 0.9, beta2 = 0.99, eps = 1e-8;
    double max_err = 0, bf_err = 0;
    for (int step = 1; step <= 5; ++step) {
        const double bc1 = 1 - std::pow(beta1, step), bc2 = 1 - std::pow(beta2, step);
        AdamShared s{float(1 - beta1), float(beta2),          float(1 - beta2),
                     float(eps),       float(std::sqrt(bc2)), decoupled};
        std::vector<AdamEntry> es(nt);
        for (int t = 0; t < nt; ++t) {
            const size_t n = size_t(sizes[t]);
            hg[t] = randv(n, 0.1f);
            if (g_bf16)
                for (auto& x : hg[t]) x = bf16_round(x);
            if (dg[t]) CK(cudaFree(dg[t]));
            dg[t] = upload(hg[t], g_bf16 ? GemmType::bf16 : GemmType::f32);
            const double lr = 1e-3 * (t % 2 ? 2.0 : 1.0), wd = t % 3 ? 0.1 : 0.0;
            AdamEntry& e = es[t];
            e.p = dp[t], e.g = dg[t], e.m = dm[t], e.v = dv[t], e.p_bf16 = dbf[t];
            e.n = sizes[t], e.decay = float(1 - lr * wd), e.wd = float(wd),
            e.step_size = float(lr / bc1), e.any_wd = wd != 0, e.g_bf16 = g_bf16;
            adam_host(hp[t].data(), hg[t].data(), hm[t].data(), hv[t].data(), sizes[t], e, s);
        }
        adam_step(es.data(), nt, s, nullptr);
        CK(cudaDeviceSynchronize());
        for (int t = 0; t < nt; ++t) {
            const size_t n = size_t(sizes[t]);
            std::vector<float> p(n), m(n), v(n);
            std::vector<__nv_bfloat16> b(n);
            CK(cudaMemcpy(p.data(), dp[t], n * 4, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(m.data(), dm[t], n * 4, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(v.data(), dv[t], n * 4, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(b.data(), dbf[t], n * 2, cudaMemcpyDeviceToHost));
            for (size_t i = 0; i < n; ++i) {
                max_err = std::max<double>(max_err, std::fabs(p[i] - hp[t][i]));
                max_err = std::max<double>(max_err, std::fabs(m[i] - hm[t][i]));
                max_err = std::max<double>(max_err, std::fabs(v[i] - hv[t][i]));
                bf_err =
                    std::max<double>(bf_err, std::fabs(__bfloat162float(b[i]) - bf16_round(p[i])));
            }
        }
    }
    char what[120];
    std::snprintf(what, sizeof what, "adamw %s g=%s, 8 tensors x 5 steps (bitwise)",
                  decoupled ? "decoupled" : "L2", g_bf16 ? "bf16" : "f32");
    report(what, max_err + bf_err, 0.0);
    for (int t = 0; t < nt; ++t) {
        CK(cudaFree(dp[t]));
        CK(cudaFree(dm[t]));
        CK(cudaFree(dv[t]));
        CK(cudaFree(dg[t]));
        CK(cudaFree(dbf[t]));
    }
}

// ---- head + cross-entropy check ---------------------------------------------------------------

static void check_head_ce(int64_t rows, int64_t dim, int64_t vocab, GemmType type, bool l2wrap,
                          int64_t chunk, bool i64, bool row_cache = false) {
    using namespace goose::head_ce_cuda;
    auto hx = randv(size_t(rows * dim)), hw = randv(size_t(vocab * dim), 0.5f);
    if (type == GemmType::bf16) {
        for (auto& x : hx) x = bf16_round(x);
        for (auto& x : hw) x = bf16_round(x);
    }
    std::uniform_int_distribution<int64_t> td(0, vocab - 1);
    std::vector<int64_t> tg(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) tg[size_t(r)] = r % 5 == 3 ? -100 : td(g_rng);
    // Host reference in double.
    const double gy = 0.75;
    std::vector<double> dlog(static_cast<size_t>(vocab)), rdx(size_t(rows * dim), 0.0),
        rdw(size_t(vocab * dim), 0.0);
    double loss = 0;
    int64_t count = 0;
    for (auto t : tg) count += t != -100;
    for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> lg(static_cast<size_t>(vocab));
        double mx = -INFINITY;
        int64_t am = 0;
        for (int64_t v = 0; v < vocab; ++v) {
            double acc = 0;
            for (int64_t c = 0; c < dim; ++c) acc += double(hx[r * dim + c]) * hw[v * dim + c];
            if (type == GemmType::bf16) acc = bf16_round(float(acc));  // logits stored in bf16
            lg[size_t(v)] = acc;
            if (acc > mx) mx = acc, am = v;
        }
        double se = 0;
        for (double l : lg) se += std::exp(l - mx);
        const double lse = mx + std::log(se);
        const int64_t t = tg[size_t(r)];
        if (t != -100) loss += lse - lg[size_t(t)];
        for (int64_t v = 0; v < vocab; ++v) {
            double g = t == -100 ? 0 : gy / count * (std::exp(lg[size_t(v)] - lse) - (v == t));
            if (l2wrap && v == am) g += gy * mx * 1e-4 / rows;
            dlog[size_t(v)] = g;
        }
        for (int64_t v = 0; v < vocab; ++v)
            for (int64_t c = 0; c < dim; ++c) {
                rdx[size_t(r * dim + c)] += dlog[size_t(v)] * hw[v * dim + c];
                rdw[size_t(v * dim + c)] += dlog[size_t(v)] * hx[r * dim + c];
            }
    }
    loss /= std::max<int64_t>(count, 1);
    HeadCeArgs a;
    a.rows = rows, a.dim = dim, a.vocab = vocab, a.type = type;
    a.x = upload(hx, type), a.w = upload(hw, type);
    std::vector<int32_t> t32(tg.begin(), tg.end());
    void* dt = nullptr;
    CK(cudaMalloc(&dt, tg.size() * 8));
    CK(cudaMemcpy(dt, i64 ? static_cast<const void*>(tg.data()) : t32.data(),
                  tg.size() * (i64 ? 8 : 4), cudaMemcpyHostToDevice));
    a.targets = dt, a.targets_i64 = i64, a.l2wrap = l2wrap, a.gy = gy, a.chunk_rows = chunk;
    a.row_cache = row_cache;
    CK(cudaMalloc(&a.dx, size_t(rows * dim) * tsize(type)));
    CK(cudaMemset(a.dx, 0xff, size_t(rows * dim) * tsize(type)));  // poison (NaN)
    CK(cudaMalloc(reinterpret_cast<void**>(&a.dw), size_t(vocab * dim) * 4));
    CK(cudaMemset(a.dw, 0xff, size_t(vocab * dim) * 4));
    CK(cudaMalloc(&a.workspace, workspace_bytes(a)));
    CK(cudaMalloc(reinterpret_cast<void**>(&a.loss), 4));
    CK(cudaMalloc(reinterpret_cast<void**>(&a.status), 8));
    head_ce(a, nullptr);
    CK(cudaDeviceSynchronize());
    float gl = 0;
    int32_t st[2];
    CK(cudaMemcpy(&gl, a.loss, 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(st, a.status, 8, cudaMemcpyDeviceToHost));
    const auto gdx = download(a.dx, size_t(rows * dim), type);
    const auto gdw = download(a.dw, size_t(vocab * dim), GemmType::f32);
    const double tol = type == GemmType::f32 ? 1e-5 : 2e-2;
    char what[160];
    std::snprintf(what, sizeof what, "head_ce %s N%ld C%ld V%ld chunk%ld%s%s%s",
                  type == GemmType::f32 ? "f32" : "bf16", long(rows), long(dim), long(vocab),
                  long(chunk), l2wrap ? " l2wrap" : "", i64 ? " i64" : " i32",
                  row_cache ? " row-cache" : "");
    std::string w = what;
    report((w + " loss").c_str(),
           std::fabs(gl - loss) / std::fabs(loss) + (st[0] != count) + (st[1] != 0),
           type == GemmType::f32 ? 1e-6 : 1e-3);
    report((w + " dx").c_str(), rel_err(gdx, rdx), tol);
    report((w + " dw").c_str(), rel_err(gdw, rdw), tol);
    CK(cudaFree(const_cast<void*>(a.x)));
    CK(cudaFree(const_cast<void*>(a.w)));
    CK(cudaFree(dt));
    CK(cudaFree(a.dx));
    CK(cudaFree(a.dw));
    CK(cudaFree(a.workspace));
    CK(cudaFree(a.loss));
    CK(cudaFree(a.status));
}

// ---- timing -----------------------------------------------------------------------------------

template <class F>
static double median_ms(F&& f, int reps = 20) {
    for (int i = 0; i < 3; ++i) f();
    CK(cudaDeviceSynchronize());
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    std::vector<float> ts;
    for (int i = 0; i < reps; ++i) {
        CK(cudaEventRecord(a));
        f();
        CK(cudaEventRecord(b));
        CK(cudaEventSynchronize(b));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, a, b));
        ts.push_back(ms);
    }
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    std::sort(ts.begin(), ts.end());
    return ts[ts.size() / 2];
}

struct Row {
    std::string name;
    double ms, tflops;
};
static std::vector<Row> g_rows;

// C (m, n) = op(A) op(B) in bf16 (C in c_type), fresh random inputs.
static double time_gemm(const char* name, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
                        GemmType ct, GemmType ab = GemmType::bf16) {
    void *a, *b, *c;
    const size_t na = size_t(m * k), nb = size_t(k * n), nc = size_t(m * n), es = tsize(ab);
    CK(cudaMalloc(&a, na * es));
    CK(cudaMalloc(&b, nb * es));
    CK(cudaMalloc(&c, nc * tsize(ct)));
    {  // random values (never zeros): a host block of normals repeated over the buffers
        const auto h = randv(std::min<size_t>(std::max(na, nb), size_t(1) << 22));
        void* blk = upload(h, ab);
        for (size_t off = 0; off < na; off += h.size())
            CK(cudaMemcpy(static_cast<char*>(a) + off * es, blk, std::min(h.size(), na - off) * es,
                          cudaMemcpyDeviceToDevice));
        for (size_t off = 0; off < nb; off += h.size())
            CK(cudaMemcpy(static_cast<char*>(b) + off * es, blk, std::min(h.size(), nb - off) * es,
                          cudaMemcpyDeviceToDevice));
        CK(cudaFree(blk));
    }
    GemmArgs g;
    g.m = m, g.n = n, g.k = k, g.trans_a = ta, g.trans_b = tb;
    g.a = a, g.lda = ta ? m : k, g.b = b, g.ldb = tb ? k : n, g.c = c, g.ldc = n;
    g.ab_type = ab, g.c_type = ct;
    const double ms = median_ms([&] { goose::gemm_lt::gemm(g, nullptr); });
    const double tf = 2.0 * double(m) * double(n) * double(k) / (ms * 1e-3) / 1e12;
    g_rows.push_back({name, ms, tf});
    CK(cudaFree(a));
    CK(cudaFree(b));
    CK(cudaFree(c));
    return ms;
}

template <class F>
static void guarded(const char* what, F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        ++g_failures;
        std::printf("%-58s EXCEPTION: %s\n", what, e.what());
    }
}

static int run(int argc, char** argv) {
    cudaDeviceProp prop{};
    CK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);

    // GEMM checks: odd shapes, every transpose pair, batched, shared B, beta, bias, k = 0.
    for (GemmType t : {GemmType::f32, GemmType::f64, GemmType::bf16})
        for (int ta = 0; ta < 2; ++ta)
            for (int tb = 0; tb < 2; ++tb) {
                guarded("gemm", [&] { check_gemm(7, 33, 5, ta, tb, 1, false, t, t, 0, false); });
                guarded("gemm", [&] { check_gemm(1, 7, 33, ta, tb, 1, false, t, t, 0, false); });
                guarded("gemm", [&] { check_gemm(33, 1, 64, ta, tb, 3, false, t, t, 0, false); });
            }
    guarded("gemm", [&] {
        check_gemm(65, 40, 129, false, true, 4, true, GemmType::f32, GemmType::f32, 0, false);
    });
    guarded("gemm", [&] {
        check_gemm(65, 40, 129, true, false, 2, false, GemmType::bf16, GemmType::bf16, 0, false);
    });
    guarded("gemm", [&] {
        check_gemm(64, 48, 96, false, false, 1, false, GemmType::bf16, GemmType::f32, 1, false);
    });
    guarded("gemm", [&] {
        check_gemm(64, 48, 96, true, false, 1, false, GemmType::bf16, GemmType::f32, 0.5, false);
    });
    guarded("gemm", [&] {
        check_gemm(31, 17, 9, false, true, 1, false, GemmType::f32, GemmType::f32, 0, true);
    });
    guarded("gemm", [&] {
        check_gemm(32, 64, 16, false, true, 1, false, GemmType::bf16, GemmType::bf16, 0, true);
    });
    guarded("gemm", [&] {
        check_gemm(5, 6, 0, false, false, 2, false, GemmType::f32, GemmType::f32, 0.5, false);
    });
    guarded("gemm", [&] {
        check_gemm(5, 6, 0, false, false, 1, false, GemmType::f32, GemmType::f32, 0, true);
    });
    guarded("gemm", [&] {
        check_gemm(257, 300, 1000, false, false, 1, false, GemmType::f32, GemmType::f32, 0, false);
    });

    guarded("adam", [&] { check_adam(true, false); });
    guarded("adam", [&] { check_adam(false, false); });
    guarded("adam", [&] { check_adam(true, true); });

    guarded("head_ce", [&] { check_head_ce(37, 24, 1000, GemmType::f32, true, 16, true); });
    guarded("head_ce", [&] { check_head_ce(37, 24, 1001, GemmType::f32, false, 0, false); });
    guarded("head_ce", [&] { check_head_ce(70, 64, 4096, GemmType::bf16, true, 32, false); });
    guarded("head_ce", [&] { check_head_ce(9, 16, 333, GemmType::bf16, true, 4, true); });
    guarded("head_ce", [&] { check_head_ce(70, 64, 4096, GemmType::bf16, true, 32, false, true); });
    guarded("head_ce", [&] { check_head_ce(5, 16, 65536, GemmType::bf16, true, 2, true, true); });
    guarded("head_ce", [&] { check_head_ce(11, 8, 1000, GemmType::bf16, false, 0, false, true); });
    std::printf("checks: %d failure(s)\n", g_failures);
    if (argc > 1 && std::strcmp(argv[1], "--check") == 0) return g_failures ? 1 : 0;

    // Timing: bf16 in, fp32 accumulate; activations bf16, weight gradients f32.
    const int64_t N = 32768;
    time_gemm("bf16 8192^3 (peak reference)", 8192, 8192, 8192, false, true, GemmType::bf16);
    struct Lin {
        const char* name;
        int64_t in, out;
    } lins[] = {{"768x768", 768, 768},
                {"768->3072", 768, 3072},
                {"3072->768", 3072, 768},
                {"head 768->65536", 768, 65536}};
    for (const Lin& l : lins) {
        std::string base = l.name;
        time_gemm((base + " fwd  y=x wT").c_str(), N, l.out, l.in, false, true, GemmType::bf16);
        time_gemm((base + " bwd  dx=gy w").c_str(), N, l.in, l.out, false, false, GemmType::bf16);
        time_gemm((base + " bwd  dw=gyT x (f32)").c_str(), l.out, l.in, N, true, false,
                  GemmType::f32);
    }

    // Memory ceiling: a 2 GiB device-to-device copy (bytes read + bytes written).
    double copy_gbs = 0;
    {
        const size_t bytes = size_t(2) << 30;
        void *src, *dst;
        CK(cudaMalloc(&src, bytes));
        CK(cudaMalloc(&dst, bytes));
        CK(cudaMemset(src, 1, bytes));
        const double ms =
            median_ms([&] { CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice)); });
        copy_gbs = 2.0 * double(bytes) / (ms * 1e-3) / 1e9;
        std::printf("device copy 2 GiB: %.3f ms, %.0f GB/s (read + write)\n", ms, copy_gbs);
        CK(cudaFree(src));
        CK(cudaFree(dst));
    }
    // AdamW over 190M f32 parameters (RWKV-7 L12 C768 V65536 size) in 360 tensors.
    {
        using namespace goose::adamw_cuda;
        const int nt = 360;
        const int64_t total = 190'000'000, each = total / nt;
        float* buf;
        void* bf;
        CK(cudaMalloc(&buf, size_t(each * nt) * 16));
        CK(cudaMalloc(&bf, size_t(each * nt) * 2));
        {  // random data, never zeros (zeros may send IEEE divisions down other paths):
           // a block of |normal| values (v must be >= 0) repeated over p, g, m and v
            auto h = randv(size_t(1) << 22, 0.1f);
            for (auto& x : h) x = std::fabs(x) + 1e-3f;
            float* blk = static_cast<float*>(upload(h, GemmType::f32));
            const size_t n = size_t(each * nt) * 4;
            for (size_t off = 0; off < n; off += h.size())
                CK(cudaMemcpy(buf + off, blk, std::min(h.size(), n - off) * 4,
                              cudaMemcpyDeviceToDevice));
            CK(cudaFree(blk));
        }
        std::vector<AdamEntry> es(nt);
        for (int t = 0; t < nt; ++t) {
            float* base = buf + size_t(t) * each * 4;
            es[t].p = base, es[t].g = base + each, es[t].m = base + 2 * each,
            es[t].v = base + 3 * each;
            es[t].p_bf16 = static_cast<char*>(bf) + size_t(t) * each * 2;
            es[t].n = each, es[t].decay = 0.9999f, es[t].step_size = 1e-3f, es[t].any_wd = 1;
        }
        AdamShared s{0.1f, 0.99f, 0.01f, 1e-8f, 0.1f, true};
        std::vector<AdamEntry> no_copy = es;
        for (auto& e : no_copy) e.p_bf16 = nullptr;
        const double ms_nc = median_ms([&] { adam_step(no_copy.data(), nt, s, nullptr); });
        std::printf("adamw 190M params without the bf16 copy: %.3f ms, %.0f GB/s\n", ms_nc,
                    double(each * nt) * 28 / (ms_nc * 1e-3) / 1e9);
        const double ms = median_ms([&] { adam_step(es.data(), nt, s, nullptr); });
        const double gb = double(each * nt) * (16 + 12 + 2) / (ms * 1e-3) / 1e9;
        std::printf(
            "adamw 190M params (f32 p,g,m,v + bf16 copy): %.3f ms, %.0f GB/s = %.0f%% of "
            "the copy rate\n",
            ms, gb, 100 * gb / copy_gbs);
        CK(cudaFree(buf));
        CK(cudaFree(bf));
    }

    // Fused head + CE at the training shape.
    {
        using namespace goose::head_ce_cuda;
        HeadCeArgs a;
        a.rows = N, a.dim = 768, a.vocab = 65536, a.type = GemmType::bf16, a.l2wrap = true;
        auto hx = randv(size_t(1) << 20);
        void *x, *w, *t;
        CK(cudaMalloc(&x, size_t(N * 768) * 2));
        CK(cudaMalloc(&w, size_t(65536 * 768) * 2));
        std::vector<__nv_bfloat16> hb(hx.size());
        for (size_t i = 0; i < hx.size(); ++i) hb[i] = __float2bfloat16_rn(hx[i] * 0.5f);
        for (size_t off = 0; off < size_t(N * 768); off += hb.size())
            CK(cudaMemcpy(static_cast<char*>(x) + off * 2, hb.data(), hb.size() * 2,
                          cudaMemcpyHostToDevice));
        for (size_t off = 0; off < size_t(65536 * 768); off += hb.size())
            CK(cudaMemcpy(static_cast<char*>(w) + off * 2, hb.data(), hb.size() * 2,
                          cudaMemcpyHostToDevice));
        std::vector<int32_t> ht(static_cast<size_t>(N));
        for (auto& v : ht) v = int32_t(g_rng() % 65536);
        CK(cudaMalloc(&t, size_t(N) * 4));
        CK(cudaMemcpy(t, ht.data(), size_t(N) * 4, cudaMemcpyHostToDevice));
        a.x = x, a.w = w, a.targets = t;
        CK(cudaMalloc(&a.dx, size_t(N * 768) * 2));
        CK(cudaMalloc(reinterpret_cast<void**>(&a.dw), size_t(65536 * 768) * 4));
        CK(cudaMalloc(reinterpret_cast<void**>(&a.loss), 4));
        CK(cudaMalloc(reinterpret_cast<void**>(&a.status), 8));
        for (int64_t cr : {int64_t(2048), int64_t(4096), int64_t(8192)}) {
            a.chunk_rows = cr;
            void* ws;
            CK(cudaMalloc(&ws, workspace_bytes(a)));
            a.workspace = ws;
            const double ms = median_ms([&] { head_ce(a, nullptr); }, 10);
            const double tf = 3 * 2.0 * double(N) * 65536 * 768 / (ms * 1e-3) / 1e12;
            char nm[80];
            std::snprintf(nm, sizeof nm, "fused head+CE+L2Wrap chunk %ld (3 GEMMs)", long(cr));
            g_rows.push_back({nm, ms, tf});
            if (cr == 4096) {  // the row-cached CE pass (opt-in), then the parts
                a.row_cache = true;
                const double ms_rc = median_ms([&] { head_ce(a, nullptr); }, 10);
                g_rows.push_back({"fused head+CE+L2Wrap chunk 4096, row cache", ms_rc,
                                  3 * 2.0 * double(N) * 65536 * 768 / (ms_rc * 1e-3) / 1e12});
                a.row_cache = false;
            }
            if (cr == 4096) {  // the parts: logits GEMM + CE kernel alone (no dx, dw)
                void* dx = a.dx;
                float* dw = a.dw;
                a.dx = nullptr, a.dw = nullptr;
                const double fwd = median_ms([&] { head_ce(a, nullptr); }, 10);
                g_rows.push_back({"  of which logits GEMM + CE pass (chunk 4096)", fwd,
                                  2.0 * double(N) * 65536 * 768 / (fwd * 1e-3) / 1e12});
                a.dx = dx, a.dw = dw;
            }
            CK(cudaFree(ws));
        }
        time_gemm("  chunk GEMM dx (4096x768, K=65536)", 4096, 768, 65536, false, false,
                  GemmType::bf16);
        time_gemm("  chunk GEMM dw (65536x768, K=4096, f32)", 65536, 768, 4096, true, false,
                  GemmType::f32);
        float loss;
        CK(cudaMemcpy(&loss, a.loss, 4, cudaMemcpyDeviceToHost));
        std::printf("head CE loss at random init: %.4f (ln 65536 = %.4f)\n", loss,
                    std::log(65536.0));
    }

    time_gemm("f32 4096^3 (exact fp32, no TF32)", 4096, 4096, 4096, false, true, GemmType::f32,
              GemmType::f32);
    const double peak = g_rows[0].tflops;
    std::printf("\n%-44s %10s %9s %8s\n", "GEMM (bf16 in, fp32 acc; N=32768 rows)", "ms", "TFLOP/s",
                "vs 8192^3");
    for (const Row& r : g_rows)
        std::printf("%-44s %10.3f %9.1f %7.0f%%\n", r.name.c_str(), r.ms, r.tflops,
                    100 * r.tflops / peak);
    std::printf("checks: %d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}

// gemm_lt.cu reads three settings of the goose CUDA runtime (src/core/cuda/runtime.cpp), which
// this standalone program does not link: no SM-count target, no autotuning, no graph capture.
namespace goose::cuda {
int sm_target() { return 0; }
bool gemm_autotune() { return false; }
bool capturing() { return false; }
}  // namespace goose::cuda

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::printf("EXCEPTION: %s\n", e.what());
        return 1;
    }
}
