// The `goose icl` job: train, evaluate beside the baselines, write the run directory.
#include "goose/icl/run.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "goose/io/atomic_file.h"
#include "goose/io/pth.h"

#ifndef GOOSE_SOURCE_DIR
#define GOOSE_SOURCE_DIR "."
#endif

namespace goose::icl {

namespace {
std::string schedule_yaml(const char* name, const CurriculumSchedule& s) {
    return fmt::format("  {}: {{start: {}, end: {}, inc: {}, interval: {}}}\n", name, s.start,
                       s.end, s.inc, s.interval);
}

std::string config_yaml(const IclRunConfig& c) {
    const TrainConfig& t = c.train;
    std::string y = "# goose icl run configuration\n";
    y += fmt::format("task: {{name: {}, sparsity: {}, noise_std: {}, hidden: {}, depth: {}}}\n",
                     t.task.name, t.task.sparsity, t.task.noise_std, t.task.hidden, t.task.depth);
    y += fmt::format("model: {{family: {}, n_dims: {}, n_positions: {}, n_embd: {}, n_layer: {}, "
                     "n_head: {}, head_size: {}}}\n",
                     t.model.family, t.model.n_dims, t.model.n_positions, t.model.n_embd,
                     t.model.n_layer, t.model.n_head, t.model.head_size);
    y += "curriculum:\n" + schedule_yaml("dims", t.dims) + schedule_yaml("points", t.points);
    y += fmt::format("training: {{batch_size: {}, train_steps: {}, learning_rate: {}, optimizer: "
                     "{}, weight_decay: {}, seed: {}, save_every_steps: {}}}\n",
                     t.batch_size, t.train_steps, t.learning_rate, t.optimizer, t.weight_decay,
                     t.seed, t.save_every_steps);
    y += fmt::format("eval: {{prompts: {}}}\n", c.eval_prompts);
    return y;
}

// The trained model, rebuilt from run_dir/checkpoint.pth.
std::unique_ptr<IclModel> load_trained(const TrainConfig& t, const std::string& dir) {
    Rng rng(t.seed, "model");
    auto model = std::make_unique<IclModel>(t.model, rng);
    const nn::StateDict ckpt = io::load_pth(dir + "/checkpoint.pth");
    nn::StateDict params;
    for (auto& [name, tensor] : ckpt)
        if (name.rfind("model.", 0) == 0) params.emplace(name.substr(6), tensor);
    model->load_state_dict(params);
    return model;
}
}  // namespace

IclRunConfig default_icl_config() {
    IclRunConfig c;
    TrainConfig& t = c.train;
    t.task.name = "linear_regression";
    const int64_t d = 5, n = 2 * d + 1;
    t.model = ModelConfig{.family = "rwkv7", .n_dims = d, .n_positions = n, .n_embd = 64,
                          .n_layer = 3, .n_head = 4, .head_size = 16};
    t.dims = {.start = d, .end = d, .inc = 0, .interval = 1000};
    t.points = {.start = n, .end = n, .inc = 0, .interval = 1000};
    t.batch_size = 64;
    t.train_steps = 1500;
    t.learning_rate = 1e-3;
    t.save_every_steps = 500;
    t.log_every_steps = 50;
    return c;
}

EvalResults run_icl(const IclRunConfig& cfg, const std::string& out_dir, bool resume) {
    cfg.train.validate();
    if (cfg.eval_prompts < 1) fail("icl: eval prompts must be >= 1");
    std::filesystem::create_directories(out_dir);
    io::write_file_atomic(out_dir + "/config.yaml", config_yaml(cfg));
    const TrainConfig& t = cfg.train;
    std::printf("goose icl: %s on %s, d=%lld, %lld points, %lld steps -> %s\n",
                t.model.family.c_str(), t.task.name.c_str(), (long long)t.model.n_dims,
                (long long)t.points.end, (long long)t.train_steps, out_dir.c_str());
    std::fflush(stdout);
    const TrainResult tr = train(t, out_dir, resume);
    std::printf("trained: final loss %.4f after %lld steps (%.0f s)\n", tr.final_loss,
                (long long)tr.steps, tr.seconds);

    auto model = load_trained(t, out_dir);
    std::vector<std::pair<std::string, Predictor>> predictors;
    const IclModel* m = model.get();
    predictors.emplace_back(t.model.family, [m](const Tensor& xs, const Tensor& ys) {
        return m->predict(xs, ys);
    });
    const auto names = cfg.baselines.empty() ? default_baselines(t.task) : cfg.baselines;
    for (auto& p : baseline_predictors(names)) predictors.push_back(std::move(p));
    EvalConfig ec{.task = t.task, .n_dims = t.model.n_dims, .n_points = t.points.end,
                  .num_prompts = cfg.eval_prompts, .batch = t.batch_size, .seed = t.seed + 1};
    const EvalResults res = evaluate(ec, predictors, cfg.settings);
    write_metrics_json(out_dir + "/metrics.json", t.task.name, t.model.n_dims, t.points.end, res);
    write_curves_csv(out_dir + "/curves.csv", res);

    // The table: normalised error vs number of in-context examples k.
    for (const auto& [setting, curves] : res) {
        std::printf("\n%s: normalised squared error vs in-context examples k\n%4s", setting.c_str(), "k");
        for (const auto& [name, c] : curves) std::printf(" %14s", name.c_str());
        std::printf("\n");
        const size_t n = curves.begin()->second.k.size();
        for (size_t i = 0; i < n; ++i) {
            std::printf("%4lld", (long long)curves.begin()->second.k[i]);
            for (const auto& [name, c] : curves) std::printf(" %14.4f", c.mean[i]);
            std::printf("\n");
        }
    }
    const std::string script = std::string(GOOSE_SOURCE_DIR) + "/python/plot_icl.py";
    if (std::filesystem::exists(script) &&
        std::system("/usr/bin/python3 -c 'import matplotlib' > /dev/null 2>&1") == 0) {
        const std::string cmd = "/usr/bin/python3 " + script + " " + out_dir + "/metrics.json --out " +
                                out_dir + " > /dev/null 2>&1";
        if (std::system(cmd.c_str()) == 0)
            std::printf("\nplots: %s/*.png\n", out_dir.c_str());
        else
            std::printf("\nplots: the plotting script failed (%s)\n", cmd.c_str());
    } else {
        std::printf("\nplots: skipped (python3-matplotlib is not installed)\n");
    }
    std::printf("run directory: %s\n", out_dir.c_str());
    return res;
}

}  // namespace goose::icl
