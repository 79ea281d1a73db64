// Standalone lab of the RWKV-7 time mix's four LoRA GEMM chains (w, a, v, g) forward and
// backward, one layer, bf16 in / f32 accumulate / bf16 out as goose runs them: serial (as now),
// forked onto streams inside a CUDA graph, grouped or batched launches, weight gradients
// without split-K or in f32. Every variant is checked against the serial one, then timed as
// replays of captured CUDA graphs. Build and run (repository root):
//   bash bench/kernels/gemm/lora_run.sh .
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ops/cuda/gemm_lt.h"

using goose::gemm_lt::GemmArgs;
using goose::gemm_lt::GemmType;
using bf16 = __nv_bfloat16;

#define CK(call)                                                                                 \
    do {                                                                                         \
        cudaError_t e_ = (call);                                                                 \
        if (e_ != cudaSuccess) {                                                                 \
            std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
            std::exit(2);                                                                        \
        }                                                                                        \
    } while (0)
#define BK(call)                                                                     \
    do {                                                                             \
        cublasStatus_t s_ = (call);                                                  \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                           \
            std::printf("cuBLAS status %d at %s:%d\n", int(s_), __FILE__, __LINE__); \
            std::exit(2);                                                            \
        }                                                                            \
    } while (0)

// gemm_lt.cu reads three goose runtime settings; here the SM-count target and autotuning are
// switches of the lab (plans are keyed by both).
static int g_sm_target = 0;
static bool g_autotune = false;
namespace goose::cuda {
int sm_target() {
    return g_sm_target;
}
bool gemm_autotune() {
    return g_autotune;
}
bool capturing() {
    return false;
}
}  // namespace goose::cuda

constexpr int64_t C = 768;
constexpr int kL = 4;                            // LoRAs: w, a, v, g
constexpr int64_t kDim[kL] = {64, 64, 32, 128};  // L12 C768: d_decay, d_aaa, d_mv, d_gate
constexpr int kAct[kL] = {1, 0, 0, 2};           // 0 none, 1 tanh, 2 sigmoid
constexpr const char* kName[kL] = {"w", "a", "v", "g"};
constexpr int64_t kPad = 128;  // padded rank of the batched variant

static int g_failures = 0;
static bool g_soft_error = false;  // a variant's library call failed: the variant is skipped
#define SOFT(call)                                                               \
    do {                                                                         \
        cublasStatus_t s_ = (call);                                              \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                       \
            std::printf("  (cuBLAS status %d at line %d)\n", int(s_), __LINE__); \
            g_soft_error = true;                                                 \
            return;                                                              \
        }                                                                        \
    } while (0)

// ---- small kernels ----------------------------------------------------------------------------

__global__ void fill_kernel(bf16* p, size_t n, uint64_t seed, float scale) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
         i += size_t(gridDim.x) * blockDim.x) {
        uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
        x ^= x >> 31, x *= 0xBF58476D1CE4E5B9ull, x ^= x >> 29;
        const float u = float(x >> 40) * (1.f / 16777216.f);  // [0, 1)
        p[i] = __float2bfloat16((2.f * u - 1.f) * scale);
    }
}
static void fill(bf16* p, size_t n, uint64_t seed, float scale) {
    fill_kernel<<<1024, 256>>>(p, n, seed, scale);
    CK(cudaGetLastError());
}

// y = act(h), rows x cols with leading dims
__global__ void act_fwd_kernel(const bf16* h, int64_t ldh, bf16* y, int64_t ldy, int64_t rows,
                               int64_t cols, int act) {
    const size_t n = size_t(rows) * cols;
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
         i += size_t(gridDim.x) * blockDim.x) {
        const int64_t r = i / cols, c = i % cols;
        const float v = __bfloat162float(h[r * ldh + c]);
        y[r * ldy + c] = __float2bfloat16(act == 1 ? tanhf(v) : 1.f / (1.f + __expf(-v)));
    }
}
// dh = dy * act'(.) from the activation's output y
__global__ void act_bwd_kernel(const bf16* dy, const bf16* y, int64_t ld, bf16* dh, int64_t rows,
                               int64_t cols, int act) {
    const size_t n = size_t(rows) * cols;
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
         i += size_t(gridDim.x) * blockDim.x) {
        const int64_t r = i / cols, c = i % cols;
        const float g = __bfloat162float(dy[r * ld + c]), v = __bfloat162float(y[r * ld + c]);
        dh[r * ld + c] = __float2bfloat16(act == 1 ? g * (1.f - v * v) : g * v * (1.f - v));
    }
}

// sums of (a - b)^2 and b^2 over a rows x cols block (a of type Ta, b bf16)
template <class Ta>
__global__ void diff_kernel(const Ta* a, int64_t lda, const bf16* b, int64_t ldb, int64_t rows,
                            int64_t cols, double* out) {
    double num = 0, den = 0;
    const size_t n = size_t(rows) * cols;
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
         i += size_t(gridDim.x) * blockDim.x) {
        const int64_t r = i / cols, c = i % cols;
        const double x = double(float(a[r * lda + c])),
                     y = double(__bfloat162float(b[r * ldb + c]));
        num += (x - y) * (x - y);
        den += y * y;
    }
    for (int o = 16; o > 0; o /= 2) {
        num += __shfl_down_sync(0xffffffffu, num, o);
        den += __shfl_down_sync(0xffffffffu, den, o);
    }
    if ((threadIdx.x & 31) == 0) {
        atomicAdd(out, num);
        atomicAdd(out + 1, den);
    }
}

// ---- buffers ----------------------------------------------------------------------------------

