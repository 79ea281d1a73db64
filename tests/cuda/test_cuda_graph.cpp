// CUDA graphs: the whole bf16 training step captured once and replayed gives the eager step's
// losses and parameters (bit for bit: same kernels, same inputs, same coefficient values); AdamW
// reads its per-step coefficients from the device; the capture's blocks stay reserved for the
// graph, and its pool reserves about the capture's peak of live bytes; bad ids and targets
// inside a replay fail with a clear error at the next sync.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "common/expect_error.h"
#include "cuda_test_util.h"
#include "goose/autograd.h"
#include "goose/core/cuda.h"
#include "goose/models/rwkv7.h"
#include "goose/ops/binary.h"
#include "goose/ops/loss.h"
#include "goose/ops/reduce.h"
#include "goose/ops/sequence.h"
#include "goose/optim/adamw.h"
#include "goose/optim/mixed_precision.h"

namespace goose {
namespace {

using test::expect_error;

constexpr int64_t kVocab = 64, kBatch = 2, kCtx = 32;

Tensor random_ids(Rng& rng, int64_t hi = kVocab) {
    Tensor t = Tensor::empty(Shape{kBatch, kCtx}, DType::i64);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = rng.randint(0, hi);
    return t;
}

// A small bf16 RWKV-7 with its mixed-precision AdamW and fixed input buffers on CUDA.
struct Trainer {
    models::Rwkv7 model;
    std::unique_ptr<optim::MixedPrecisionAdam> opt;
    Tensor x, y, loss;  // fixed device buffers: inputs, and the last step's loss

    explicit Trainer(bool checkpoint = false)
        : model(models::Rwkv7Config::with_defaults(kVocab, 2, 64, 16)) {
        Rng init(7, "init");
        model.init_official(init);
        model.to(Device::cuda());
        model.set_activation_checkpointing(checkpoint);
        opt = std::make_unique<optim::MixedPrecisionAdam>(
            models::rwkv7_param_groups(model, 0.001),
            optim::AdamConfig{.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8});
        x = Tensor::zeros(Shape{kBatch, kCtx}, DType::i64, Device::cuda());
        y = Tensor::zeros(Shape{kBatch, kCtx}, DType::i64, Device::cuda());
    }

    void step_body() {
        Var l = model.forward_loss(x, y);
        ag::backward(l);
        opt->step();
        model.zero_grad();
        loss = l.value();
    }

    void load(const Tensor& xs, const Tensor& ys) {
        x.copy_(xs);
        y.copy_(ys);
    }

    double read_loss() const { return loss.to(Device::cpu()).to(DType::f64).item(); }

