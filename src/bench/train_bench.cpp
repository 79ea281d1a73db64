// Training benchmark: RWKV-7 steps (forward, cross-entropy + L2Wrap, backward, AdamW) on the CPU
// beside a PyTorch twin, or on CUDA beside the official trainer's measured H100 figures.
#include "goose/bench/train_bench.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <filesystem>
#include <regex>
#include <string>
#include <tuple>

#include "goose/autograd.h"
#include "goose/bench/timer.h"
#include "goose/core/cuda.h"
#include "goose/core/threads.h"
#include "goose/models/rwkv7.h"
#include "goose/optim/adamw.h"
#include "goose/optim/mixed_precision.h"

namespace goose::bench {

namespace {

// Every parameter ~ N(0, 0.02) (speed does not depend on the values; the official init's QR of
// a 65536-row head would dominate the benchmark's start-up).
void fill_random(models::Rwkv7& m, Rng& rng) {
    for (auto& [name, p] : m.named_parameters())
        p.value_mut().copy_(Tensor::randn(p.shape(), rng, p.dtype(), 0, 0.02));
}

// Runs the peer script and returns its tokens/s, or a negative value with a reason.
double run_peer(const std::string& cmd, std::string& why) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) {
        why = "could not start the peer";
        return -1;
    }
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int rc = pclose(p);
    std::smatch m;
    if (rc != 0 || !std::regex_search(out, m, std::regex("twin_tokens_per_s ([0-9.]+)"))) {
        why = "the peer failed: " + out.substr(0, 300);
        return -1;
    }
    return std::stod(m[1]);
}

// The official RWKV-LM x070 trainer on one H100 (bf16, its fastest WKV kernel and fused CUDA
// kernels, PyTorch 2.11), L12 D768 V65536, random tokens, bf16.
struct OfficialFigure {
    int64_t batch, ctx;
    double tokens_per_s, gib;
};
constexpr OfficialFigure kOfficialH100[] = {{16, 512, 116e3, 8.7}, {8, 4096, 182e3, 31.4}};
constexpr double kH100DenseBf16 = 989e12;  // FLOP/s, the datasheet's dense bf16 rate

struct Batch {
    Tensor x, y;  // (B, T) inputs and next-token targets
};

Batch random_batch(const TrainBenchConfig& cfg, Rng& rng, Device dev) {
    Tensor tokens = Tensor::empty(Shape{cfg.batch, cfg.ctx + 1}, DType::i64);
    for (int64_t i = 0; i < tokens.numel(); ++i)
        tokens.data<int64_t>()[i] = rng.randint(0, cfg.vocab);
    return {tokens.slice(1, 0, cfg.ctx).contiguous().to(dev),
            tokens.slice(1, 1, cfg.ctx + 1).contiguous().to(dev)};
}

void print_header(const TrainBenchConfig& cfg, const char* dtype) {
    std::printf("RWKV-7 L%lld C%lld head %lld V%lld, B=%lld T=%lld, %s, AdamW, L2Wrap, %s\n",
                (long long)cfg.layers, (long long)cfg.dim, (long long)cfg.head,
                (long long)cfg.vocab, (long long)cfg.batch, (long long)cfg.ctx, dtype,
                cfg.device.c_str());
}

void run_cpu(const TrainBenchConfig& cfg, const models::Rwkv7Config& mc) {
    std::printf("goose bench train: %s\n", machine_summary().c_str());
    print_header(cfg, "f32");
    models::Rwkv7 model(mc);
    Rng rng(0, "bench");
    fill_random(model, rng);
    auto opt =
        optim::make_adamw(models::rwkv7_param_groups(model, 0.001), {.lr = 1e-4, .beta2 = 0.99});
    const Batch b = random_batch(cfg, rng, Device::cpu());
    auto step = [&] {
        Var logits = model.forward(b.x);
        Var loss = ag::cross_entropy(logits, b.y);
        ag::backward(ag::l2wrap(loss, logits));
        opt.step();
        model.zero_grad();
    };
    const Timing t = time_fn(step, 1, cfg.steps, 0.0, cfg.steps);
    const double ours = static_cast<double>(cfg.batch * cfg.ctx) / t.median_s;
    std::printf("  goose: %.3f s/step (min %.3f, max %.3f, %d steps), %.0f tokens/s\n",
                t.median_s, t.min_s, t.max_s, t.reps, ours);
    if (cfg.no_peer) return;
    const std::string script = cfg.peer_script.empty()
                                   ? std::string(GOOSE_SOURCE_DIR) + "/bench/rwkv7_twin_train.py"
                                   : cfg.peer_script;
    if (!std::filesystem::exists(script)) {
        std::printf("  peer: skipped (%s not found)\n", script.c_str());
        return;
    }
    if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) {
        std::printf("  peer: skipped (python3-torch is not installed)\n");
        return;
    }
    const std::string cmd = fmt::format(
        "/usr/bin/python3 {} --layers {} --dim {} --head {} --vocab {} --ctx {} --batch {} "
        "--steps {} --threads {}",
        script, cfg.layers, cfg.dim, cfg.head, cfg.vocab, cfg.ctx, cfg.batch, cfg.steps,
        num_threads());
    std::string why;
    const double peer = run_peer(cmd, why);
    if (peer < 0) {
        std::printf("  peer: %s\n", why.c_str());
        return;
    }
    std::printf("  PyTorch twin (f32, same model and data, %d threads): %.0f tokens/s\n",
                num_threads(), peer);
    std::printf("ratio goose / twin: %.2fx\n", ours / peer);
}

