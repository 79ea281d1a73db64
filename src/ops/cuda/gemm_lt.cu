// cuBLASLt GEMMs on raw pointers: one handle per device, a workspace per stream (GEMMs on
// concurrent streams must not share one), plans cached per shape.
// With goose::cuda::gemm_autotune() on, a plan made outside graph capture is tuned: the call's
// own operands are multiplied by each of the heuristic's first kTuneCandidates algorithms into
// a scratch output (C is read, never written), timed on the call's stream, and the fastest kept
// if it beats the heuristic's first by more than kTuneMinGain.
// Graph-aware choice (always on): some algorithms issue a memset of a few bytes before their
// kernel; in a CUDA graph that memset node leaves the GPU idle for 6-14 us (kernel trace on the
// H100 at L12 C768 B16 T512: the channel-mix and head products, 0.22 ms a step). The first call
// of a plan made outside capture captures the heuristic's choice into a throwaway graph; when it
// holds a memset, the plan is tuned as above with kGraphMemsetCost added to the time of every
// algorithm that issues one, so one without it wins unless slower by more than that. (There
// every candidate issued one, and the retuned plans still made the step 1.2% faster: 281.5k ->
// 284.8k tokens/s.)
// Row-major C = op(A) op(B) is computed as the column-major product Cᵀ = op(B)ᵀ op(A)ᵀ, which
// reads the same memory: the row-major (r, c) matrix with leading dim ld is the column-major
// (c, r) one, so A and B swap places and keep their transpose flags.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "goose/core/cuda.h"
#include "ops/cuda/gemm_lt.h"

namespace goose::gemm_lt {

namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // cuBLAS's own default on Hopper is 32 MiB
constexpr int kMaxDevices = 16;
constexpr int kTuneCandidates = 16;  // heuristic results timed per plan when tuning
constexpr int kTuneWarmup = 2, kTuneReps = 10, kTuneRounds = 2;
// The heuristic's first choice is kept unless another is faster by more than this fraction
// (timing noise of a few percent would otherwise swap algorithms for nothing).
constexpr float kTuneMinGain = 0.02f;
// Milliseconds a memset node costs a GEMM inside a CUDA graph (6.3 us forward, 12 us backward
// measured by kernel trace at L12 C768 B16 T512 on the H100). cuda::Graph now turns these
// memsets into kernel nodes (core/cuda/graph_memsets.h), which cost about 2 us; a cost of 2 us
// here chose plans no faster (B16 T512 291.7k / 291.5k tokens/s against 291.9k / 291.9k, B8 T4096
// 319.3k against 319.4k), so the retuning keeps the 8 us it was tuned with.
constexpr float kGraphMemsetCost = 0.008f;

[[noreturn]] void lt_fail(const char* what, int status, const GemmArgs& g) {
    throw std::runtime_error(
        std::string("cuBLASLt ") + what + " failed (status " + std::to_string(status) +
        ") for a GEMM m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) +
        " k=" + std::to_string(g.k) + " batch=" + std::to_string(g.batch) +
        " trans_a=" + std::to_string(g.trans_a) + " trans_b=" + std::to_string(g.trans_b));
}

#define LT_CHECK(call, what)                                          \
    do {                                                              \
        cublasStatus_t st_ = (call);                                  \
        if (st_ != CUBLAS_STATUS_SUCCESS) lt_fail(what, int(st_), g); \
    } while (0)

void cuda_check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw std::runtime_error(std::string("CUDA error in GEMM ") + what + ": " +
                                 cudaGetErrorString(e));
}

cudaDataType_t cuda_type(GemmType t) {
    switch (t) {
        case GemmType::f32:
            return CUDA_R_32F;
        case GemmType::f64:
            return CUDA_R_64F;
        case GemmType::bf16:
            return CUDA_R_16BF;
    }
    return CUDA_R_32F;
}

// Largest power of two (<= 256) dividing the address: cuBLASLt picks kernels by alignment.
uint32_t alignment(const void* p) {
    const auto v = reinterpret_cast<uintptr_t>(p);
    uint32_t a = 256;
    while (a > 1 && (v % a) != 0) a /= 2;
    return a;
}