struct Lora {
    int64_t d;
    int act;
    bf16 *x, *w1, *w2;        // inputs: the token mix (M, C), down (C, d), up (d, C)
    bf16 *h, *a, *y;          // forward: x w1, act(h), a w2 (M, d), (M, d), (M, C)
    bf16 *dy, *da, *dh, *dx;  // backward: dy (M, C) given; da, dh (M, d); dx (M, C)
    bf16 *dw1, *dw2;          // (C, d), (d, C)
    float *dw1f, *dw2f;       // f32 weight gradients (variant)
};

// Padded and stacked copies for the strided-batched variant: x, dy, y, dx stacked (4, M, C);
// w1p (4, C, 128), w2p (4, 128, C) zero-padded; h/a/da/dh (4, M, 128); dw1p, dw2p.
struct Padded {
    bf16 *x, *w1, *w2, *h, *a, *y, *dy, *da, *dh, *dx, *dw1, *dw2;
};

static bf16* dalloc(size_t n) {
    bf16* p = nullptr;
    CK(cudaMalloc(&p, n * sizeof(bf16)));
    return p;
}

// ---- GEMM helpers (row-major, as goose's gemm_lt) ----------------------------------------------

static GemmArgs args(int64_t m, int64_t n, int64_t k, bool ta, const void* a, int64_t lda, bool tb,
                     const void* b, int64_t ldb, void* c, int64_t ldc,
                     GemmType ct = GemmType::bf16) {
    GemmArgs g;
    g.m = m, g.n = n, g.k = k, g.trans_a = ta, g.trans_b = tb;
    g.a = a, g.lda = lda, g.b = b, g.ldb = ldb, g.c = c, g.ldc = ldc;
    g.ab_type = GemmType::bf16, g.c_type = ct;
    return g;
}

// Products of one LoRA (row-major): the six GEMMs of goose's forward and backward.
static GemmArgs g_down(const Lora& l, int64_t M) {  // h = x w1
    return args(M, l.d, C, false, l.x, C, false, l.w1, l.d, l.h, l.d);
}
static GemmArgs g_up(const Lora& l, int64_t M) {  // y = a w2
    return args(M, C, l.d, false, l.a, l.d, false, l.w2, C, l.y, C);
}
static GemmArgs g_da(const Lora& l, int64_t M) {  // da = dy w2ᵀ
    return args(M, l.d, C, false, l.dy, C, true, l.w2, C, l.da, l.d);
}
static GemmArgs g_dw2(const Lora& l, int64_t M, bool f32 = false) {  // dw2 = aᵀ dy
    return args(l.d, C, M, true, l.a, l.d, false, l.dy, C, f32 ? (void*)l.dw2f : l.dw2, C,
                f32 ? GemmType::f32 : GemmType::bf16);
}
static GemmArgs g_dx(const Lora& l, int64_t M) {  // dx = dh w1ᵀ
    return args(M, C, l.d, false, l.dh, l.d, true, l.w1, l.d, l.dx, C);
}
static GemmArgs g_dw1(const Lora& l, int64_t M, bool f32 = false) {  // dw1 = xᵀ dh
    return args(C, l.d, M, true, l.x, C, false, l.dh, l.d, f32 ? (void*)l.dw1f : l.dw1, l.d,
                f32 ? GemmType::f32 : GemmType::bf16);
}

static void gemm(const GemmArgs& g, cudaStream_t s) {
    goose::gemm_lt::gemm(g, s);
}

static void act_fwd(const Lora& l, int64_t M, cudaStream_t s) {
    if (l.act == 0) return;
    act_fwd_kernel<<<1024, 256, 0, s>>>(l.h, l.d, l.a, l.d, M, l.d, l.act);
}
static void act_bwd(const Lora& l, int64_t M, cudaStream_t s) {
    if (l.act == 0) return;
    act_bwd_kernel<<<1024, 256, 0, s>>>(l.da, l.a, l.d, l.dh, M, l.d, l.act);
}

// cuBLASLt without split-K (reduction scheme NONE) for the weight gradients: own plan cache.
struct NoSplit {
    cublasLtHandle_t h = nullptr;
    void* ws = nullptr;
    struct P {
        GemmArgs g;
        cublasLtMatmulDesc_t desc;
        cublasLtMatrixLayout_t la, lb, lc;
        cublasLtMatmulAlgo_t algo;
    };
    std::vector<P> plans;
    void run(const GemmArgs& g, cudaStream_t s) {
        if (!h) {
            BK(cublasLtCreate(&h));
            CK(cudaMalloc(&ws, 32 << 20));
        }
        P* p = nullptr;
        for (auto& q : plans)
            if (q.g.m == g.m && q.g.n == g.n && q.g.k == g.k && q.g.a == g.a && q.g.b == g.b &&
                q.g.c == g.c && q.g.c_type == g.c_type)
                p = &q;
        if (!p) {
            P q{};
            q.g = g;
            BK(cublasLtMatmulDescCreate(&q.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
            const cublasOperation_t oa = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
            const cublasOperation_t ob = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
            BK(cublasLtMatmulDescSetAttribute(q.desc, CUBLASLT_MATMUL_DESC_TRANSA, &oa,
                                              sizeof(oa)));
            BK(cublasLtMatmulDescSetAttribute(q.desc, CUBLASLT_MATMUL_DESC_TRANSB, &ob,
                                              sizeof(ob)));
            const cudaDataType_t tc = g.c_type == GemmType::f32 ? CUDA_R_32F : CUDA_R_16BF;
            BK(cublasLtMatrixLayoutCreate(&q.la, CUDA_R_16BF, g.trans_b ? g.k : g.n,
                                          g.trans_b ? g.n : g.k, g.ldb));
            BK(cublasLtMatrixLayoutCreate(&q.lb, CUDA_R_16BF, g.trans_a ? g.m : g.k,
                                          g.trans_a ? g.k : g.m, g.lda));
            BK(cublasLtMatrixLayoutCreate(&q.lc, tc, g.n, g.m, g.ldc));
            cublasLtMatmulPreference_t pref;
            BK(cublasLtMatmulPreferenceCreate(&pref));
            const uint64_t wsb = 32 << 20;
            BK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &wsb, sizeof(wsb)));
            const uint32_t mask = CUBLASLT_REDUCTION_SCHEME_NONE;
            BK(cublasLtMatmulPreferenceSetAttribute(
                pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof(mask)));
            cublasLtMatmulHeuristicResult_t r[8];
            int found = 0;
            SOFT(cublasLtMatmulAlgoGetHeuristic(h, q.desc, q.la, q.lb, q.lc, q.lc, pref, 8, r,
                                                &found));
            if (!found) {
                std::printf("  (no split-free algorithm)\n");
                g_soft_error = true;
                return;
            }
            // the split-free candidate with the most CTAs is not known up front: take the first
            q.algo = r[0].algo;
            cublasLtMatmulPreferenceDestroy(pref);
            plans.push_back(q);
            p = &plans.back();
        }
        const float one = 1.f, zero = 0.f;
        SOFT(cublasLtMatmul(h, p->desc, &one, g.b, p->la, g.a, p->lb, &zero, g.c, p->lc, g.c, p->lc,
                            &p->algo, ws, 32 << 20, s));
    }
};
static NoSplit g_nosplit;