void run_cuda(const TrainBenchConfig& cfg, const models::Rwkv7Config& mc, DType dtype) {
    if (!cuda::available())
        fail("bench train --device cuda: {}", cuda_compiled()
                                                    ? "no CUDA device is visible"
                                                    : "this build has no CUDA backend (make build CUDA=1)");
    std::printf("goose bench train: %s, GPU %s\n", machine_summary().c_str(),
                cuda::device_name().c_str());
    if (cfg.gemm_tune) cuda::set_gemm_autotune(true);
    const std::string dtype_text =
        std::string(dtype == DType::bf16 ? "bf16 (f32 master weights and AdamW state)" : "f32") +
        (cuda::gemm_autotune() ? ", GEMM autotune on" : ", GEMM autotune off");
    print_header(cfg, dtype_text.c_str());
    if (cfg.checkpoint) std::printf("activation checkpointing: every block recomputed in the backward\n");
    if (cfg.no_lean)
        std::printf("activations: the time mix's token mixes kept for the backward (--no-lean)\n");
    if (!cfg.no_graph)
        std::printf("CUDA graph: the whole step captured once after 2 eager steps, then replayed "
                    "(--no-graph: eager steps)\n");
    if (cfg.grad_clip > 0)
        std::printf("gradient clipping: global L2 norm %g before AdamW, on the device (the "
                    "official recipe's grad_clip; --grad-clip 0: off)\n", cfg.grad_clip);
    models::Rwkv7 model(mc);
    Rng rng(0, "bench");
    fill_random(model, rng);
    const double flops = rwkv7_train_flops_per_token(model);
    model.to(Device::cuda());
    model.set_activation_checkpointing(cfg.checkpoint);
    model.set_lean_activations(!cfg.no_lean);
    const optim::AdamConfig acfg{.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8,
                                 .decoupled_weight_decay = true,
                                 .max_grad_norm = cfg.grad_clip};
    std::unique_ptr<optim::Adam> f32_opt;
    std::unique_ptr<optim::MixedPrecisionAdam> mixed_opt;
    if (dtype == DType::bf16)  // bf16 parameters, f32 masters and moments
        mixed_opt = std::make_unique<optim::MixedPrecisionAdam>(
            models::rwkv7_param_groups(model, 0.001), acfg);
    else
        f32_opt = std::make_unique<optim::Adam>(models::rwkv7_param_groups(model, 0.001), acfg);
    const Batch b = random_batch(cfg, rng, Device::cuda());
    // One training step; the loss tensor is kept so that a graph replay's can be read.
    Tensor loss_value;
    auto step_body = [&] {
        Var loss = model.forward_loss(b.x, b.y);
        ag::backward(loss);
        if (mixed_opt) mixed_opt->step(); else f32_opt->step();
        model.zero_grad();
        loss_value = loss.value();
    };
    double last_loss = 0;
    auto read_loss = [&] {  // waits for the GPU (and reports device-side check failures)
        last_loss = loss_value.to(Device::cpu()).to(DType::f64).item();
    };
    auto eager_step = [&] {
        step_body();
        read_loss();
    };
    const double tokens = static_cast<double>(cfg.batch * cfg.ctx);
    // Memory: the peak of the live tensors; under a graph plus the blocks reserved for it (the
    // replays allocate nothing, the graph's tensors live in those blocks); plus the GEMM
    // workspaces (outside the allocator; PyTorch's come from its allocator and count there).
    const double gib_unit = 1024.0 * 1024 * 1024;
    auto report = [&](const char* what, const Timing& t, double reserved_gib = 0) {
        const double tps = tokens / t.median_s;
        const double gib = static_cast<double>(cuda::peak_memory()) / gib_unit + reserved_gib +
                           static_cast<double>(cuda::gemm_workspace_bytes()) / gib_unit;
        std::printf("  goose%s: %.1f ms/step (min %.1f, max %.1f, %d steps), %.0f tokens/s, "
                    "MFU %.1f%% (%.2f GFLOP/token vs %.0f TFLOP/s), peak memory %.1f GiB, "
                    "loss %.3f\n",
                    what, 1e3 * t.median_s, 1e3 * t.min_s, 1e3 * t.max_s, t.reps, tps,
                    100.0 * tps * flops / kH100DenseBf16, flops / 1e9, kH100DenseBf16 / 1e12,
                    gib, last_loss);
        return std::make_pair(tps, gib);
    };
    const bool use_graph = !cfg.no_graph, compare = cfg.compare_eager || cfg.no_graph;
    double ours = 0, gib = 0;
    if (compare) {
        cuda::reset_peak_memory();
        const Timing t = time_fn(eager_step, 2, cfg.steps, 0.0, cfg.steps);
        std::tie(ours, gib) = report(use_graph ? " (eager)" : "", t);
    } else {
        for (int i = 0; i < 2; ++i) eager_step();  // warm-up: caches, plans, optimizer state
    }
    if (use_graph) {
        const double eager_tps = ours;
        {  // the same step captured once into a CUDA graph, then replayed
            cuda::Graph graph;
            std::string why;
            try {
                graph.capture(step_body);
            } catch (const Error& e) {
                why = e.what();
            }
            if (!why.empty()) {  // say so and time the eager step instead
                std::printf("  CUDA graph: the capture failed (%s); timing the eager step\n",
                            why.c_str());
                cuda::reset_peak_memory();
                const Timing t = time_fn(eager_step, 2, cfg.steps, 0.0, cfg.steps);
                std::tie(ours, gib) = report(" (eager)", t);
            } else {
                // Replays queued as a training loop queues them: the host does not wait for a
                // step's loss before queuing the next one (it reads the last one at the end), so
                // the GPU does not idle between steps (a wait for the loss costs 0.26 ms a step
                // at L12 C768 B16 T512 on the H100). The host still runs at most two steps ahead
                // (prepare_replay waits for the upload two steps back), so each call's wall time
                // is a step's time once the queue is full.
                auto replay_step = [&] {
                    if (mixed_opt) mixed_opt->prepare_replay(); else f32_opt->prepare_replay();
                    graph.replay();
                };
                cuda::reset_peak_memory();
                const Timing tg = time_fn(replay_step, 3, cfg.steps, 0.0, cfg.steps);
                read_loss();
                const double reserved =
                    static_cast<double>(cuda::memory_stats().graph_cached) / gib_unit;
                const double workspaces =
                    static_cast<double>(cuda::gemm_workspace_bytes()) / gib_unit;
                const auto [g_tps, g_gib] = report(" (CUDA graph)", tg, reserved);
                std::printf("  CUDA graph of the whole step: %zu nodes (%zu memsets as kernels%s%s), "
                            "memory %.1f GiB (tensors %.1f + blocks reserved for the graph %.1f + "
                            "GEMM workspaces %.2f)",
                            graph.nodes(), graph.memsets_as_kernels(),
                            graph.memsets_kept_why().empty() ? "" : "; kept: ",
                            graph.memsets_kept_why().c_str(), g_gib, g_gib - reserved - workspaces,
                            reserved, workspaces);
                if (compare) std::printf("; graph / eager: %.3fx tokens/s", g_tps / eager_tps);
                std::printf("\n");
                ours = g_tps;
                gib = std::max(gib, g_gib);
            }
        }
    }
    if (cfg.compare_eager && use_graph) {
        if (mixed_opt) {  // the AdamW kernel alone against a device copy moving as many bytes
            Var loss = model.forward_loss(b.x, b.y);
            ag::backward(loss);  // bf16 gradients for the optimizer to read
            int64_t n = 0;
            for (const Var& m : mixed_opt->masters()) n += m.numel();
            const Timing ta =
                time_fn([&] { mixed_opt->step(); cuda::synchronize(); }, 2, 20, 0.0, 20);
            // f32 master, m, v read and written, bf16 gradient read, bf16 copy written; with
            // clipping the gradient is read once more for its norm.
            const double per_param = cfg.grad_clip > 0 ? 30.0 : 28.0;
            const double bytes = per_param * static_cast<double>(n);
            const Tensor src = Tensor::empty(Shape{static_cast<int64_t>(bytes / 8)}, DType::f32,
                                             Device::cuda());
            Tensor dst = Tensor::empty(src.shape(), DType::f32, Device::cuda());
            const Timing tc =
                time_fn([&] { dst.copy_(src); cuda::synchronize(); }, 2, 20, 0.0, 20);
            model.zero_grad();
            std::printf("  AdamW step alone%s: %.3f ms for %.1fM parameters (%.0f B each: %.0f "
                        "GB/s); device copy of as many bytes: %.3f ms (%.0f GB/s); AdamW / copy "
                        "time %.2fx\n",
                        cfg.grad_clip > 0 ? " (gradient clipping included)" : "",
                        1e3 * ta.median_s, static_cast<double>(n) / 1e6, per_param,
                        bytes / ta.median_s / 1e9,
                        1e3 * tc.median_s, bytes / tc.median_s / 1e9, ta.median_s / tc.median_s);
        }
    }
    for (const OfficialFigure& f : kOfficialH100)
        if (f.batch == cfg.batch && f.ctx == cfg.ctx && cfg.layers == 12 && cfg.dim == 768 &&
            cfg.vocab == 65536 && cfg.head == 64) {
            std::printf("  official RWKV-LM x070 trainer, one H100 (PyTorch 2.11, its fastest WKV "
                        "kernel): %.0f tokens/s, %.1f GiB\n",
                        f.tokens_per_s, f.gib);
            std::printf("ratio goose / official: %.2fx (target 2.50x), memory %.2fx\n",
                        ours / f.tokens_per_s, gib / f.gib);
            return;
        }
    std::printf("  peer: the official trainer's figures exist for L12 C768 head 64 V65536 at "
                "B16 T512 and B8 T4096 only\n");
}

}  // namespace