struct Device {
    cublasLtHandle_t handle = nullptr;
    std::unordered_map<cudaStream_t, void*> workspaces;  // kept for the process's life
    cudaStream_t probe = nullptr;  // captures single GEMMs to see what they issue
};

// Everything a plan depends on.
struct Key {
    int64_t m, n, k, lda, ldb, ldc, sa, sb, sc, batch;
    uint32_t align_a, align_b, align_c, align_bias;
    uint8_t ta, tb, ab, c, beta_zero, has_bias;
    int device, sm_target;
    uint8_t tune;  // planned with autotuning on (such plans are tuned once, outside capture)
    bool operator==(const Key& o) const { return std::memcmp(this, &o, sizeof(Key)) == 0; }
};
struct KeyHash {
    size_t operator()(const Key& k) const {
        const auto* p = reinterpret_cast<const unsigned char*>(&k);
        size_t h = 1469598103934665603ull;
        for (size_t i = 0; i < sizeof(Key); ++i) h = (h ^ p[i]) * 1099511628211ull;
        return h;
    }
};

struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool tuned = false;  // the algorithm was picked by timing (else the heuristic's first)
    bool probed = false;  // the heuristic's choice was checked for a memset (graph-aware choice)
};

std::mutex g_mutex;
Device g_devices[kMaxDevices];
std::unordered_map<Key, Plan, KeyHash> g_plans;

Device& device_state(int dev, const GemmArgs& g) {
    if (dev < 0 || dev >= kMaxDevices) throw std::runtime_error("GEMM: device index out of range");
    Device& d = g_devices[dev];
    if (!d.handle) LT_CHECK(cublasLtCreate(&d.handle), "cublasLtCreate");
    return d;
}

void* workspace(Device& d, cudaStream_t s) {
    auto it = d.workspaces.find(s);
    if (it != d.workspaces.end()) return it->second;
    // A stream's first GEMM may come while a CUDA graph is captured: this allocation lives as
    // long as the process, so it is safe to make there.
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    cuda_check(cudaThreadExchangeStreamCaptureMode(&mode), "capture mode");
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, kWorkspaceBytes);
    cuda_check(cudaThreadExchangeStreamCaptureMode(&mode), "capture mode");
    cuda_check(e, "workspace allocation");
    d.workspaces.emplace(s, p);
    return p;
}

void set_layout_batch(cublasLtMatrixLayout_t l, int64_t batch, int64_t stride, const GemmArgs& g) {
    if (batch <= 1) return;
    const int32_t count = static_cast<int32_t>(batch);
    LT_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                              sizeof(count)),
             "layout batch count");
    LT_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                              &stride, sizeof(stride)),
             "layout batch stride");
}

cublasLtMatmulPreference_t make_preference(const Key& key, const GemmArgs& g);

Plan make_plan(const Key& key, const GemmArgs& g, Device& d) {
    Plan p;
    const cublasComputeType_t compute =
        g.ab_type == GemmType::f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
    const cudaDataType_t scale = g.ab_type == GemmType::f64 ? CUDA_R_64F : CUDA_R_32F;
    LT_CHECK(cublasLtMatmulDescCreate(&p.desc, compute, scale), "matmul descriptor");
    // Column-major view: D (n, m) = op(B') op(A') with B' = our A, A' = our B.
    const cublasOperation_t op_a = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    LT_CHECK(
        cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)),
        "transa");
    LT_CHECK(
        cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)),
        "transb");
    if (key.sm_target > 0) {  // beside a kernel that holds the other SMs (cuda::SmTarget)
        const int32_t sms = key.sm_target;
        LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET,
                                                &sms, sizeof(sms)),
                 "SM count target");
    }
    if (g.bias) {
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                                sizeof(epi)),
                 "bias epilogue");
        const cudaDataType_t bt = cuda_type(g.c_type);
        LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt,
                                                sizeof(bt)),
                 "bias type");
    }
    const cudaDataType_t tab = cuda_type(g.ab_type), tc = cuda_type(g.c_type);
    // A' = our B: stored column-major (n, k) when !trans_b, (k, n) when trans_b.
    LT_CHECK(
        cublasLtMatrixLayoutCreate(&p.la, tab, g.trans_b ? g.k : g.n, g.trans_b ? g.n : g.k, g.ldb),
        "layout of B");
    LT_CHECK(
        cublasLtMatrixLayoutCreate(&p.lb, tab, g.trans_a ? g.m : g.k, g.trans_a ? g.k : g.m, g.lda),
        "layout of A");
    LT_CHECK(cublasLtMatrixLayoutCreate(&p.lc, tc, g.n, g.m, g.ldc), "layout of C");
    set_layout_batch(p.la, g.batch, g.stride_b, g);
    set_layout_batch(p.lb, g.batch, g.stride_a, g);
    set_layout_batch(p.lc, g.batch, g.stride_c, g);

    cublasLtMatmulPreference_t pref = make_preference(key, g);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(d.handle, p.desc, p.la, p.lb, p.lc,
                                                             p.lc, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0)
        lt_fail("heuristic (no algorithm for these types/shapes)", int(st), g);
    p.algo = result.algo;
    return p;
}

