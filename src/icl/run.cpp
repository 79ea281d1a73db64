// The `goose icl` job: train, evaluate beside the baselines, write and re-read the run directory.
#include "goose/icl/run.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sys/wait.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "goose/core/error.h"
#include "goose/io/atomic_file.h"
#include "goose/io/pth.h"


namespace goose::icl {
namespace fs = std::filesystem;

namespace {

std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char ch : s) {
        if (ch == '\'')
            q.append("'\\''");
        else
            q.push_back(ch);
    }
    q.push_back('\'');
    return q;
}

std::string python() {
    const char* p = std::getenv("GOOSE_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

// The run's checkpoint, checked to exist (goose::Error naming the path otherwise).
std::string checkpoint_path(const std::string& dir) {
    const std::string p = (fs::path(dir) / "checkpoint.pth").string();
    if (!fs::is_regular_file(p))
        fail(
            "icl: {} is missing: the run directory has no trained model (train it with "
            "`goose icl train CONFIG.yaml --out {}`)",
            p, dir);
    return p;
}

// The trained model rebuilt from run_dir/checkpoint.pth, and the step it was saved at.
std::unique_ptr<IclModel> load_trained(const TrainConfig& t, const std::string& dir,
                                       int64_t* step) {
    Rng rng(t.seed, "model");
    auto model = std::make_unique<IclModel>(t.model, rng);
    const std::string path = checkpoint_path(dir);
    const nn::StateDict ckpt = io::load_pth(path);
    nn::StateDict params;
    for (auto& [name, tensor] : ckpt)
        if (name.rfind("model.", 0) == 0) params.emplace(name.substr(6), tensor);
    try {
        model->load_state_dict(params);
    } catch (const Error& e) {
        fail("icl: {} does not match {}/config.yaml: {}", path, dir, e.what());
    }
    auto it = ckpt.find("meta.step");
    *step = it == ckpt.end() ? -1 : static_cast<int64_t>(it->second.item());
    return model;
}

int64_t checkpoint_step(const std::string& path) {
    const nn::StateDict ckpt = io::load_pth(path);
    auto it = ckpt.find("meta.step");
    return it == ckpt.end() ? -1 : static_cast<int64_t>(it->second.item());
}

// Evaluates a trained run directory with the given settings and prompts, writes its files.
EvalResults evaluate_trained(const IclRunConfig& cfg, const std::string& dir,
                             const std::vector<std::string>& settings, int64_t prompts) {
    const TrainConfig& t = cfg.train;
    int64_t step = 0;
    auto model = load_trained(t, dir, &step);
    std::printf("evaluating %s (checkpoint at step %lld of %lld) on %lld prompts per setting\n",
                t.model.family.c_str(), (long long)step, (long long)t.train_steps,
                (long long)prompts);
    std::fflush(stdout);
    std::vector<std::pair<std::string, Predictor>> predictors;
    const IclModel* m = model.get();
    predictors.emplace_back(t.model.family,
                            [m](const Tensor& xs, const Tensor& ys) { return m->predict(xs, ys); });
    const auto names = cfg.baselines.empty() ? default_baselines(t.task) : cfg.baselines;
    for (auto& p : baseline_predictors(names)) predictors.push_back(std::move(p));
    EvalConfig ec{.task = t.task,
                  .n_dims = t.model.n_dims,
                  .n_points = t.points.end,
                  .num_prompts = prompts,
                  .batch = t.batch_size,
                  .seed = t.seed + 1};
    const EvalResults res = evaluate(ec, predictors, settings);
    write_metrics_json(dir + "/metrics.json", t.task.name, t.model.n_dims, t.points.end, res);
    write_curves_csv(dir + "/curves.csv", res);
    print_results_table(res);
    if (plots_available()) {
        std::string out;
        const int rc =
            run_python_script("plot_icl.py", {dir + "/metrics.json", "--out", dir}, &out);
        if (rc == 0)
            std::printf("\nplots: %s/*.png\n", dir.c_str());
        else
            std::printf("\nplots: the plotting script failed:\n%s\n", out.c_str());
    } else {
        std::printf("\nplots: skipped (python3-matplotlib is not installed)\n");
    }
    std::printf("run directory: %s\n", dir.c_str());
    return res;
}

}  // namespace

IclRunConfig default_icl_config() {
    IclRunConfig c;
    TrainConfig& t = c.train;
    t.task.name = "linear_regression";
    const int64_t d = 5, n = 2 * d + 1;
    t.model = ModelConfig{.family = "rwkv7",
                          .n_dims = d,
                          .n_positions = n,
                          .n_embd = 64,
                          .n_layer = 3,
                          .n_head = 4,
                          .head_size = 16};
    t.dims = {.start = d, .end = d, .inc = 0, .interval = 1000};
    t.points = {.start = n, .end = n, .inc = 0, .interval = 1000};
    t.batch_size = 64;
    t.train_steps = 1500;
    t.learning_rate = 1e-3;
    t.save_every_steps = 500;
    t.log_every_steps = 50;
    return c;
}

void check_run_dir(const IclRunConfig& cfg, const std::string& out_dir, bool resume,
                   bool overwrite) {
    const std::string ckpt = (fs::path(out_dir) / "checkpoint.pth").string();
    if (!fs::exists(ckpt)) return;
    if (!resume) {
        if (overwrite) return;
        fail(
            "icl: {} already holds a run (checkpoint at step {} of {}); pass --resume to "
            "continue it or --overwrite to start again",
            out_dir, checkpoint_step(ckpt), cfg.train.train_steps);
    }
    const std::string prev_path = (fs::path(out_dir) / "config.yaml").string();
    if (!fs::exists(prev_path)) return;  // a checkpoint without its config: trust the caller's
    const IclRunConfig prev = load_icl_config(prev_path);
    std::vector<std::string> diffs;
    for (const auto& k : icl_config_differences(prev, cfg)) {
        if (k == "training.train_steps" || k == "training.save_every_steps" ||
            k == "training.log_every_steps" || k.starts_with("eval."))
            continue;
        diffs.push_back(k);
    }
    if (!diffs.empty())
        fail(
            "icl: cannot resume {}: its config.yaml differs in {} (only training.train_steps, "
            "save_every_steps, log_every_steps and eval.* may change on --resume; use "
            "--overwrite or another --out to start a new run)",
            out_dir, fmt::join(diffs, ", "));
}

EvalResults run_icl(const IclRunConfig& cfg, const std::string& out_dir, bool resume) {
    validate_icl_config(cfg, "run_icl");
    check_run_dir(cfg, out_dir, resume, /*overwrite=*/true);
    fs::create_directories(out_dir);
    io::write_file_atomic(out_dir + "/config.yaml", icl_config_yaml(cfg));
    const TrainConfig& t = cfg.train;
    std::printf("goose icl: %s on %s, d=%lld, %lld points, %lld steps -> %s\n",
                t.model.family.c_str(), t.task.name.c_str(), (long long)t.model.n_dims,
                (long long)t.points.end, (long long)t.train_steps, out_dir.c_str());
    std::fflush(stdout);
    const TrainResult tr = train(t, out_dir, resume);
    std::printf("trained: final loss %.4f after %lld steps (%.0f s)\n", tr.final_loss,
                (long long)tr.steps, tr.seconds);
    return evaluate_trained(cfg, out_dir, cfg.settings, cfg.eval_prompts);
}

IclRunConfig load_run_config(const std::string& run_dir) {
    if (!fs::is_directory(run_dir))
        fail("icl: run directory {} does not exist (or is not a directory)", run_dir);
    const std::string path = (fs::path(run_dir) / "config.yaml").string();
    if (!fs::is_regular_file(path))
        fail("icl: {} is missing: {} is not an ICL run directory", path, run_dir);
    return load_icl_config(path);
}

EvalResults evaluate_run(const std::string& run_dir, const EvalRunOptions& o) {
    const IclRunConfig cfg = load_run_config(run_dir);
    std::vector<std::string> settings = cfg.settings;
    if (o.ood == std::vector<std::string>{"all"}) {
        settings.clear();  // evaluate(): every setting of the task
    } else if (!o.ood.empty()) {
        settings = {"standard"};
        for (const auto& s : o.ood)
            if (std::find(settings.begin(), settings.end(), s) == settings.end())
                settings.push_back(s);
    }
    if (o.prompts < 0) fail("icl eval: --prompts must be >= 1, got {}", o.prompts);
    return evaluate_trained(cfg, run_dir, settings, o.prompts > 0 ? o.prompts : cfg.eval_prompts);
}

void print_results_table(const EvalResults& results) {
    for (const auto& [setting, curves] : results) {
        if (curves.empty()) continue;
        std::printf("\n%s: normalised squared error vs in-context examples k\n%4s", setting.c_str(),
                    "k");
        for (const auto& [name, c] : curves) std::printf(" %14s", name.c_str());
        std::printf("\n");
        const size_t n = curves.begin()->second.k.size();
        const size_t every = std::max<size_t>(1, (n + 39) / 40);
        for (size_t i = 0; i < n; ++i) {
            if (i % every != 0 && i + 1 != n) continue;
            std::printf("%4lld", (long long)curves.begin()->second.k[i]);
            for (const auto& [name, c] : curves) std::printf(" %14.4f", c.mean[i]);
            std::printf("\n");
        }
    }
    std::fflush(stdout);
}

bool plots_available() {
    const std::string cmd = shell_quote(python()) + " -c 'import matplotlib' > /dev/null 2>&1";
    return fs::exists(fs::path(GOOSE_SOURCE_DIR) / "python" / "plot_icl.py") &&
           std::system(cmd.c_str()) == 0;
}

int run_python_script(const std::string& script, const std::vector<std::string>& args,
                      std::string* output) {
    const fs::path path = fs::path(GOOSE_SOURCE_DIR) / "python" / script;
    if (!fs::exists(path)) fail("icl: the script {} is missing", path.string());
    std::string cmd = shell_quote(python());
    cmd += ' ';
    cmd += shell_quote(path.string());
    for (const auto& a : args) {
        cmd += ' ';
        cmd += shell_quote(a);
    }
    cmd += " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) fail("icl: cannot run {}", cmd);
    std::string out;
    std::array<char, 4096> buf;
    while (size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
    const int status = pclose(p);
    if (output) *output = out;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void plot_run(const std::string& run_dir) {
    if (!fs::is_directory(run_dir))
        fail("icl plot: run directory {} does not exist (or is not a directory)", run_dir);
    const std::string metrics = (fs::path(run_dir) / "metrics.json").string();
    if (!fs::is_regular_file(metrics))
        fail("icl plot: {} is missing (evaluate the run first: goose icl eval {})", metrics,
             run_dir);
    (void)read_metrics_json(metrics);  // a clear error for a malformed file
    if (!plots_available())
        fail(
            "icl plot: {} cannot import matplotlib (install python3-matplotlib: "
            "scripts/deps.sh), or python/plot_icl.py is missing",
            python());
    std::string out;
    if (run_python_script("plot_icl.py", {metrics, "--out", run_dir}, &out) != 0)
        fail("icl plot: python/plot_icl.py failed on {}:\n{}", metrics, out);
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
}

}  // namespace goose::icl
