// cuBLASLt GEMM autotuning (cuda::set_gemm_autotune): tuned and untuned products agree with each
// other and with a double-precision host reference (bf16 and f32, beta 0 and 1, bias, batches,
// transposes, padded leading dims), tuning writes nothing the caller sees, and plans made
// under CUDA-graph capture stay untuned until a later call outside it; the graph-aware choice
// avoids algorithms that put a memset node into a graph.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "goose/core/rng.h"
#include "goose/core/tensor.h"
#include "ops/cuda/gemm_lt.h"

namespace goose {
namespace {

using gemm_lt::GemmArgs;
using gemm_lt::GemmType;

// Sets the autotune switch for one scope (the GOOSE_GEMM_TUNE variable would override it).
class TuneScope {
  public:
    explicit TuneScope(bool on) : prev_(cuda::gemm_autotune()) { cuda::set_gemm_autotune(on); }
    ~TuneScope() { cuda::set_gemm_autotune(prev_); }

  private:
    bool prev_;
};

struct Case {
    int64_t m, n, k, batch = 1, ldc_pad = 0;
    bool ta = false, tb = false;
    DType ab = DType::bf16, c = DType::bf16;
    double alpha = 1, beta = 0;
    bool bias = false;
    std::string name() const {
        return "m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
               " batch=" + std::to_string(batch) + " ta=" + std::to_string(ta) +
               " tb=" + std::to_string(tb) + " " + std::string(dtype_name(ab)) + "->" +
               std::string(dtype_name(c)) + " beta=" + std::to_string(beta) +
               (bias ? " bias" : "") + " ldc+" + std::to_string(ldc_pad);
    }
};

GemmType gemm_type(DType t) {
    return t == DType::bf16 ? GemmType::bf16 : t == DType::f64 ? GemmType::f64 : GemmType::f32;
}

// Operands of one case on the host (values already rounded to their dtype) and on the device.
struct Operands {
    Tensor a, b, c0, bias;  // CPU
    int64_t lda, ldb, ldc;
};

Operands make_operands(const Case& cs, Rng& rng) {
    Operands o;
    const int64_t ra = cs.ta ? cs.k : cs.m, ca = cs.ta ? cs.m : cs.k;
    const int64_t rb = cs.tb ? cs.n : cs.k, cb = cs.tb ? cs.k : cs.n;
    o.lda = ca, o.ldb = cb, o.ldc = cs.n + cs.ldc_pad;
    o.a = Tensor::randn(Shape{cs.batch, ra, ca}, rng, DType::f32).to(cs.ab);
    o.b = Tensor::randn(Shape{cs.batch, rb, cb}, rng, DType::f32).to(cs.ab);
    o.c0 = Tensor::randn(Shape{cs.batch, cs.m, o.ldc}, rng, DType::f32).to(cs.c);
    if (cs.bias) o.bias = Tensor::randn(Shape{cs.n}, rng, DType::f32).to(cs.c);
    return o;
}

// Runs the case on the GPU with tuning on or off; returns C (whole buffer, padding included).
std::vector<double> run_gpu(const Case& cs, const Operands& o, bool tune) {
    TuneScope scope(tune);
    const Tensor a = o.a.to(Device::cuda()), b = o.b.to(Device::cuda());
    Tensor c = o.c0.to(Device::cuda());
    const Tensor bias = cs.bias ? o.bias.to(Device::cuda()) : Tensor();
    GemmArgs g;
    g.m = cs.m, g.n = cs.n, g.k = cs.k, g.trans_a = cs.ta, g.trans_b = cs.tb;
    g.a = a.raw_data(), g.lda = o.lda, g.stride_a = o.a.numel() / cs.batch;
    g.b = b.raw_data(), g.ldb = o.ldb, g.stride_b = o.b.numel() / cs.batch;
    g.c = c.raw_data(), g.ldc = o.ldc, g.stride_c = o.c0.numel() / cs.batch;
    g.batch = cs.batch, g.ab_type = gemm_type(cs.ab), g.c_type = gemm_type(cs.c);
    g.alpha = cs.alpha, g.beta = cs.beta, g.bias = cs.bias ? bias.raw_data() : nullptr;
    gemm_lt::gemm(g, cuda::current_stream());
    cuda::synchronize();
    return c.to(Device::cpu()).to(DType::f64).to_vector();
}

// alpha op(A) op(B) + beta C0 (+ bias) in double; the padding keeps C0.
std::vector<double> reference(const Case& cs, const Operands& o) {
    const auto a = o.a.to(DType::f64).to_vector(), b = o.b.to(DType::f64).to_vector();
    auto c = o.c0.to(DType::f64).to_vector();
    const auto bias = cs.bias ? o.bias.to(DType::f64).to_vector() : std::vector<double>();
    const int64_t sa = o.a.numel() / cs.batch, sb = o.b.numel() / cs.batch,
                  sc = o.c0.numel() / cs.batch;
    for (int64_t p = 0; p < cs.batch; ++p)
        for (int64_t i = 0; i < cs.m; ++i)
            for (int64_t j = 0; j < cs.n; ++j) {
                double s = 0;
                for (int64_t l = 0; l < cs.k; ++l) {
                    const double x = a[p * sa + (cs.ta ? l * o.lda + i : i * o.lda + l)];
                    const double y = b[p * sb + (cs.tb ? j * o.ldb + l : l * o.ldb + j)];
                    s += x * y;
                }
                double& e = c[p * sc + i * o.ldc + j];
                e = cs.alpha * s + (cs.beta != 0 ? cs.beta * e : 0.0) + (cs.bias ? bias[j] : 0.0);
            }
    return c;
}

// ‖got − want‖ / ‖want‖ over the product region; the padding must match exactly.
double rel_err(const Case& cs, const Operands& o, const std::vector<double>& got,
               const std::vector<double>& want, int64_t* padding_changed) {
    double num = 0, den = 0;
    *padding_changed = 0;
    for (size_t idx = 0; idx < got.size(); ++idx) {
        const int64_t j = static_cast<int64_t>(idx) % o.ldc;
        if (j >= cs.n) {
            if (got[idx] != want[idx]) ++*padding_changed;
            continue;
        }
        if (!std::isfinite(got[idx])) return INFINITY;
        num += (got[idx] - want[idx]) * (got[idx] - want[idx]);
        den += want[idx] * want[idx];
    }
    return std::sqrt(num / den);
}

TEST(CudaGemmTune, TunedAndUntunedAgreeAndTouchOnlyTheOutput) {
    GOOSE_REQUIRE_GPU();
    if (std::getenv("GOOSE_GEMM_TUNE")) GTEST_SKIP() << "GOOSE_GEMM_TUNE overrides the switch";
    const std::vector<Case> cases = {
        {.m = 512, .n = 768, .k = 768},                                          // projection
        {.m = 512, .n = 768, .k = 768, .ldc_pad = 8, .beta = 1},                 // accumulate
        {.m = 96, .n = 640, .k = 1024, .ta = true, .c = DType::f32, .beta = 1},  // dW in f32
        {.m = 300, .n = 200, .k = 64, .tb = true, .bias = true},                 // bias
        {.m = 1024, .n = 32, .k = 768, .alpha = 0.75},                           // LoRA down
        {.m = 64, .n = 80, .k = 48, .batch = 3, .ldc_pad = 4, .beta = 1},        // batched
        {.m = 130, .n = 70, .k = 300, .tb = true, .ab = DType::f32, .c = DType::f32},
        {.m = 130, .n = 70, .k = 300, .ldc_pad = 2, .ab = DType::f32, .c = DType::f32, .beta = 1},
        {.m = 33,
         .n = 65,
         .k = 129,
         .batch = 2,
         .ta = true,
         .ab = DType::f32,
         .c = DType::f32,
         .bias = true},
    };
    Rng rng(31);
    for (const Case& cs : cases) {
        const Operands o = make_operands(cs, rng);
        const auto want = reference(cs, o);
        const int64_t plans_before = gemm_lt::cached_plans();
        const auto untuned = run_gpu(cs, o, false);
        const auto tuned = run_gpu(cs, o, true);
        const auto tuned_again = run_gpu(cs, o, true);  // the tuned plan, cached
        // Tuned plans are kept apart from untuned ones: two new plans (unless an earlier test
        // made the untuned one).
        EXPECT_GE(gemm_lt::cached_plans() - plans_before, 1) << cs.name();
        EXPECT_LE(gemm_lt::cached_plans() - plans_before, 2) << cs.name();
        // bf16 outputs round to 8 bits (2^-9 relative); f32 accumulation order differs.
        const double tol_ref = cs.c == DType::bf16 ? 6e-3 : 2e-6;
        const double tol_pair = cs.c == DType::bf16 ? 8e-3 : 2e-6;
        int64_t pad = 0;
        EXPECT_LE(rel_err(cs, o, untuned, want, &pad), tol_ref) << "untuned " << cs.name();
        EXPECT_EQ(pad, 0) << "untuned wrote the padding: " << cs.name();
        EXPECT_LE(rel_err(cs, o, tuned, want, &pad), tol_ref) << "tuned " << cs.name();
        EXPECT_EQ(pad, 0) << "tuned wrote the padding: " << cs.name();
        EXPECT_LE(rel_err(cs, o, tuned, untuned, &pad), tol_pair)
            << "tuned vs untuned " << cs.name();
        // The cached tuned plan gives what the call that tuned it gave (the same algorithm;
        // a split-K reduction may add in another order).
        EXPECT_LE(rel_err(cs, o, tuned_again, tuned, &pad), tol_pair) << "again " << cs.name();
        EXPECT_EQ(pad, 0) << cs.name();
    }
}

TEST(CudaGemmTune, PlansMadeUnderCaptureAreTunedByTheNextEagerCall) {
    GOOSE_REQUIRE_GPU();
    if (std::getenv("GOOSE_GEMM_TUNE")) GTEST_SKIP() << "GOOSE_GEMM_TUNE overrides the switch";
    TuneScope scope(true);
    const Case cs{.m = 200, .n = 384, .k = 256, .beta = 1};
    Rng rng(32);
    const Operands o = make_operands(cs, rng);
    const Tensor a = o.a.to(Device::cuda()), b = o.b.to(Device::cuda());
    Tensor c = o.c0.to(Device::cuda());
    GemmArgs g;
    g.m = cs.m, g.n = cs.n, g.k = cs.k;
    g.a = a.raw_data(), g.lda = o.lda, g.b = b.raw_data(), g.ldb = o.ldb;
    g.c = c.raw_data(), g.ldc = o.ldc, g.beta = 1;
    g.ab_type = GemmType::bf16, g.c_type = GemmType::bf16;
    cuda::Graph graph;
    graph.capture([&] { gemm_lt::gemm(g, cuda::current_stream()); });  // planned, not tuned
    // Reset C, replay: C0 + AB.
    const Tensor c0 = o.c0.to(Device::cuda());
    auto reset_c = [&] { c.copy_(c0); };
    const auto want = reference(cs, o);
    int64_t pad = 0;
    reset_c();
    graph.replay();
    cuda::synchronize();
    const auto replay1 = c.to(Device::cpu()).to(DType::f64).to_vector();
    EXPECT_LE(rel_err(cs, o, replay1, want, &pad), 6e-3);
    // An eager call tunes the plan (timing into scratch) and still adds AB exactly once.
    reset_c();
    gemm_lt::gemm(g, cuda::current_stream());
    cuda::synchronize();
    EXPECT_LE(rel_err(cs, o, c.to(Device::cpu()).to(DType::f64).to_vector(), want, &pad), 6e-3);
    // The graph keeps the kernels it captured.
    reset_c();
    graph.replay();
    cuda::synchronize();
    EXPECT_LE(rel_err(cs, o, c.to(Device::cpu()).to(DType::f64).to_vector(), replay1, &pad), 1e-6);
}

// Memset nodes of one product captured on a stream of its own (after an eager call made the
// plan); the graph is replayed and C returned.
std::pair<int, std::vector<double>> captured_memsets(const GemmArgs& g, Tensor& c) {
    cudaStream_t s = nullptr;
    EXPECT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    EXPECT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    gemm_lt::gemm(g, s);
    cudaGraph_t graph = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
    size_t n = 0;
    cudaGraphGetNodes(graph, nullptr, &n);
    std::vector<cudaGraphNode_t> nodes(n);
    cudaGraphGetNodes(graph, nodes.data(), &n);
    int memsets = 0;
    for (cudaGraphNode_t node : nodes) {
        cudaGraphNodeType t{};
        cudaGraphNodeGetType(node, &t);
        memsets += t == cudaGraphNodeTypeMemset;
    }
    cudaGraphExec_t exec = nullptr;
    EXPECT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    EXPECT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(s);
    return {memsets, c.to(Device::cpu()).to(DType::f64).to_vector()};
}

// The channel-mix products of RWKV-7 L12 C768 at B16 T512 (8192 rows): on the H100 cuBLASLt's
// heuristic picks an algorithm that issues a memset for the forward key product and the backward
// value-input product, so their plans are retuned at the first eager call (every candidate
// issues one there, so the fastest is kept); the captured product equals the eager one bit for
// bit, and a captured graph holds at most the one memset.
TEST(CudaGemmGraph, RetunedChannelMixProductsReplayLikeEager) {
    GOOSE_REQUIRE_GPU();
    if (std::getenv("GOOSE_GEMM_TUNE")) GTEST_SKIP() << "GOOSE_GEMM_TUNE overrides the switch";
    TuneScope scope(false);
    Rng rng(33);
    const int64_t rows = 8192, c = 768, f = 3072;
    const Tensor x = Tensor::randn(Shape{rows, c}, rng, DType::f32, 0, 0.5)
                         .to(DType::bf16)
                         .to(Device::cuda());
    const Tensor wk = Tensor::randn(Shape{f, c}, rng, DType::f32, 0, 0.05)
                          .to(DType::bf16)
                          .to(Device::cuda());
    const Tensor gy = Tensor::randn(Shape{rows, c}, rng, DType::f32, 0, 0.5)
                          .to(DType::bf16)
                          .to(Device::cuda());
    const Tensor wv = Tensor::randn(Shape{c, f}, rng, DType::f32, 0, 0.05)
                          .to(DType::bf16)
                          .to(Device::cuda());
    Tensor out = Tensor::empty(Shape{rows, f}, DType::bf16, Device::cuda());
    GemmArgs key;  // k = x wkᵀ: (8192, 768) (3072, 768)ᵀ
    key.m = rows, key.n = f, key.k = c, key.trans_b = true;
    key.a = x.raw_data(), key.lda = c, key.b = wk.raw_data(), key.ldb = c;
    key.c = out.raw_data(), key.ldc = f;
    key.ab_type = GemmType::bf16, key.c_type = GemmType::bf16;
    GemmArgs back = key;  // da = gy wv: (8192, 768) (768, 3072)
    back.trans_b = false;
    back.a = gy.raw_data(), back.b = wv.raw_data(), back.ldb = f;
    for (const GemmArgs* g : {&key, &back}) {
        gemm_lt::gemm(*g, cuda::current_stream());  // makes and probes the plan
        cuda::synchronize();
        const auto eager = out.to(Device::cpu()).to(DType::f64).to_vector();
        out.fill_(0.0);
        cuda::synchronize();
        const auto [memsets, replayed] = captured_memsets(*g, out);
        EXPECT_LE(memsets, 1) << (g == &key ? "key product" : "value-input product");
        ASSERT_EQ(replayed.size(), eager.size());
        size_t differ = 0;
        for (size_t i = 0; i < eager.size(); ++i) differ += replayed[i] != eager[i];
        EXPECT_EQ(differ, 0u);
    }
}

}  // namespace
}  // namespace goose