// The plan's preference: our workspace, the operands' alignments.
cublasLtMatmulPreference_t make_preference(const Key& key, const GemmArgs& g) {
    cublasLtMatmulPreference_t pref = nullptr;
    LT_CHECK(cublasLtMatmulPreferenceCreate(&pref), "preference");
    const uint64_t ws = kWorkspaceBytes;
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                  &ws, sizeof(ws)),
             "workspace preference");
    const uint32_t aa = key.align_b, ab = key.align_a, ac = key.align_c;  // swapped, see above
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                  &aa, sizeof(aa)),
             "alignment of A");
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                  &ab, sizeof(ab)),
             "alignment of B");
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                  &ac, sizeof(ac)),
             "alignment of C");
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                  &ac, sizeof(ac)),
             "alignment of D");
    return pref;
}

// C = beta C (+ bias) where the product is empty (k = 0). Row-major, batch at stride_c.
template <class T>
__global__ void scale_c_kernel(T* c, int64_t m, int64_t n, int64_t ldc, int64_t stride_c,
                               int64_t batch, double beta, const T* bias) {
    const int64_t total = m * n * batch;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
         i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t j = i % n, r = (i / n) % m, b = i / (m * n);
        T* e = c + b * stride_c + r * ldc + j;
        double v = beta == 0 ? 0.0 : beta * double(*e);
        if (bias) v += double(bias[j]);
        *e = T(v);
    }
}
template <>
__global__ void scale_c_kernel<__nv_bfloat16>(__nv_bfloat16* c, int64_t m, int64_t n, int64_t ldc,
                                              int64_t stride_c, int64_t batch, double beta,
                                              const __nv_bfloat16* bias) {
    const int64_t total = m * n * batch;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
         i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t j = i % n, r = (i / n) % m, b = i / (m * n);
        __nv_bfloat16* e = c + b * stride_c + r * ldc + j;
        float v = beta == 0 ? 0.f : float(beta) * __bfloat162float(*e);
        if (bias) v += __bfloat162float(bias[j]);
        *e = __float2bfloat16(v);
    }
}

void scale_c(const GemmArgs& g, cudaStream_t s) {
    const int64_t total = g.m * g.n * g.batch;
    const int blocks = static_cast<int>(std::min<int64_t>((total + 255) / 256, 4096));
    switch (g.c_type) {
        case GemmType::f32:
            scale_c_kernel<float><<<blocks, 256, 0, s>>>(static_cast<float*>(g.c), g.m, g.n, g.ldc,
                                                         g.stride_c, g.batch, g.beta,
                                                         static_cast<const float*>(g.bias));
            break;
        case GemmType::f64:
            scale_c_kernel<double><<<blocks, 256, 0, s>>>(static_cast<double*>(g.c), g.m, g.n,
                                                          g.ldc, g.stride_c, g.batch, g.beta,
                                                          static_cast<const double*>(g.bias));
            break;
        case GemmType::bf16:
            scale_c_kernel<__nv_bfloat16><<<blocks, 256, 0, s>>>(
                static_cast<__nv_bfloat16*>(g.c), g.m, g.n, g.ldc, g.stride_c, g.batch, g.beta,
                static_cast<const __nv_bfloat16*>(g.bias));
            break;
    }
    cuda_check(cudaGetLastError(), "launch of the k = 0 kernel");
}