// cuBLAS grouped GEMM of up to four row-major products (one group each).
struct Grouped {
    cublasHandle_t h = nullptr;
    void* ws = nullptr;
    struct Set {
        const void** dev = nullptr;  // A', B', C' pointer arrays on the device (3 x n)
        std::vector<cublasOperation_t> ta, tb;
        std::vector<int> m, n, k, lda, ldb, ldc, size;
        std::vector<float> alpha, beta;
        int count = 0;
    };
    Set make(const std::vector<GemmArgs>& gs) {
        if (!h) {
            BK(cublasCreate(&h));
            CK(cudaMalloc(&ws, 32 << 20));
            BK(cublasSetWorkspace(h, ws, 32 << 20));
        }
        Set s;
        s.count = int(gs.size());
        std::vector<const void*> host(3 * gs.size());
        for (size_t i = 0; i < gs.size(); ++i) {
            const GemmArgs& g = gs[i];  // column-major: Cᵀ (n, m) = op(B)ᵀ op(A)ᵀ
            s.ta.push_back(g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N);
            s.tb.push_back(g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N);
            s.m.push_back(int(g.n)), s.n.push_back(int(g.m)), s.k.push_back(int(g.k));
            s.lda.push_back(int(g.ldb)), s.ldb.push_back(int(g.lda)), s.ldc.push_back(int(g.ldc));
            s.size.push_back(1), s.alpha.push_back(1.f), s.beta.push_back(0.f);
            host[i] = g.b, host[gs.size() + i] = g.a, host[2 * gs.size() + i] = g.c;
        }
        CK(cudaMalloc(&s.dev, host.size() * sizeof(void*)));
        CK(cudaMemcpy(s.dev, host.data(), host.size() * sizeof(void*), cudaMemcpyHostToDevice));
        return s;
    }
    void run(const Set& s, cudaStream_t st) {
        SOFT(cublasSetStream(h, st));
        SOFT(cublasGemmGroupedBatchedEx(
            h, s.ta.data(), s.tb.data(), s.m.data(), s.n.data(), s.k.data(), s.alpha.data(), s.dev,
            CUDA_R_16BF, s.lda.data(), s.dev + s.count, CUDA_R_16BF, s.ldb.data(), s.beta.data(),
            (void* const*)(s.dev + 2 * s.count), CUDA_R_16BF, s.ldc.data(), s.count, s.size.data(),
            CUBLAS_COMPUTE_32F));
    }
};
static Grouped g_grouped;

// ---- streams ----------------------------------------------------------------------------------

constexpr int kStreams = 8;
static cudaStream_t g_main, g_side[kStreams];
static cudaEvent_t g_fork, g_done[kStreams], g_mid[kStreams];

static void fork(int n) {
    CK(cudaEventRecord(g_fork, g_main));
    for (int i = 0; i < n; ++i) CK(cudaStreamWaitEvent(g_side[i], g_fork, 0));
}
static void join(int n) {
    for (int i = 0; i < n; ++i) {
        CK(cudaEventRecord(g_done[i], g_side[i]));
        CK(cudaStreamWaitEvent(g_main, g_done[i], 0));
    }
}

// ---- variants ---------------------------------------------------------------------------------

struct Variant {
    std::string name;
    std::function<void(int64_t)> fwd, bwd;  // enqueue on g_main (may fork/join)
    bool padded = false, f32_grads = false;
    double tol = 0;  // relative tolerance vs the serial outputs (0: bitwise expected)
};

static Lora L[kL];
static Padded P;

