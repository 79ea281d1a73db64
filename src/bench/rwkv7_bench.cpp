// RWKV-7 training benchmark.
#include "goose/bench/rwkv7_bench.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>

#include "goose/autograd.h"
#include "goose/bench/timer.h"
#include "goose/core/threads.h"
#include "goose/models/rwkv7.h"
#include "goose/optim/adamw.h"


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
}  // namespace

void run_rwkv7_train_bench(const Rwkv7TrainBenchConfig& cfg) {
    const auto mc = models::Rwkv7Config::with_defaults(cfg.vocab, cfg.layers, cfg.dim, cfg.head);
    mc.validate();
    if (cfg.ctx < 1 || cfg.batch < 1 || cfg.steps < 1) fail("bench rwkv7-train: ctx, batch and steps must be >= 1");
    std::printf("goose bench rwkv7-train: %s\n", machine_summary().c_str());
    std::printf("RWKV-7 L%lld C%lld head %lld V%lld, B=%lld T=%lld, f32, AdamW, L2Wrap\n",
                (long long)cfg.layers, (long long)cfg.dim, (long long)cfg.head,
                (long long)cfg.vocab, (long long)cfg.batch, (long long)cfg.ctx);
    models::Rwkv7 model(mc);
    Rng rng(0, "bench");
    fill_random(model, rng);
    auto opt = optim::make_adamw(models::rwkv7_param_groups(model, 0.001), {.lr = 1e-4, .beta2 = 0.99});
    Tensor tokens = Tensor::empty(Shape{cfg.batch, cfg.ctx + 1}, DType::i64);
    for (int64_t i = 0; i < tokens.numel(); ++i) tokens.data<int64_t>()[i] = rng.randint(0, cfg.vocab);
    const Tensor x = tokens.slice(1, 0, cfg.ctx).contiguous(), y = tokens.slice(1, 1, cfg.ctx + 1).contiguous();
    auto step = [&] {
        Var logits = model.forward(x);
        Var loss = ag::cross_entropy(logits, y);
        ag::backward(ag::l2wrap(loss, logits));
        opt.step();
        model.zero_grad();
    };
    const Timing t = time_fn(step, 1, cfg.steps, 0.0, cfg.steps);
    const double ours = static_cast<double>(cfg.batch * cfg.ctx) / t.median_s;
    std::printf("  goose: %.3f s/step (min %.3f, max %.3f, %d steps), %.0f tokens/s\n", t.median_s,
                t.min_s, t.max_s, t.reps, ours);
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

}  // namespace goose::bench