// ---- autotuning ----

// Holds the GPU for about `cycles` clocks, so that the host queues a timed run's launches
// before it starts: the events then time the GEMMs back to back, not the host's launch rate.
__global__ void hold_kernel(long long cycles) {
    const long long t0 = clock64();
    while (clock64() - t0 < cycles) {
    }
}

size_t type_bytes(GemmType t) {
    return t == GemmType::f64 ? 8 : t == GemmType::bf16 ? 2 : 4;
}

bool tune_log() {
    static const bool on = [] {
        const char* v = std::getenv("GOOSE_GEMM_TUNE_LOG");
        return v && *v && std::strcmp(v, "0") != 0;
    }();
    return on;
}

// Everything a tuning run owns; released on every exit path.
struct TuneResources {
    void* scratch = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    ~TuneResources() {
        if (start) cudaEventDestroy(start);
        if (stop) cudaEventDestroy(stop);
        if (scratch) cudaFree(scratch);
    }
};

// Times the heuristic's first kTuneCandidates algorithms for this call and stores the fastest
// in the plan (the heuristic's first unless beaten by more than kTuneMinGain), counting
// kGraphMemsetCost for those that issue a memset. D goes to a scratch buffer laid out as C (C
// is only read), so the caller's data is untouched; the real product runs afterwards with the
// chosen algorithm. Algorithms that need more workspace than ours, or that fail, are skipped;
// if none runs, the plan keeps the heuristic's first.
bool issues_memset(Device& d, const Plan& p, const cublasLtMatmulAlgo_t& algo, const GemmArgs& g,
                   const void* alpha, const void* beta, void* ws);