// goose's order: the four downs (mix_project), tanh, up w, up a, sigmoid, up g, up v
static void serial_fwd(int64_t M, cudaStream_t s) {
    for (auto& l : L) gemm(g_down(l, M), s);
    for (int i : {0, 1, 3, 2}) {
        act_fwd(L[i], M, s);
        gemm(g_up(L[i], M), s);
    }
}
// backward of the ups (da then dw2, act bwd), then mix_project's (dx then dw1 per LoRA)
static void serial_bwd(int64_t M, cudaStream_t s, bool f32 = false, bool nosplit = false) {
    auto wgrad = [&](const GemmArgs& g) { nosplit ? g_nosplit.run(g, s) : gemm(g, s); };
    for (int i : {2, 3, 1, 0}) {
        gemm(g_da(L[i], M), s);
        wgrad(g_dw2(L[i], M, f32));
        act_bwd(L[i], M, s);
    }
    for (auto& l : L) {
        gemm(g_dx(l, M), s);
        wgrad(g_dw1(l, M, f32));
    }
}
static void chain_fwd(const Lora& l, int64_t M, cudaStream_t s) {
    gemm(g_down(l, M), s);
    act_fwd(l, M, s);
    gemm(g_up(l, M), s);
}
static void chain_bwd(const Lora& l, int64_t M, cudaStream_t s) {
    gemm(g_da(l, M), s);
    gemm(g_dw2(l, M), s);
    act_bwd(l, M, s);
    gemm(g_dx(l, M), s);
    gemm(g_dw1(l, M), s);
}

// strided-batched over the four LoRAs padded to rank 128 (one launch per stage)
static GemmArgs batched(GemmArgs g, int64_t sa, int64_t sb, int64_t sc) {
    g.batch = kL, g.stride_a = sa, g.stride_b = sb, g.stride_c = sc;
    return g;
}
static void padded_fwd(int64_t M, cudaStream_t s) {
    const int64_t R = kPad;
    gemm(batched(args(M, R, C, false, P.x, C, false, P.w1, R, P.h, R), M * C, C * R, M * R), s);
    for (int i = 0; i < kL; ++i)  // in place: a = act(h) over h
        if (L[i].act)
            act_fwd_kernel<<<1024, 256, 0, s>>>(P.h + i * M * R, R, P.a + i * M * R, R, M, R,
                                                L[i].act);
    gemm(batched(args(M, C, R, false, P.a, R, false, P.w2, C, P.y, C), M * R, R * C, M * C), s);
}
static void padded_bwd(int64_t M, cudaStream_t s) {
    const int64_t R = kPad;
    gemm(batched(args(M, R, C, false, P.dy, C, true, P.w2, C, P.da, R), M * C, R * C, M * R), s);
    gemm(batched(args(R, C, M, true, P.a, R, false, P.dy, C, P.dw2, C), M * R, M * C, R * C), s);
    for (int i = 0; i < kL; ++i)  // in place: dh over da
        if (L[i].act)
            act_bwd_kernel<<<1024, 256, 0, s>>>(P.da + i * M * R, P.a + i * M * R, R,
                                                P.dh + i * M * R, M, R, L[i].act);
    gemm(batched(args(M, C, R, false, P.dh, R, true, P.w1, R, P.dx, C), M * R, C * R, M * C), s);
    gemm(batched(args(C, R, M, true, P.x, C, false, P.dh, R, P.dw1, R), M * C, M * R, C * R), s);
}

// the padded batch with its weight gradients on a side stream beside da / dx
static void padded_bwd_side(int64_t M, cudaStream_t s, cudaStream_t w) {
    const int64_t R = kPad;
    CK(cudaEventRecord(g_fork, s));
    CK(cudaStreamWaitEvent(w, g_fork, 0));
    gemm(batched(args(R, C, M, true, P.a, R, false, P.dy, C, P.dw2, C), M * R, M * C, R * C), w);
    gemm(batched(args(M, R, C, false, P.dy, C, true, P.w2, C, P.da, R), M * C, R * C, M * R), s);
    for (int i = 0; i < kL; ++i)
        if (L[i].act)
            act_bwd_kernel<<<1024, 256, 0, s>>>(P.da + i * M * R, P.a + i * M * R, R,
                                                P.dh + i * M * R, M, R, L[i].act);
    CK(cudaEventRecord(g_mid[7], s));
    CK(cudaStreamWaitEvent(w, g_mid[7], 0));
    gemm(batched(args(C, R, M, true, P.x, C, false, P.dh, R, P.dw1, R), M * C, M * R, C * R), w);
    gemm(batched(args(M, C, R, false, P.dh, R, true, P.w1, R, P.dx, C), M * R, C * R, M * C), s);
    CK(cudaEventRecord(g_done[6], w));
    CK(cudaStreamWaitEvent(s, g_done[6], 0));
}

// ---- the lab ----------------------------------------------------------------------------------

static void check_against(const Variant& v, int64_t M, const Lora* ref) {
    double* acc = nullptr;
    CK(cudaMalloc(&acc, 16));
    auto rel = [&](const void* a, bool af32, int64_t lda, const bf16* b, int64_t ldb, int64_t rows,
                   int64_t cols) {
        CK(cudaMemset(acc, 0, 16));
        if (af32)
            diff_kernel<float><<<256, 256>>>((const float*)a, lda, b, ldb, rows, cols, acc);
        else
            diff_kernel<bf16><<<256, 256>>>((const bf16*)a, lda, b, ldb, rows, cols, acc);
        double h[2];
        CK(cudaMemcpy(h, acc, 16, cudaMemcpyDeviceToHost));
        return std::sqrt(h[0] / std::max(h[1], 1e-300));
    };
    double worst = 0;
    std::string where;
    for (int i = 0; i < kL; ++i) {
        const Lora& l = L[i];
        const int64_t R = kPad;
        struct Out {
            const char* n;
            const void* a;
            bool f32;
            int64_t lda;
            const bf16* b;
            int64_t ldb, rows, cols;
        };
        std::vector<Out> outs;
        if (v.padded)
            outs = {{"y", P.y + i * M * C, false, C, ref[i].y, C, M, C},
                    {"dx", P.dx + i * M * C, false, C, ref[i].dx, C, M, C},
                    {"dw1", P.dw1 + i * C * R, false, R, ref[i].dw1, l.d, C, l.d},
                    {"dw2", P.dw2 + i * R * C, false, C, ref[i].dw2, C, l.d, C}};
        else
            outs = {{"y", l.y, false, C, ref[i].y, C, M, C},
                    {"dx", l.dx, false, C, ref[i].dx, C, M, C},
                    {"dw1", v.f32_grads ? (const void*)l.dw1f : l.dw1, v.f32_grads, l.d, ref[i].dw1,
                     l.d, C, l.d},
                    {"dw2", v.f32_grads ? (const void*)l.dw2f : l.dw2, v.f32_grads, C, ref[i].dw2,
                     C, l.d, C}};
        for (const Out& o : outs) {
            const double e = rel(o.a, o.f32, o.lda, o.b, o.ldb, o.rows, o.cols);
            if (!(e <= worst)) worst = e, where = std::string(kName[i]) + "." + o.n;
        }
    }
    CK(cudaFree(acc));
    const bool ok = std::isfinite(worst) && worst <= v.tol;
    if (!ok) ++g_failures;
    std::printf("  check M=%lld %-26s worst rel err %.2e (%s) tol %.0e %s\n", (long long)M,
                v.name.c_str(), worst, where.c_str(), v.tol, ok ? "ok" : "FAIL");
}

