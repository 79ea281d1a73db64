// `goose bench icl-train`: Goose's ICL training step beside the PyTorch twin's, per backbone.
#include "goose/bench/icl_bench.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>

#include "goose/autograd.h"
#include "goose/bench/timer.h"
#include "goose/core/threads.h"
#include "goose/icl/model.h"
#include "goose/icl/run.h"
#include "goose/icl/sampler.h"
#include "goose/icl/tasks.h"
#include "goose/optim/adamw.h"


namespace goose::bench {

namespace {

constexpr int kBatches = 4;  // distinct batches, drawn before timing and cycled (both sides)

struct Batch {
    Tensor xs, ys;
};

// Seconds per training step (forward, MSE, backward, Adam) of the default configuration with
// the given backbone; params receives the model's parameter count.
double time_goose(const icl::TrainConfig& t, int warmup, int steps, int64_t& params) {
    Rng model_rng(t.seed, "model");
    icl::IclModel model(t.model, model_rng);
    params = model.num_parameters();
    optim::AdamConfig acfg;
    acfg.lr = t.learning_rate;
    optim::Adam opt = optim::make_adamw({{.params = model.parameters()}}, acfg);
    std::vector<Batch> batches;
    for (int i = 0; i < kBatches; ++i) {
        Rng r = Rng(t.seed, "bench").fork(std::to_string(i));
        Rng rx = r.fork("xs"), rt = r.fork("task");
        Batch b;
        b.xs = icl::sample_xs(t.batch_size, t.points.end, t.model.n_dims, rx, t.dims.end);
        b.ys = icl::make_task(t.task, t.model.n_dims, t.batch_size, rt)->evaluate(b.xs);
        batches.push_back(b);
    }
    int i = 0;
    auto step = [&] {
        const Batch& b = batches[static_cast<size_t>(i++ % kBatches)];
        model.zero_grad();
        Var loss = ag::mse(model.forward(b.xs, b.ys), Var(b.ys));
        ag::backward(loss);
        opt.step();
    };
    return time_fn(step, warmup, steps, 0.0, steps).median_s;
}

// The twin script in the source tree this binary was built from (GOOSE_SOURCE_DIR).
std::string default_twin_script() {
    return std::string(GOOSE_SOURCE_DIR) + "/bench/icl_twin_train.py";
}

// Runs cmd and returns its combined output; rc receives the exit status.
std::string run_capture(const std::string& cmd, int& rc) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) {
        rc = -1;
        return "could not start the twin";
    }
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    rc = pclose(p);
    return out;
}

// The twin's figures for one family, or a note saying why there are none.
void time_twin(const IclTrainBenchConfig& cfg, const std::string& script,
               const icl::TrainConfig& t, int threads, IclTrainBenchRow& row) {
    const icl::ModelConfig& m = t.model;
    const std::string cmd = fmt::format(
        "/usr/bin/python3 {} --family {} --dims {} --points {} --batch {} --embd {} --layers {} "
        "--heads {} --head-size {} --lr {} --steps {} --warmup {} --threads {}",
        script, m.family, m.n_dims, t.points.end, t.batch_size, m.n_embd, m.n_layer, m.n_head,
        m.head_size, t.learning_rate, cfg.steps, cfg.warmup, threads);
    int rc = 0;
    const std::string out = run_capture(cmd, rc);
    std::smatch sp, ss;
    if (rc != 0 || !std::regex_search(out, sp, std::regex("twin_params ([0-9]+)")) ||
        !std::regex_search(out, ss, std::regex("twin_step_s ([0-9.eE+-]+)"))) {
        row.twin_note = "the twin failed: " + out.substr(0, 300);
        return;
    }
    row.twin_params = std::stoll(sp[1]);
    row.twin_step_s = std::stod(ss[1]);
}

}  // namespace