void tune_plan(Plan& p, const Key& key, const GemmArgs& g, Device& d, cudaStream_t s,
               const void* alpha, const void* beta, void* ws) {
    cublasLtMatmulPreference_t pref = make_preference(key, g);
    cublasLtMatmulHeuristicResult_t cand[kTuneCandidates] = {};
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
        d.handle, p.desc, p.la, p.lb, p.lc, p.lc, pref, kTuneCandidates, cand, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found <= 1) return;  // nothing to choose between
    const int count = std::min(found, kTuneCandidates);

    TuneResources r;
    const size_t elems =
        size_t((g.batch - 1) * (g.batch > 1 ? g.stride_c : 0) + (g.m - 1) * g.ldc + g.n);
    cuda_check(cudaDeviceSynchronize(), "synchronize before GEMM tuning");  // time it alone
    if (cudaMalloc(&r.scratch, elems * type_bytes(g.c_type)) != cudaSuccess) {
        cudaGetLastError();  // no room for a scratch output: keep the heuristic's choice
        r.scratch = nullptr;
        return;
    }
    cuda_check(cudaEventCreate(&r.start), "event");
    cuda_check(cudaEventCreate(&r.stop), "event");
    int dev = 0, clock_khz = 0;
    cuda_check(cudaGetDevice(&dev), "cudaGetDevice");
    cuda_check(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev), "clock rate");
    const long long hold_cycles = static_cast<long long>(clock_khz) * 1000 / 2000;  // ~0.5 ms

    auto run = [&](const cublasLtMatmulAlgo_t& algo) {
        return cublasLtMatmul(d.handle, p.desc, alpha, g.b, p.la, g.a, p.lb, beta, g.c, p.lc,
                              r.scratch, p.lc, &algo, ws, kWorkspaceBytes, s);
    };
    // Milliseconds per product, best over the rounds; < 0: the algorithm is unusable.
    float ms[kTuneCandidates];
    for (int i = 0; i < count; ++i) {
        ms[i] = -1.f;
        if (cand[i].state != CUBLAS_STATUS_SUCCESS || cand[i].workspaceSize > kWorkspaceBytes)
            continue;
        bool ok = true;
        for (int w = 0; w < kTuneWarmup && ok; ++w) ok = run(cand[i].algo) == CUBLAS_STATUS_SUCCESS;
        if (!ok || cudaStreamSynchronize(s) != cudaSuccess) {
            cudaGetLastError();
            continue;
        }
        ms[i] = 0;
    }
    for (int round = 0; round < kTuneRounds; ++round)
        for (int i = 0; i < count; ++i) {
            if (ms[i] < 0) continue;
            hold_kernel<<<1, 1, 0, s>>>(hold_cycles);
            cuda_check(cudaEventRecord(r.start, s), "event record");
            bool ok = true;
            for (int rep = 0; rep < kTuneReps && ok; ++rep)
                ok = run(cand[i].algo) == CUBLAS_STATUS_SUCCESS;
            cuda_check(cudaEventRecord(r.stop, s), "event record");
            float t = 0;
            if (!ok || cudaEventSynchronize(r.stop) != cudaSuccess ||
                cudaEventElapsedTime(&t, r.start, r.stop) != cudaSuccess) {
                cudaGetLastError();
                ms[i] = -1;
                continue;
            }
            t /= kTuneReps;
            ms[i] = round == 0 ? t : std::min(ms[i], t);
        }
    cuda_check(cudaGetLastError(), "GEMM tuning");
    // What a graph replay pays on top: the idle time behind a memset node.
    bool memset[kTuneCandidates] = {};
    for (int i = 0; i < count; ++i)
        if (ms[i] >= 0 && issues_memset(d, p, cand[i].algo, g, alpha, beta, ws)) {
            memset[i] = true;
            ms[i] += kGraphMemsetCost;
        }
    int best = -1;
    for (int i = 0; i < count; ++i)
        if (ms[i] >= 0 && (best < 0 || ms[i] < ms[best])) best = i;
    if (best < 0) return;
    const int fastest = best;
    if (ms[0] > 0 && ms[best] > ms[0] * (1 - kTuneMinGain)) best = 0;
    p.algo = cand[best].algo;
    if (tune_log())
        std::fprintf(stderr,
                     "goose gemm tune: m=%lld n=%lld k=%lld batch=%lld ta=%d tb=%d ab=%d c=%d "
                     "beta0=%d bias=%d sms=%d: %d algos, heuristic first %.2f us%s, fastest #%d "
                     "%.2f us (%.3fx), kept #%d (graph times: +%.0f us for a memset)\n",
                     (long long)g.m, (long long)g.n, (long long)g.k, (long long)g.batch,
                     int(g.trans_a), int(g.trans_b), int(key.ab), int(key.c), int(key.beta_zero),
                     int(key.has_bias), key.sm_target, found, 1e3 * ms[0],
                     memset[0] ? " with a memset" : "", fastest, 1e3 * ms[fastest],
                     ms[0] > 0 ? double(ms[0]) / ms[fastest] : 0.0, best, 1e3 * kGraphMemsetCost);
}

// Whether the product with `algo` issues a memset node besides its kernels: captured into a
// throwaway graph on a private stream (nothing runs). Unknown (the capture fails): false.
bool issues_memset(Device& d, const Plan& p, const cublasLtMatmulAlgo_t& algo, const GemmArgs& g,
                   const void* alpha, const void* beta, void* ws) {
    if (!d.probe) cuda_check(cudaStreamCreateWithFlags(&d.probe, cudaStreamNonBlocking), "stream");
    if (cudaStreamBeginCapture(d.probe, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    const cublasStatus_t st = cublasLtMatmul(d.handle, p.desc, alpha, g.b, p.la, g.a, p.lb, beta,
                                             g.c, p.lc, g.c, p.lc, &algo, ws, kWorkspaceBytes,
                                             d.probe);
    cudaGraph_t graph = nullptr;
    const cudaError_t e = cudaStreamEndCapture(d.probe, &graph);
    bool found = false;
    if (st == CUBLAS_STATUS_SUCCESS && e == cudaSuccess && graph) {
        size_t n = 0;
        if (cudaGraphGetNodes(graph, nullptr, &n) == cudaSuccess && n > 0) {
            std::vector<cudaGraphNode_t> nodes(n);
            if (cudaGraphGetNodes(graph, nodes.data(), &n) == cudaSuccess)
                for (size_t i = 0; i < n && !found; ++i) {
                    cudaGraphNodeType t{};
                    found = cudaGraphNodeGetType(nodes[i], &t) == cudaSuccess &&
                            t == cudaGraphNodeTypeMemset;
                }
        }
    }
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    return found;
}

bool stream_capturing(cudaStream_t s) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(s, &status) != cudaSuccess) {
        cudaGetLastError();
        return true;  // unknown: do not risk synchronising
    }
    return status != cudaStreamCaptureStatusNone;
}

}  // namespace