    // Every bf16 parameter and f32 master, as host bytes.
    std::vector<std::vector<uint8_t>> state() const {
        std::vector<std::vector<uint8_t>> out;
        auto bytes = [&](const Tensor& t) {
            const Tensor h = t.to(Device::cpu()).contiguous();
            const auto* p = static_cast<const uint8_t*>(h.raw_data());
            out.emplace_back(p, p + h.nbytes());
        };
        for (const auto& [name, p] : model.named_parameters()) bytes(p.value());
        for (const Var& m : opt->masters()) bytes(m.value());
        return out;
    }
};

struct TrainRun {
    std::vector<double> losses;
    std::vector<std::vector<uint8_t>> state;
};

// `steps` steps on batches drawn from one seed; with a graph after `eager_first` eager steps.
TrainRun train(int steps, bool graph, int eager_first = 2, bool checkpoint = false) {
    Trainer tr(checkpoint);
    Rng data(11, "data");
    cuda::Graph g;
    TrainRun r;
    for (int s = 0; s < steps; ++s) {
        const Tensor tok = random_ids(data), next = random_ids(data);
        tr.load(tok, next);
        if (graph && s >= eager_first) {
            if (!g.captured()) g.capture([&] { tr.step_body(); });
            tr.opt->prepare_replay();
            g.replay();
        } else {
            tr.step_body();
        }
        r.losses.push_back(tr.read_loss());
    }
    EXPECT_EQ(tr.opt->adam().steps(), steps);
    r.state = tr.state();
    return r;
}

TEST(CudaGraph, ReplayedTrainingStepsMatchEagerSteps) {
    GOOSE_REQUIRE_GPU();
    constexpr int kSteps = 8;
    const TrainRun eager = train(kSteps, false), again = train(kSteps, false);
    const TrainRun graph = train(kSteps, true);
    // The eager step is deterministic (no atomics in the reductions), so the replays must give
    // the same bits: same kernels on the same inputs with the same coefficient values.
    ASSERT_EQ(eager.losses, again.losses) << "the eager step itself is not deterministic";
    for (int s = 0; s < kSteps; ++s)
        EXPECT_EQ(graph.losses[static_cast<size_t>(s)], eager.losses[static_cast<size_t>(s)])
            << "step " << s;
    EXPECT_LT(graph.losses.back(), graph.losses.front());  // it trains
    ASSERT_EQ(graph.state.size(), eager.state.size());
    for (size_t i = 0; i < eager.state.size(); ++i)
        EXPECT_TRUE(graph.state[i] == eager.state[i]) << "tensor " << i << " differs";
}

TEST(CudaGraph, CheckpointedStepReplaysLikeTheEagerOne) {
    GOOSE_REQUIRE_GPU();
    const TrainRun eager = train(5, false, 2, true), graph = train(5, true, 2, true);
    EXPECT_EQ(graph.losses, eager.losses);
    EXPECT_TRUE(graph.state == eager.state);
}

TEST(CudaGraph, AdamReadsItsStepCoefficientsFromTheDevice) {
    GOOSE_REQUIRE_GPU();
    // Two identical parameter sets; one updated eagerly, one by replays of a captured step()
    // (with an lr change on the way: the coefficients are uploaded before each replay).
    auto make = [] {
        Rng rng(3, "adam");
        std::vector<Var> ps;
        for (int64_t n : {1000, 37, 4096}) {
            Var p(Tensor::randn(Shape{n}, rng).to(Device::cuda()), true);
            p.grad_mut() = Tensor::randn(Shape{n}, rng).to(Device::cuda());
            ps.push_back(p);
        }
        return ps;
    };
    std::vector<Var> a = make(), b = make();
    const optim::AdamConfig cfg{.lr = 1e-2, .beta2 = 0.99};
    optim::Adam oa({{.params = a, .weight_decay = 0.1}}, cfg);
    optim::Adam ob({{.params = b, .weight_decay = 0.1}}, cfg);
    cuda::Graph g;
    for (int s = 0; s < 6; ++s) {
        if (s == 3) {
            oa.set_lr(3e-3);
            ob.set_lr(3e-3);
        }
        oa.step();
        if (s == 0) {
            ob.step();  // eager first step, then the graph
        } else {
            if (!g.captured()) g.capture([&] { ob.step(); });
            ob.prepare_replay();
            g.replay();
        }
    }
    EXPECT_EQ(ob.steps(), 6);
    for (size_t i = 0; i < a.size(); ++i) {
        const std::vector<double> va = a[i].value().to(Device::cpu()).to_vector();
        const std::vector<double> vb = b[i].value().to(Device::cpu()).to_vector();
        EXPECT_EQ(va, vb) << "parameter " << i;
    }
}

TEST(CudaGraph, CaptureBlocksStayReservedForTheGraph) {
    GOOSE_REQUIRE_GPU();
    Rng rng(5, "pool");
    const Tensor x = Tensor::randn(Shape{1 << 16}, rng).to(Device::cuda());
    Tensor out;
    void* scratch = nullptr;
    cuda::Graph g;
    g.capture([&] {
        const Tensor t = ops::binary_forward(BinaryOp::add, x, x);  // dies inside the capture
        scratch = t.raw_data();
        out = ops::binary_forward(BinaryOp::mul, t, x);
    });
    EXPECT_GT(g.nodes(), 0u);
    // Eager tensors of the same size must not land on the graph's blocks.
    std::vector<Tensor> eager;
    for (int i = 0; i < 4; ++i) {
        eager.push_back(Tensor::zeros(Shape{1 << 16}, DType::f32, Device::cuda()));
        EXPECT_NE(eager.back().raw_data(), scratch);
        EXPECT_NE(eager.back().raw_data(), out.raw_data());
    }
    g.replay();
    const std::vector<double> xv = x.to(Device::cpu()).to_vector();
    const std::vector<double> ov = out.to(Device::cpu()).to_vector();
    for (size_t i = 0; i < xv.size(); i += 997)
        EXPECT_FLOAT_EQ(static_cast<float>(ov[i]), static_cast<float>(2 * xv[i] * xv[i]));
}

// A capture whose tensors come in many sizes that no size class shares (a forward-like stack of
// 8-37 MiB tensors with small ones beside them, then a backward-like unwinding with 24-60 MiB
// transients): the graph's pool carves them out of shared segments, so it reserves at most an
// eighth over the capture's peak of live bytes (replayed on the host: 808 MiB for a 742 MiB
// peak, where blocks kept per size class would take 967). No two live tensors overlap, the
// kept results survive the replays' reuse of freed ranges, and releasing the graph returns
// every segment to the shared cache (the last ones when the tensors outliving the graph die).
TEST(CudaGraph, PoolReservesAboutThePeakOfTheCapturesLiveTensors) {
    GOOSE_REQUIRE_GPU();
    constexpr size_t kMiB = size_t(1) << 20;
    Rng rng(29, "pool");
    const Tensor x = Tensor::randn(Shape{1 << 19}, rng).to(Device::cuda());  // 2 MiB
    cuda::synchronize();
    const cuda::MemoryStats before = cuda::memory_stats();
    cuda::reset_peak_memory();
    std::map<uintptr_t, size_t> live;  // the capture's live tensors: start -> bytes
    int overlaps = 0;
    auto make = [&](size_t bytes) {
        Tensor t = Tensor::empty(Shape{static_cast<int64_t>(bytes / 4)}, DType::f32,
                                 Device::cuda());
        const auto at = reinterpret_cast<uintptr_t>(t.raw_data());
        auto next = live.lower_bound(at);
        if (next != live.end() && next->first < at + bytes) ++overlaps;
        if (next != live.begin() && std::prev(next)->first + std::prev(next)->second > at)
            ++overlaps;
        live[at] = bytes;
        return t;
    };
    auto drop = [&](Tensor& t) {
        live.erase(reinterpret_cast<uintptr_t>(t.raw_data()));
        t = Tensor();
    };
    std::vector<Tensor> acts, smalls, outs;
    auto compute = [&] {  // out = x * x + x, through a transient
        Tensor sq = ops::binary_forward(BinaryOp::mul, x, x);
        outs.push_back(ops::binary_forward(BinaryOp::add, sq, x));
    };
    constexpr int kDepth = 32;
    auto g = std::make_unique<cuda::Graph>();
    g->capture([&] {
        for (size_t i = 0; i < kDepth; ++i) {
            acts.push_back(make(8 * kMiB + i * 7919 % 29 * kMiB + i * 131 % 97 * 4096));
            smalls.push_back(make(512 * (1 + i * 37 % 1500)));
            if (i % 3 == 0) {
                Tensor t = make(4 * kMiB + i * 53 % 23 * kMiB);
                drop(t);
            }
            if (i % 5 == 0) compute();
        }
        for (size_t i = kDepth; i-- > 0;) {
            drop(acts.back());
            acts.pop_back();
            Tensor t = make(24 * kMiB + i * 104729 % 37 * kMiB + i * 61 % 89 * 4096);
            if (i % 4 == 0) {
                drop(smalls.back());
                smalls.pop_back();
            }
            if (i % 5 == 0) compute();
            drop(t);
        }
    });
    EXPECT_EQ(overlaps, 0);
    const cuda::MemoryStats after = cuda::memory_stats();
    const size_t peak_live = after.peak - before.in_use;
    const size_t kept = after.in_use - before.in_use;
    const size_t reserved = kept + after.graph_cached - before.graph_cached;
    std::printf("graph pool: peak of the capture's live tensors %.1f MiB, reserved %.1f MiB\n",
                double(peak_live) / kMiB, double(reserved) / kMiB);
    EXPECT_GT(peak_live, 700 * kMiB);
    EXPECT_GE(reserved, peak_live);
    EXPECT_LE(reserved, peak_live + peak_live / 8);
    // The replays write the transients into freed ranges without touching the kept results.
    const std::vector<double> xv = x.to(Device::cpu()).to_vector();
    for (int r = 0; r < 2; ++r) {
        g->replay();
        for (const Tensor& out : outs) {
            const std::vector<double> ov = out.to(Device::cpu()).to_vector();
            for (size_t i = 0; i < xv.size(); i += 4099) {
                // Rounded twice as the two kernels do (volatile: the host compiler must not
                // contract it into one FMA, which differs where x * x + x cancels, x near -1).
                const float xf = static_cast<float>(xv[i]);
                const volatile float sq = xf * xf;
                EXPECT_FLOAT_EQ(static_cast<float>(ov[i]), sq + xf);
            }
        }
    }
    // Release with results still alive: their segments return when they die.
    g.reset();
    const cuda::MemoryStats released = cuda::memory_stats();
    EXPECT_EQ(released.in_use, after.in_use);
    EXPECT_LE(released.graph_cached - before.graph_cached, reserved - kept);
    smalls.clear();
    outs.clear();
    const cuda::MemoryStats empty = cuda::memory_stats();
    EXPECT_EQ(empty.in_use, before.in_use);
    EXPECT_EQ(empty.graph_cached, before.graph_cached);
    EXPECT_EQ(empty.cached, after.cached + kept);  // every segment, whole, in the shared cache
    cuda::empty_cache();
    EXPECT_EQ(cuda::memory_stats().cached, before.graph_cached);
}

TEST(CudaGraph, HostCopiesInsideACaptureAreClearErrors) {
    GOOSE_REQUIRE_GPU();
    Tensor d = Tensor::zeros(Shape{4}, DType::f32, Device::cuda());
    cuda::Graph g;
    expect_error([&] { g.capture([&] { (void)d.to(Device::cpu()); }); },
                 {"device-to-host copy", "cannot be captured in a CUDA graph"});
    expect_error([&] { g.capture([&] { d.copy_(Tensor::zeros(Shape{4})); }); },
                 {"host-to-device copy", "cannot be captured in a CUDA graph"});
    EXPECT_FALSE(g.captured());
    expect_error([&] { g.replay(); }, "nothing has been captured");
    // The stream is usable afterwards.
    EXPECT_EQ(d.to(Device::cpu()).to_vector(), std::vector<double>(4, 0.0));
}

TEST(CudaGraph, BadTokenIdInAReplayIsReportedAtTheNextSync) {
    GOOSE_REQUIRE_GPU();
    Trainer tr;
    Rng data(13, "data");
    const Tensor good_x = random_ids(data), good_y = random_ids(data);
    tr.load(good_x, good_y);
    tr.step_body();  // eager warm-up
    (void)tr.read_loss();
    cuda::Graph g;
    g.capture([&] { tr.step_body(); });
    Tensor bad_x = good_x.clone();
    bad_x.data<int64_t>()[1 * kCtx + 5] = kVocab + 7;
    tr.load(bad_x, good_y);
    tr.opt->prepare_replay();
    g.replay();
    expect_error([&] { (void)tr.read_loss(); },
                 {"embedding: id 71 at position [1, 5]", "outside [0, 64)",
                  "device-side check"});
    // The flag is cleared: a good batch replays cleanly.
    tr.load(good_x, good_y);
    tr.opt->prepare_replay();
    g.replay();
    EXPECT_TRUE(std::isfinite(tr.read_loss()));
    // A bad target is named by the fused head + cross-entropy.
    Tensor bad_y = good_y.clone();
    bad_y.data<int64_t>()[3] = -5;
    tr.load(good_x, bad_y);
    tr.opt->prepare_replay();
    g.replay();
    expect_error([&] { cuda::synchronize(); },
                 {"head_cross_entropy: target -5 at position [0, 3]", "outside [0, 64)"});
}

TEST(CudaGraph, CrossEntropyAndMaxChecksRunOnTheDeviceUnderCapture) {
    GOOSE_REQUIRE_GPU();
    Rng rng(17, "ce");
    const Tensor logits = Tensor::randn(Shape{4, 10}, rng).to(Device::cuda());
    Tensor targets = Tensor::zeros(Shape{4}, DType::i64, Device::cuda());
    Tensor loss;
    cuda::Graph g;
    g.capture([&] { loss = ops::cross_entropy_forward(logits, targets).loss; });
    targets.copy_(Tensor::from(Shape{4}, {1, 2, 12, 3}, DType::i64));
    g.replay();
    expect_error([&] { cuda::synchronize(); },
                 {"cross_entropy: target 12 at position [2]", "outside [0, 10)"});
    targets.copy_(Tensor::from(Shape{4}, {1, 2, 9, 3}, DType::i64));
    g.replay();
    const double l = loss.to(Device::cpu()).item();
    EXPECT_NEAR(l, ops::cross_entropy_forward(logits.to(Device::cpu()),
                                              targets.to(Device::cpu())).loss.item(), 1e-5);
    // max backward: the indices are checked on the device.
    const Tensor gy = Tensor::full(Shape{4}, 1.0, DType::f32, Device::cuda());
    Tensor idx = Tensor::zeros(Shape{4}, DType::i64, Device::cuda());
    Tensor gx;
    cuda::Graph gm;
    gm.capture([&] { gx = ops::max_backward(gy, idx, Shape{4, 10}, 1, false); });
    idx.copy_(Tensor::from(Shape{4}, {0, 10, 3, 4}, DType::i64));
    gm.replay();
    expect_error([&] { cuda::synchronize(); }, {"max: index 10 at position [1]", "(axis 1)"});
}

TEST(CudaGraph, EmbeddingCheckStaysImmediateWhenEager) {
    GOOSE_REQUIRE_GPU();
    const Tensor w = Tensor::zeros(Shape{8, 4}, DType::f32, Device::cuda());
    const Tensor ids = Tensor::from(Shape{2}, {1, 9}, DType::i64).to(Device::cuda());
    expect_error([&] { (void)ops::embedding_forward(w, ids); }, {"embedding: id 9", "[0, 8)"});
}

}  // namespace
}  // namespace goose