// microseconds per replay of a graph of f, best of 3 rounds of `reps`
static double time_graph(const std::function<void()>& f, int reps = 50) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CK(cudaStreamBeginCapture(g_main, cudaStreamCaptureModeThreadLocal));
    f();
    CK(cudaStreamEndCapture(g_main, &graph));
    CK(cudaGraphInstantiate(&exec, graph, 0));
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 5; ++i) CK(cudaGraphLaunch(exec, g_main));
    double best = 1e30;
    for (int round = 0; round < 3; ++round) {
        CK(cudaEventRecord(a, g_main));
        for (int i = 0; i < reps; ++i) CK(cudaGraphLaunch(exec, g_main));
        CK(cudaEventRecord(b, g_main));
        CK(cudaEventSynchronize(b));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, a, b));
        best = std::min(best, 1e3 * ms / reps);
    }
    CK(cudaGraphExecDestroy(exec));
    CK(cudaGraphDestroy(graph));
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    return best;
}

static void run_m(int64_t M) {
    std::printf("\n== M = %lld rows (C %lld, ranks w/a/v/g %lld/%lld/%lld/%lld), one layer ==\n",
                (long long)M, (long long)C, (long long)kDim[0], (long long)kDim[1],
                (long long)kDim[2], (long long)kDim[3]);
    std::vector<void*> owned;
    auto A = [&](size_t n) {
        bf16* p = dalloc(n);
        owned.push_back(p);
        return p;
    };
    // stacked buffers so the padded variant shares x / dy with the others
    P.x = A(kL * M * C), P.dy = A(kL * M * C), P.y = A(kL * M * C), P.dx = A(kL * M * C);
    P.w1 = A(kL * C * kPad), P.w2 = A(kL * kPad * C);
    P.h = A(kL * M * kPad), P.da = A(kL * M * kPad);
    P.a = P.h, P.dh = P.da;  // the padded variant's activations run in place
    P.dw1 = A(kL * C * kPad), P.dw2 = A(kL * kPad * C);
    CK(cudaMemset(P.w1, 0, kL * C * kPad * 2));
    CK(cudaMemset(P.w2, 0, kL * kPad * C * 2));
    Lora ref[kL];
    for (int i = 0; i < kL; ++i) {
        Lora& l = L[i];
        const int64_t d = kDim[i];
        l.d = d, l.act = kAct[i];
        l.x = P.x + i * M * C, l.dy = P.dy + i * M * C;
        l.w1 = A(C * d), l.w2 = A(d * C);
        l.h = A(M * d), l.a = A(M * d), l.y = A(M * C);
        l.da = A(M * d), l.dh = A(M * d), l.dx = A(M * C);
        l.dw1 = A(C * d), l.dw2 = A(d * C);
        CK(cudaMalloc(&l.dw1f, C * d * 4));
        CK(cudaMalloc(&l.dw2f, d * C * 4));
        owned.push_back(l.dw1f), owned.push_back(l.dw2f);
        if (l.act == 0) l.a = l.h, l.dh = l.da;  // no activation: the same tensor (as goose)
        fill(l.x, M * C, 11 + i, 1.f);
        fill(l.dy, M * C, 21 + i, 1.f);
        fill(l.w1, C * d, 31 + i, 0.05f);
        fill(l.w2, d * C, 41 + i, 0.05f);
        // padded copies of the weights
        CK(cudaMemcpy2D(P.w1 + i * C * kPad, kPad * 2, l.w1, d * 2, d * 2, C,
                        cudaMemcpyDeviceToDevice));
        CK(cudaMemcpy(P.w2 + i * kPad * C, l.w2, d * C * 2, cudaMemcpyDeviceToDevice));
        ref[i] = l;
        ref[i].y = A(M * C), ref[i].dx = A(M * C), ref[i].dw1 = A(C * d), ref[i].dw2 = A(d * C);
    }
    CK(cudaDeviceSynchronize());

    // the reference: serial, eager
    serial_fwd(M, g_main);
    serial_bwd(M, g_main);
    CK(cudaStreamSynchronize(g_main));
    for (int i = 0; i < kL; ++i) {
        CK(cudaMemcpy(ref[i].y, L[i].y, M * C * 2, cudaMemcpyDeviceToDevice));
        CK(cudaMemcpy(ref[i].dx, L[i].dx, M * C * 2, cudaMemcpyDeviceToDevice));
        CK(cudaMemcpy(ref[i].dw1, L[i].dw1, C * L[i].d * 2, cudaMemcpyDeviceToDevice));
        CK(cudaMemcpy(ref[i].dw2, L[i].dw2, L[i].d * C * 2, cudaMemcpyDeviceToDevice));
    }

    Grouped::Set gs[6];
    {
        std::vector<GemmArgs> s[6];
        for (auto& l : L) {
            s[0].push_back(g_down(l, M)), s[1].push_back(g_up(l, M)), s[2].push_back(g_da(l, M));
            s[3].push_back(g_dw2(l, M)), s[4].push_back(g_dx(l, M)), s[5].push_back(g_dw1(l, M));
        }
        for (int i = 0; i < 6; ++i) gs[i] = g_grouped.make(s[i]);
    }

    std::vector<Variant> vs;
    vs.push_back({"serial (goose now)", [](int64_t m) { serial_fwd(m, g_main); },
                  [](int64_t m) { serial_bwd(m, g_main); }});
    vs.push_back({"4 streams (chain each)",
                  [](int64_t m) {
                      fork(kL);
                      for (int i = 0; i < kL; ++i) chain_fwd(L[i], m, g_side[i]);
                      join(kL);
                  },
                  [](int64_t m) {
                      fork(kL);
                      for (int i = 0; i < kL; ++i) chain_bwd(L[i], m, g_side[i]);
                      join(kL);
                  }});
    vs.push_back({"4 streams, SM target 33",
                  [](int64_t m) {
                      g_sm_target = 33;
                      fork(kL);
                      for (int i = 0; i < kL; ++i) chain_fwd(L[i], m, g_side[i]);
                      join(kL);
                      g_sm_target = 0;
                  },
                  [](int64_t m) {
                      g_sm_target = 33;
                      fork(kL);
                      for (int i = 0; i < kL; ++i) chain_bwd(L[i], m, g_side[i]);
                      join(kL);
                      g_sm_target = 0;
                  },
                  false, false, 1e-2});
    vs.push_back({"8 streams (dW apart)",
                  [](int64_t m) {
                      fork(kL);
                      for (int i = 0; i < kL; ++i) chain_fwd(L[i], m, g_side[i]);
                      join(kL);
                  },
                  [](int64_t m) {
                      fork(2 * kL);
                      for (int i = 0; i < kL; ++i) {
                          cudaStream_t s = g_side[i], w = g_side[kL + i];
                          gemm(g_dw2(L[i], m), w);
                          gemm(g_da(L[i], m), s);
                          act_bwd(L[i], m, s);
                          CK(cudaEventRecord(g_mid[i], s));
                          gemm(g_dx(L[i], m), s);
                          CK(cudaStreamWaitEvent(w, g_mid[i], 0));
                          gemm(g_dw1(L[i], m), w);
                      }
                      join(2 * kL);
                  }});
    vs.push_back({"2 streams (w,a | v,g)",
                  [](int64_t m) {
                      fork(2);
                      for (int i = 0; i < kL; ++i) chain_fwd(L[i], m, g_side[i / 2]);
                      join(2);
                  },
                  [](int64_t m) {
                      fork(2);
                      for (int i = 0; i < kL; ++i) chain_bwd(L[i], m, g_side[i / 2]);
                      join(2);
                  }});
    vs.push_back({"grouped (cublas, 6 calls)",
                  [gs](int64_t m) {
                      g_grouped.run(gs[0], g_main);
                      for (auto& l : L) act_fwd(l, m, g_main);
                      g_grouped.run(gs[1], g_main);
                  },
                  [gs](int64_t m) {
                      g_grouped.run(gs[2], g_main);
                      g_grouped.run(gs[3], g_main);
                      for (auto& l : L) act_bwd(l, m, g_main);
                      g_grouped.run(gs[4], g_main);
                      g_grouped.run(gs[5], g_main);
                  },
                  false, false, 1e-2});
    {
        Variant v{"padded r128 strided batch", [](int64_t m) { padded_fwd(m, g_main); },
                  [](int64_t m) { padded_bwd(m, g_main); }};
        v.padded = true, v.tol = 1e-2;
        vs.push_back(v);
    }
    {
        Variant v{"padded batch, dW on a side stream", [](int64_t m) { padded_fwd(m, g_main); },
                  [](int64_t m) { padded_bwd_side(m, g_main, g_side[0]); }};
        v.padded = true, v.tol = 1e-2;
        vs.push_back(v);
    }
    vs.push_back({"serial, dW without split-K", [](int64_t m) { serial_fwd(m, g_main); },
                  [](int64_t m) { serial_bwd(m, g_main, false, true); }, false, false, 1e-2});
    vs.push_back({"serial, dW f32 out", [](int64_t m) { serial_fwd(m, g_main); },
                  [](int64_t m) { serial_bwd(m, g_main, true); }, false, true, 1e-2});
    vs.push_back({"serial, autotuned algos",
                  [](int64_t m) {
                      g_autotune = true;
                      serial_fwd(m, g_main);
                      g_autotune = false;
                  },
                  [](int64_t m) {
                      g_autotune = true;
                      serial_bwd(m, g_main);
                      g_autotune = false;
                  },
                  false, false, 1e-2});

    struct Row {
        std::string name;
        double f, b, fb;
    };
    std::vector<Row> rows;
    for (const Variant& v : vs) {
        // run eagerly once (plans made, tuning done), poison the outputs, replay a graph of
        // forward + backward (timed), check its outputs, then time each direction alone
        g_soft_error = false;
        v.fwd(M);
        v.bwd(M);
        CK(cudaStreamSynchronize(g_main));
        CK(cudaDeviceSynchronize());
        if (g_soft_error) {
            std::printf("  %-38s skipped (a library call failed)\n", v.name.c_str());
            continue;
        }
        for (auto& l : L) {
            CK(cudaMemset(l.y, 0xff, M * C * 2));
            CK(cudaMemset(l.dx, 0xff, M * C * 2));
            CK(cudaMemset(l.dw1, 0xff, C * l.d * 2));
            CK(cudaMemset(l.dw2, 0xff, C * l.d * 2));
            CK(cudaMemset(l.dw1f, 0xff, C * l.d * 4));
            CK(cudaMemset(l.dw2f, 0xff, C * l.d * 4));
        }
        CK(cudaMemset(P.y, 0xff, kL * M * C * 2));
        CK(cudaMemset(P.dx, 0xff, kL * M * C * 2));
        CK(cudaMemset(P.dw1, 0xff, kL * C * kPad * 2));
        CK(cudaMemset(P.dw2, 0xff, kL * C * kPad * 2));
        const double fb = time_graph([&] {
            v.fwd(M);
            v.bwd(M);
        });
        check_against(v, M, ref);
        rows.push_back({v.name, time_graph([&] { v.fwd(M); }), time_graph([&] { v.bwd(M); }), fb});
    }
    // context: mix_project with the three (C, C) projections (r, k, v) beside the LoRA downs
    {
        bf16 *wr = A(3 * C * C), *yr = A(3 * M * C);
        fill(wr, 3 * C * C, 77, 0.03f);
        auto lin = [&](int j, cudaStream_t s) {  // y = x wᵀ (linear)
            gemm(args(M, C, C, false, L[j == 2 ? 2 : 0].x, C, true, wr + j * C * C, C,
                      yr + j * M * C, C),
                 s);
        };
        const double ser = time_graph([&] {
            for (int j = 0; j < 3; ++j) lin(j, g_main);
            for (auto& l : L) gemm(g_down(l, M), g_main);
        });
        const double par = time_graph([&] {
            fork(1);
            for (auto& l : L) gemm(g_down(l, M), g_side[0]);
            for (int j = 0; j < 3; ++j) lin(j, g_main);
            join(1);
        });
        const double lin_only = time_graph([&] {
            for (int j = 0; j < 3; ++j) lin(j, g_main);
        });
        const double down_only = time_graph([&] {
            for (auto& l : L) gemm(g_down(l, M), g_main);
        });
        std::printf(
            "  context (mix_project fwd): r/k/v linears %.1f us + 4 downs %.1f us; "
            "serial %.1f us, downs on a side stream %.1f us (saves %.1f us)\n",
            lin_only, down_only, ser, par, ser - par);
        bf16 *dxr = A(M * C), *dwr = A(3 * C * C);
        auto lin_bwd = [&](int j, cudaStream_t s) {  // dx = dy w, dw = dyᵀ x
            gemm(args(M, C, C, false, L[j].dy, C, false, wr + j * C * C, C, dxr, C), s);
            gemm(args(C, C, M, true, L[j].dy, C, false, L[0].x, C, dwr + j * C * C, C), s);
        };
        auto lora_down_bwd = [&](cudaStream_t s) {
            for (auto& l : L) gemm(g_dx(l, M), s), gemm(g_dw1(l, M), s);
        };
        const double ser_b = time_graph([&] {
            for (int j = 0; j < 3; ++j) lin_bwd(j, g_main);
            lora_down_bwd(g_main);
        });
        const double par_b = time_graph([&] {
            fork(1);
            lora_down_bwd(g_side[0]);
            for (int j = 0; j < 3; ++j) lin_bwd(j, g_main);
            join(1);
        });
        const double lin_b = time_graph([&] {
            for (int j = 0; j < 3; ++j) lin_bwd(j, g_main);
        });
        const double down_b = time_graph([&] { lora_down_bwd(g_main); });
        std::printf(
            "  context (mix_project bwd): r/k/v dx+dw %.1f us + 4 LoRA dx+dw1 %.1f us; "
            "serial %.1f us, LoRA on a side stream %.1f us (saves %.1f us)\n",
            lin_b, down_b, ser_b, par_b, ser_b - par_b);
    }
    // the whole time-mix projection set: r/k/v linears (fwd; dx + dw bwd) with the LoRA chains,
    // serial vs the linears on the main stream and the chains on side streams (dW apart)
    {
        bf16 *wr = A(3 * C * C), *yr = A(3 * M * C), *dxr = A(M * C), *dwr = A(3 * C * C);
        fill(wr, 3 * C * C, 78, 0.03f);
        auto lin = [&](int j, cudaStream_t s) {
            gemm(args(M, C, C, false, L[j].x, C, true, wr + j * C * C, C, yr + j * M * C, C), s);
        };
        auto lin_bwd = [&](int j, cudaStream_t s) {
            gemm(args(M, C, C, false, L[j].dy, C, false, wr + j * C * C, C, dxr, C), s);
            gemm(args(C, C, M, true, L[j].dy, C, false, L[j].x, C, dwr + j * C * C, C), s);
        };
        auto lora_bwd8 = [&](int64_t m) {
            for (int i = 0; i < kL; ++i) {
                cudaStream_t s = g_side[i], w = g_side[kL + i];
                gemm(g_dw2(L[i], m), w);
                gemm(g_da(L[i], m), s);
                act_bwd(L[i], m, s);
                CK(cudaEventRecord(g_mid[i], s));
                gemm(g_dx(L[i], m), s);
                CK(cudaStreamWaitEvent(w, g_mid[i], 0));
                gemm(g_dw1(L[i], m), w);
            }
        };
        const double lf = time_graph([&] {
            for (int j = 0; j < 3; ++j) lin(j, g_main);
        });
        const double lb = time_graph([&] {
            for (int j = 0; j < 3; ++j) lin_bwd(j, g_main);
        });
        const double sf = time_graph([&] {
            for (int j = 0; j < 3; ++j) lin(j, g_main);
            serial_fwd(M, g_main);
        });
        const double sb = time_graph([&] {
            serial_bwd(M, g_main);
            for (int j = 0; j < 3; ++j) lin_bwd(j, g_main);
        });
        const double pf = time_graph([&] {
            fork(kL);
            for (int i = 0; i < kL; ++i) chain_fwd(L[i], M, g_side[i]);
            for (int j = 0; j < 3; ++j) lin(j, g_main);
            join(kL);
        });
        const double pb = time_graph([&] {
            fork(2 * kL);
            lora_bwd8(M);
            for (int j = 0; j < 3; ++j) lin_bwd(j, g_main);
            join(2 * kL);
        });
        const double lora = rows[0].fb;
        std::printf(
            "  time mix projections (r/k/v + 4 LoRA chains): linears alone fwd %.1f bwd "
            "%.1f us; serial fwd %.1f bwd %.1f = %.1f us; linears on main + chains on "
            "side streams fwd %.1f bwd %.1f = %.1f us: saves %.1f us = %.0f%% of the LoRA "
            "time %.1f us\n",
            lf, lb, sf, sb, sf + sb, pf, pb, pf + pb, sf + sb - pf - pb,
            100 * (sf + sb - pf - pb) / lora, lora);
    }
    // the four downs by the token-mix algebra: mix_i = x + (shift(x) - x) mu_i, so
    // mix_i w1_i = x (diag(1 - mu_i) w1_i) + shift(x) (diag(mu_i) w1_i): all downs (w, a, g; 256
    // columns, or 288 with v) in two GEMMs of n = 288 accumulating, without the mixes; the
    // backward: d[x | shift x] = dh_cat w_catᵀ (one GEMM, n = 2C) and the weight gradients
    // from xᵀ dh_cat and (shift x - x)ᵀ dh_cat (the mixing vectors' gradients follow from them)
    {
        const int64_t R = 288;
        bf16 *wt = A(C * R), *wb = A(C * R), *wcat = A(2 * C * R), *hcat = A(M * R),
             *dhcat = A(M * R), *dxs = A(M * 2 * C), *dwt = A(C * R), *dwb = A(C * R);
        fill(wt, C * R, 81, 0.05f), fill(wb, C * R, 82, 0.05f), fill(wcat, 2 * C * R, 83, 0.05f);
        fill(dhcat, M * R, 84, 1.f);
        const bf16 *x = L[0].x, *sx = L[1].x, *dd = L[2].x;  // stand-ins of x, shift(x), shift-x
        auto down_fwd = [&] {
            GemmArgs g1 = args(M, R, C, false, x, C, false, wt, R, hcat, R);
            GemmArgs g2 = args(M, R, C, false, sx, C, false, wb, R, hcat, R);
            g2.beta = 1;
            gemm(g1, g_main), gemm(g2, g_main);
        };
        auto down_bwd = [&] {
            gemm(args(M, 2 * C, R, false, dhcat, R, true, wcat, R, dxs, 2 * C), g_main);
            gemm(args(C, R, M, true, x, C, false, dhcat, R, dwt, R), g_main);
            gemm(args(C, R, M, true, dd, C, false, dhcat, R, dwb, R), g_main);
        };
        const double af = time_graph(down_fwd), ab = time_graph(down_bwd);
        const double nf = time_graph([&] {
            for (auto& l : L) gemm(g_down(l, M), g_main);
        });
        const double nb = time_graph([&] {
            for (auto& l : L) gemm(g_dx(l, M), g_main), gemm(g_dw1(l, M), g_main);
        });
        std::printf(
            "  downs by the mix algebra (GEMMs only): fwd %.1f us (now 4 downs %.1f), bwd "
            "%.1f us (now 4 dx + 4 dw1 %.1f); saves %.1f us per layer before the token "
            "mix's own savings (3 fewer (M, C) mixes written, read and rebuilt)\n",
            af, nf, ab, nb, nf + nb - af - ab);
    }
    const Row& base = rows[0];
    std::printf(
        "\n| M=%-6lld variant                  | fwd us | bwd us | fwd+bwd us | vs serial "
        "| per step (x12) ms |\n",
        (long long)M);
    std::printf(
        "|----------------------------------------|-------:|-------:|-----------:|------"
        "----:|------------------:|\n");
    for (const Row& r : rows)
        std::printf("| %-38s | %6.1f | %6.1f | %10.1f | %8.2fx | %17.3f |\n", r.name.c_str(), r.f,
                    r.b, r.fb, base.fb / r.fb, 12 * r.fb / 1e3);
    CK(cudaDeviceSynchronize());
    for (void* p : owned) CK(cudaFree(p));
}

int main(int argc, char** argv) {
    std::vector<int64_t> ms{8192, 32768};
    if (argc > 1) {
        ms.clear();
        for (int i = 1; i < argc; ++i) ms.push_back(std::atoll(argv[i]));
    }
    cudaDeviceProp prop{};
    CK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device %s, %d SMs; cuBLAS %d\n", prop.name, prop.multiProcessorCount,
                CUBLAS_VERSION);
    CK(cudaStreamCreateWithFlags(&g_main, cudaStreamNonBlocking));
    CK(cudaEventCreateWithFlags(&g_fork, cudaEventDisableTiming));
    for (int i = 0; i < kStreams; ++i) {
        CK(cudaStreamCreateWithFlags(&g_side[i], cudaStreamNonBlocking));
        CK(cudaEventCreateWithFlags(&g_done[i], cudaEventDisableTiming));
        CK(cudaEventCreateWithFlags(&g_mid[i], cudaEventDisableTiming));
    }
    for (int64_t m : ms) run_m(m);
    std::printf("\nchecks: %d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}