std::vector<IclTrainBenchRow> run_icl_train_bench(const IclTrainBenchConfig& cfg) {
    std::vector<std::string> families;
    if (cfg.family == "all") {
        families = icl::model_families();
    } else {
        bool known = false;
        for (const auto& f : icl::model_families()) known = known || f == cfg.family;
        if (!known)
            fail("bench icl-train: unknown --family \"{}\" (valid: rwkv7, transformer, lstm, all)",
                 cfg.family);
        families = {cfg.family};
    }
    if (cfg.steps < 1) fail("bench icl-train: --steps must be >= 1, got {}", cfg.steps);
    if (cfg.warmup < 0) fail("bench icl-train: --warmup must be >= 0, got {}", cfg.warmup);
    if (cfg.threads < 0) fail("bench icl-train: --threads must be >= 0, got {}", cfg.threads);
    ThreadScope scope(cfg.threads > 0 ? cfg.threads : num_threads());
    const int threads = num_threads();

    icl::TrainConfig base = icl::default_icl_config().train;
    const icl::ModelConfig& m = base.model;
    std::printf("goose bench icl-train: %s\n", machine_summary().c_str());
    std::printf("default ICL configuration: %s, d=%lld, %lld points, B=%lld, L%lld C%lld "
                "(transformer %lld heads, rwkv7 head size %lld), Adam lr %g, f32; "
                "%d warm-up + %d timed steps per side, median\n",
                base.task.name.c_str(), (long long)m.n_dims, (long long)base.points.end,
                (long long)base.batch_size, (long long)m.n_layer, (long long)m.n_embd,
                (long long)m.n_head, (long long)m.head_size, base.learning_rate, cfg.warmup,
                cfg.steps);

    std::string script, skip;
    if (!cfg.no_peer) {
        script = cfg.peer_script.empty() ? default_twin_script() : cfg.peer_script;
        if (!std::filesystem::exists(script))
            skip = fmt::format("skipped ({} not found)", script);
        else if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0)
            skip = "skipped (python3-torch is not installed)";
    }

    std::vector<IclTrainBenchRow> rows;
    for (const auto& family : families) {
        icl::TrainConfig t = base;
        t.model.family = family;
        IclTrainBenchRow row;
        row.family = family;
        std::printf("timing %s: goose...", family.c_str());
        std::fflush(stdout);
        row.goose_step_s = time_goose(t, cfg.warmup, cfg.steps, row.params);
        std::printf(" %.4f s/step", row.goose_step_s);
        if (cfg.no_peer) {
            row.twin_note = "not run (--no-peer)";
        } else if (!skip.empty()) {
            row.twin_note = skip;
        } else {
            std::printf(", twin...");
            std::fflush(stdout);
            time_twin(cfg, script, t, threads, row);
            if (row.twin_step_s > 0) std::printf(" %.4f s/step", row.twin_step_s);
        }
        std::printf("\n");
        std::fflush(stdout);
        if (row.twin_params >= 0 && row.twin_params != row.params)
            fail("bench icl-train: the {} twin has {} parameters, Goose's model {}: not the same "
                 "architecture", family, row.twin_params, row.params);
        rows.push_back(row);
    }

    std::printf("\n%-12s %10s %14s %10s %14s %10s %12s\n", "family", "params", "goose s/step",
                "steps/s", "twin s/step", "steps/s", "goose/twin");
    for (const auto& r : rows) {
        std::printf("%-12s %10lld %14.4f %10.1f", r.family.c_str(), (long long)r.params,
                    r.goose_step_s, 1.0 / r.goose_step_s);
        if (r.twin_step_s > 0)
            std::printf(" %14.4f %10.2f %11.2fx\n", r.twin_step_s, 1.0 / r.twin_step_s,
                        r.twin_step_s / r.goose_step_s);
        else
            std::printf(" %14s %10s %12s\n", "-", "-", "-");
    }
    for (const auto& r : rows)
        if (r.twin_step_s > 0)
            std::printf("%s: parameter counts match (goose %lld, twin %lld)\n", r.family.c_str(),
                        (long long)r.params, (long long)r.twin_params);
        else
            std::printf("%s twin: %s\n", r.family.c_str(), r.twin_note.c_str());
    std::printf("twin: PyTorch (/usr/bin/python3), same architecture, batch, data distribution "
                "and optimizer; %d OpenMP threads on both sides, OpenBLAS on the calling thread "
                "on both; ratio = twin s/step / goose s/step\n",
                threads);
    return rows;
}

}  // namespace goose::bench