double rwkv7_train_flops_per_token(const models::Rwkv7& m) {
    double matrix_params = 0;
    for (const auto& [name, p] : m.named_parameters())
        if (p.ndim() == 2 && name != "emb.weight") matrix_params += static_cast<double>(p.numel());
    const auto& c = m.config();
    const double wkv = 3.0 * 8.0 * static_cast<double>(c.n_layer * c.n_head()) *
                       static_cast<double>(c.head_size * c.head_size);
    return 6.0 * matrix_params + wkv;
}

void run_train_bench(const TrainBenchConfig& cfg) {
    if (cfg.model != "rwkv7")
        fail("bench train: --model must be rwkv7, got '{}'", cfg.model);
    if (cfg.device != "cpu" && cfg.device != "cuda")
        fail("bench train: --device must be cpu or cuda, got '{}'", cfg.device);
    const std::string dts = cfg.dtype.empty() ? (cfg.device == "cuda" ? "bf16" : "f32") : cfg.dtype;
    if (dts != "f32" && dts != "bf16") fail("bench train: --dtype must be f32 or bf16, got '{}'", dts);
    if (cfg.device == "cpu" && dts != "f32")
        fail("bench train: the CPU trains in f32 (bf16 is a CUDA training dtype)");
    const auto mc = models::Rwkv7Config::with_defaults(cfg.vocab, cfg.layers, cfg.dim, cfg.head);
    mc.validate();
    if (cfg.ctx < 1 || cfg.batch < 1 || cfg.steps < 1)
        fail("bench train: ctx, batch and steps must be >= 1");
    if (cfg.device == "cpu") {
        run_cpu(cfg, mc);
        return;
    }
    try {
        run_cuda(cfg, mc, dts == "bf16" ? DType::bf16 : DType::f32);
    } catch (const OutOfMemory& e) {  // the allocator names the request; say what to change
        fail("{}\nbench train: B={} T={} does not fit this GPU{}; try a smaller --batch or --ctx{}",
             e.what(), cfg.batch, cfg.ctx, cfg.checkpoint ? " even with --checkpoint" : "",
             cfg.checkpoint ? "" : ", or --checkpoint (activation checkpointing)");
    }
}

}  // namespace goose::bench