void gemm(const GemmArgs& g, void* stream) {
    if (g.m <= 0 || g.n <= 0 || g.batch <= 0) return;
    const bool mixed = g.ab_type == GemmType::bf16 && g.c_type == GemmType::f32;
    if (g.ab_type != g.c_type && !mixed)
        throw std::runtime_error("GEMM: C must have the type of A and B, or f32 with bf16 A, B");
    if (g.bias && g.beta != 0) throw std::runtime_error("GEMM: a bias needs beta = 0");
    auto s = static_cast<cudaStream_t>(stream);
    if (g.k <= 0) {
        scale_c(g, s);
        return;
    }
    int dev = 0;
    cuda_check(cudaGetDevice(&dev), "cudaGetDevice");
    Key key{};
    key.m = g.m, key.n = g.n, key.k = g.k, key.lda = g.lda, key.ldb = g.ldb, key.ldc = g.ldc;
    key.batch = g.batch;
    if (g.batch > 1) key.sa = g.stride_a, key.sb = g.stride_b, key.sc = g.stride_c;
    key.align_a = alignment(g.a), key.align_b = alignment(g.b), key.align_c = alignment(g.c);
    key.align_bias = g.bias ? alignment(g.bias) : 0;
    key.ta = g.trans_a, key.tb = g.trans_b;
    key.ab = static_cast<uint8_t>(g.ab_type), key.c = static_cast<uint8_t>(g.c_type);
    key.beta_zero = g.beta == 0, key.has_bias = g.bias != nullptr;
    key.device = dev;
    key.sm_target = goose::cuda::sm_target();
    key.tune = goose::cuda::gemm_autotune();

    std::unique_lock<std::mutex> lock(g_mutex);
    Device& d = device_state(dev, g);
    auto it = g_plans.find(key);
    if (it == g_plans.end()) it = g_plans.emplace(key, make_plan(key, g, d)).first;
    Plan& p = it->second;
    if (g.bias)
        LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias,
                                                sizeof(g.bias)),
                 "bias pointer");
    const float alpha_f = static_cast<float>(g.alpha), beta_f = static_cast<float>(g.beta);
    const bool f64 = g.ab_type == GemmType::f64;
    const void* alpha = f64 ? static_cast<const void*>(&g.alpha) : &alpha_f;
    const void* beta = f64 ? static_cast<const void*>(&g.beta) : &beta_f;
    void* ws = workspace(d, s);
    // A plan made under capture waits for the first call outside it to be tuned or probed.
    if (!p.tuned && !p.probed && !stream_capturing(s) && !goose::cuda::capturing()) {
        const bool retune = key.tune || issues_memset(d, p, p.algo, g, alpha, beta, ws);
        p.probed = true;
        if (retune) {
            tune_plan(p, key, g, d, s, alpha, beta, ws);
            p.tuned = true;
        }
    }
    LT_CHECK(cublasLtMatmul(d.handle, p.desc, alpha, g.b, p.la, g.a, p.lb, beta, g.c, p.lc, g.c,
                            p.lc, &p.algo, ws, kWorkspaceBytes, s),
             "matmul");
}

size_t workspace_bytes() {
    std::lock_guard<std::mutex> lock(g_mutex);
    size_t n = 0;
    for (const Device& d : g_devices) n += d.workspaces.size() * kWorkspaceBytes;
    return n;
}

int64_t cached_plans() {
    std::lock_guard<std::mutex> lock(g_mutex);
    return static_cast<int64_t>(g_plans.size());
}

}  // namespace goose::gemm_lt
