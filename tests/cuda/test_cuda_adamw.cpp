// Multi-tensor Adam/AdamW on CUDA parameters against the CPU optimizer: several steps over
// tensors of odd sizes in groups with different learning rates and weight decay; f32 results
// bit for bit (both fuse the same multiply-adds; 1e-6 relative + 1e-8 on a CPU without FMA), f32 and
// bf16 gradients, and the bf16 copy written in the same pass.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "goose/core/cuda.h"
#include "goose/core/rng.h"
#include "goose/optim/adamw.h"

namespace goose::optim {
namespace {

#if defined(__FMA__)
constexpr double kTol = 0, kAbsTol = 0;  // bitwise
#else
// Without FMA the CPU rounds m + (1 - beta1)(g - m) twice: an ulp of the (1 - beta1)(g - m)
// term (~1e-9 here) can be 1e-5 of a small exp_avg, hence the absolute part.
constexpr double kTol = 1e-6, kAbsTol = 1e-8;
#endif

void expect_same(const Tensor& gpu, const Tensor& cpu, const std::string& what) {
    const auto g = gpu.to(Device::cpu()).to_vector(), c = cpu.to_vector();
    ASSERT_EQ(g.size(), c.size()) << what;
    size_t bad = 0;
    for (size_t i = 0; i < g.size(); ++i)
        if (!(std::fabs(g[i] - c[i]) <= kTol * std::fabs(c[i]) + kAbsTol)) {
            if (bad++ < 3)
                ADD_FAILURE() << what << " [" << i << "]: cuda " << g[i] << " cpu " << c[i];
        }
    EXPECT_EQ(bad, 0u) << what;
}

struct Pair {
    std::vector<Var> cpu, gpu;
};

// Parameters of odd sizes (1, 7, 33, 4097, 8193: vector tails and several blocks) as CPU and
// CUDA copies with equal values.
Pair make_params(Rng& rng, const std::vector<Shape>& shapes) {
    Pair p;
    for (const Shape& s : shapes) {
        const Tensor v = Tensor::randn(s, rng, DType::f32);
        p.cpu.emplace_back(v.clone(), true);
        p.gpu.emplace_back(v.to(Device::cuda()), true);
    }
    return p;
}

void run_steps(bool decoupled, DType grad_dtype, int steps) {
    Rng rng(decoupled ? 11 : 12);
    const std::vector<Shape> shapes = {Shape{1},       Shape{7},    Shape{33},
                                       Shape{17, 241}, Shape{8193}, Shape{3, 5, 7}};
    Pair p = make_params(rng, shapes);
    auto groups = [&](const std::vector<Var>& v) {
        return std::vector<ParamGroup>{
            {.params = {v[0], v[1], v[2]}, .lr_scale = 2.0, .weight_decay = 0.0, .name = "a"},
            {.params = {v[3], v[4], v[5]}, .lr_scale = 1.0, .weight_decay = 0.1, .name = "b"}};
    };
    const AdamConfig cfg{.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8};
    Adam cpu = decoupled ? make_adamw(groups(p.cpu), cfg) : make_adam(groups(p.cpu), cfg);
    Adam gpu = decoupled ? make_adamw(groups(p.gpu), cfg) : make_adam(groups(p.gpu), cfg);
    std::vector<Tensor> copies;
    for (const Var& v : p.gpu) {
        copies.push_back(Tensor::empty(v.shape(), DType::bf16, Device::cuda()));
        gpu.set_bf16_copy(v, copies.back());
    }
    for (int t = 0; t < steps; ++t) {
        for (size_t i = 0; i < shapes.size(); ++i) {
            // Gradients of the chosen dtype; the CPU gets the same values in f32.
            const Tensor g = Tensor::randn(shapes[i], rng, DType::f32, 0, 0.1).to(grad_dtype);
            p.cpu[i].grad_mut() = g.to(DType::f32);
            p.gpu[i].grad_mut() = g.to(Device::cuda());
        }
        cpu.step();
        gpu.step();
    }
    const auto sc = cpu.state(), sg = gpu.state();
    ASSERT_EQ(sc.size(), sg.size());
    for (size_t i = 0; i < sc.size(); ++i) {
        ASSERT_EQ(sc[i].first, sg[i].first);
        expect_same(sg[i].second, sc[i].second, sc[i].first);
    }
    for (size_t i = 0; i < shapes.size(); ++i) {
        expect_same(p.gpu[i].value(), p.cpu[i].value(), "value " + std::to_string(i));
        EXPECT_TRUE(p.gpu[i].value().device().is_cuda());
        // The bf16 copy is the rounding of the updated value.
        const auto cv = copies[i].to(Device::cpu()).to_vector();
        const auto want = p.gpu[i].value().to(Device::cpu()).to(DType::bf16).to_vector();
        EXPECT_EQ(cv, want) << "bf16 copy " << i;
    }
}

TEST(CudaAdamW, MatchesCpuAdamWOverSteps) {
    GOOSE_REQUIRE_GPU();
    run_steps(true, DType::f32, 4);
}

TEST(CudaAdamW, MatchesCpuAdamWithL2) {
    GOOSE_REQUIRE_GPU();
    run_steps(false, DType::f32, 3);
}

TEST(CudaAdamW, Bf16GradientsMatchCpuOnTheSameValues) {
    GOOSE_REQUIRE_GPU();
    run_steps(true, DType::bf16, 3);
}

TEST(CudaAdamW, ManyTensorsSpanSeveralLaunches) {
    GOOSE_REQUIRE_GPU();
    Rng rng(13);
    std::vector<Shape> shapes;
    for (int i = 0; i < 300; ++i) shapes.push_back(Shape{1 + (i * 37) % 301});
    Pair p = make_params(rng, shapes);
    Adam cpu = make_adamw({{.params = p.cpu, .weight_decay = 0.01}}, {.lr = 1e-2});
    Adam gpu = make_adamw({{.params = p.gpu, .weight_decay = 0.01}}, {.lr = 1e-2});
    for (int t = 0; t < 2; ++t) {
        for (size_t i = 0; i < shapes.size(); ++i) {
            const Tensor g = Tensor::randn(shapes[i], rng, DType::f32);
            p.cpu[i].grad_mut() = g;
            p.gpu[i].grad_mut() = g.to(Device::cuda());
        }
        cpu.step();
        gpu.step();
    }
    for (size_t i = 0; i < shapes.size(); i += 7)
        expect_same(p.gpu[i].value(), p.cpu[i].value(), "value " + std::to_string(i));
}

// Gradient clipping on the device (AdamConfig::max_grad_norm) against the CPU optimizer (which
// clips with optim::clip_grad_norm): the norm to 1e-6 relative (sums in another order), values
// to 1e-6 relative when clipped (the scale may differ in its last bit) and as the unclipped
// comparison above when the norm stays under the bound (the scale is exactly 1); f32 and bf16
// gradients over two launches of tensors; a captured step replays the eager one's clipping.
TEST(CudaAdamW, ClipsByTheGlobalNormLikeTheCpu) {
    GOOSE_REQUIRE_GPU();
    for (DType gd : {DType::f32, DType::bf16})
        for (double bound : {0.5, 1e6}) {
            Rng rng(14);
            std::vector<Shape> shapes;
            for (int i = 0; i < 260; ++i) shapes.push_back(Shape{1 + (i * 53) % 9001});
            Pair p = make_params(rng, shapes);
            const AdamConfig cfg{.lr = 1e-2, .max_grad_norm = bound};
            Adam cpu = make_adamw({{.params = p.cpu, .weight_decay = 0.01}}, cfg);
            Adam gpu = make_adamw({{.params = p.gpu, .weight_decay = 0.01}}, cfg);
            for (int t = 0; t < 2; ++t) {
                for (size_t i = 0; i < shapes.size(); ++i) {
                    const Tensor g = Tensor::randn(shapes[i], rng, DType::f32, 0, 0.1).to(gd);
                    p.cpu[i].grad_mut() = g.to(DType::f32);
                    p.gpu[i].grad_mut() = g.to(Device::cuda());
                }
                cpu.step();
                gpu.step();
                const double nc = cpu.last_grad_norm(), ng = gpu.last_grad_norm();
                EXPECT_NEAR(ng, nc, 1e-6 * nc) << dtype_name(gd) << " bound " << bound;
                EXPECT_GT(nc, 0.5);  // so the 0.5 bound clips
            }
            const std::string what = std::string(dtype_name(gd)) + " bound " +
                                     std::to_string(bound);
            for (size_t i = 0; i < shapes.size(); i += 13) {
                if (bound > 1) {
                    expect_same(p.gpu[i].value(), p.cpu[i].value(), what);
                    continue;
                }
                const auto g = p.gpu[i].value().to(Device::cpu()).to_vector();
                const auto c = p.cpu[i].value().to_vector();
                for (size_t j = 0; j < g.size(); ++j)
                    ASSERT_NEAR(g[j], c[j], 1e-6 * std::fabs(c[j]) + 1e-7)
                        << what << " value " << i << "[" << j << "]";
            }
        }
}

TEST(CudaAdamW, ClippedStepReplaysInAGraph) {
    GOOSE_REQUIRE_GPU();
    Rng rng(15);
    const std::vector<Shape> shapes = {Shape{4097}, Shape{33, 7}};
    Pair p = make_params(rng, shapes);
    std::vector<Var> twin;  // eager copy
    for (const Var& v : p.gpu) twin.emplace_back(v.value().clone(), true);
    const AdamConfig cfg{.lr = 1e-2, .max_grad_norm = 0.25};
    Adam graphed = make_adamw({{.params = p.gpu}}, cfg), eager = make_adamw({{.params = twin}}, cfg);
    for (size_t i = 0; i < shapes.size(); ++i) {
        const Tensor g = Tensor::randn(shapes[i], rng, DType::f32).to(Device::cuda());
        p.gpu[i].grad_mut() = g;
        twin[i].grad_mut() = g.clone();
    }
    eager.step();
    graphed.step();  // the first step plans the launch; the graph holds the second
    cuda::Graph graph;
    graph.capture([&] { graphed.step(); });
    eager.step();
    graphed.prepare_replay();
    graph.replay();
    cuda::synchronize();
    EXPECT_EQ(graphed.last_grad_norm(), eager.last_grad_norm());
    for (size_t i = 0; i < shapes.size(); ++i)
        EXPECT_EQ(p.gpu[i].value().to(Device::cpu()).to_vector(),
                  twin[i].value().to(Device::cpu()).to_vector())
            << i;
}

TEST(CudaAdamW, F64OnCudaIsAClearError) {
    GOOSE_REQUIRE_GPU();
    Var v(Tensor::zeros(Shape{3}, DType::f64, Device::cuda()), true);
    EXPECT_THROW(make_adamw({{.params = {v}}}), Error);
}

}  // namespace
}  // namespace goose::optim
