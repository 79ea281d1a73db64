// The ICL training loop: data per step from seeded streams, Adam, CSV log, checkpoints, resume.
#include "goose/icl/train.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>
#include <sstream>
#include <vector>

#include "goose/autograd.h"
#include "goose/icl/sampler.h"
#include "goose/io/atomic_file.h"
#include "goose/io/pth.h"
#include "goose/optim/adamw.h"

namespace goose::icl {
namespace fs = std::filesystem;

void TrainConfig::validate() const {
    model.validate();
    Curriculum check(dims, points);  // validates both schedules
    auto positive = [](const char* field, int64_t v) {
        if (v < 1) fail("train: TrainConfig.{} must be >= 1, got {}", field, v);
    };
    positive("batch_size", batch_size);
    positive("save_every_steps", save_every_steps);
    positive("log_every_steps", log_every_steps);
    if (train_steps < 0) fail("train: TrainConfig.train_steps must be >= 0, got {}", train_steps);
    if (!(learning_rate > 0))
        fail("train: TrainConfig.learning_rate must be > 0, got {}", learning_rate);
    if (!(weight_decay >= 0))
        fail("train: TrainConfig.weight_decay must be >= 0, got {}", weight_decay);
    if (optimizer != "adam" && optimizer != "adamw")
        fail("train: TrainConfig.optimizer \"{}\" is unknown (valid: adam, adamw)", optimizer);
    if (dims.end > model.n_dims)
        fail("train: TrainConfig.dims.end ({}) exceeds model.n_dims ({})", dims.end, model.n_dims);
    if (points.end > model.n_positions)
        fail("train: TrainConfig.points.end ({}) exceeds model.n_positions ({})", points.end,
             model.n_positions);
    if (num_training_examples < 0)
        fail("train: TrainConfig.num_training_examples must be >= 0, got {}",
             num_training_examples);
    if (num_training_examples > 0 && num_training_examples < batch_size)
        fail("train: TrainConfig.num_training_examples ({}) must be >= batch_size ({}): each step "
             "draws batch_size distinct examples", num_training_examples, batch_size);
    if (num_tasks < 0) fail("train: TrainConfig.num_tasks must be >= 0, got {}", num_tasks);
    if (num_tasks > 0 && num_training_examples > 0)
        fail("train: TrainConfig.num_tasks and num_training_examples cannot both be set");
    Rng probe(0, "validate");  // the task's own checks (name, sparsity, ...) before any work
    make_task(task, model.n_dims, 1, probe);
}

double least_squares_baseline(int64_t n_dims, int64_t n_points) {
    double s = 0;
    for (int64_t i = 0; i < n_points; ++i) s += static_cast<double>(std::max<int64_t>(n_dims - i, 0));
    return s / static_cast<double>(n_points);
}

namespace {

bool is_linear(const std::string& name) {
    return name == "linear_regression" || name == "sparse_linear_regression" ||
           name == "noisy_linear_regression";
}

struct Batch {
    Tensor xs, ys;  // (B, n, d), (B, n)
};

Batch sample_batch(const TrainConfig& cfg, const TaskPool* pool, int64_t step, int64_t n_dims,
                   int64_t n_points) {
    const int64_t b = cfg.batch_size, d = cfg.model.n_dims;
    Rng data = Rng(cfg.seed, "data").fork(std::to_string(step));
    Batch out;
    std::unique_ptr<Task> task;
    // Sparse supports lie inside the curriculum's active dims (§3.3: valid_coords = its d).
    TaskConfig task_cfg = cfg.task;
    if (task_cfg.name == "sparse_linear_regression" && task_cfg.valid_coords < 0)
        task_cfg.valid_coords = std::max(n_dims, task_cfg.sparsity);
    if (cfg.num_training_examples > 0) {
        Rng r = data.fork("seeds");
        std::set<int64_t> seen;
        std::vector<uint64_t> xs_seeds, task_seeds;
        while (static_cast<int64_t>(xs_seeds.size()) < b) {
            const int64_t s = r.randint(0, cfg.num_training_examples);
            if (!seen.insert(s).second) continue;
            xs_seeds.push_back(static_cast<uint64_t>(s));
            task_seeds.push_back(static_cast<uint64_t>(s) + 1);  // §3.2: the task seed is s + 1
        }
        out.xs = sample_xs_seeded(xs_seeds, n_points, d, n_dims);
        task = make_task_seeded(task_cfg, d, task_seeds);
    } else {
        Rng rx = data.fork("xs");
        out.xs = sample_xs(b, n_points, d, rx, n_dims);
        Rng rt = data.fork("task");
        task = pool ? pool->sample(b, rt) : make_task(task_cfg, d, b, rt);
    }
    out.ys = task->evaluate(out.xs);
    return out;
}

Var loss_of(const TrainConfig& cfg, const Var& pred, const Tensor& ys) {
    if (cfg.task.name == "linear_classification") {
        std::vector<double> v = ys.to_vector();
        for (double& y : v) y = (y + 1) / 2;
        return ag::bce_with_logits(pred, Var(Tensor::from(ys.shape(), v, pred.dtype())));
    }
    return ag::mse(pred, Var(ys.to(pred.dtype())));
}

// Keeps the CSV's header and the rows of steps < keep_below (a resumed run rewrites the rest).
void prepare_log(const std::string& path, int64_t keep_below) {
    static const char* header = "step,loss,excess_loss,n_dims,n_points,lr,seconds\n";
    std::string kept = header;
    if (keep_below > 0 && fs::exists(path)) {
        std::istringstream in(io::read_file(path));
        std::string line;
        bool first = true;
        while (std::getline(in, line)) {
            if (first) { first = false; continue; }
            if (line.empty()) continue;
            if (std::stoll(line.substr(0, line.find(','))) < keep_below) kept += line + "\n";
        }
    }
    io::write_file_atomic(path, kept);
}

void append_line(const std::string& path, const std::string& line) {
    std::FILE* f = std::fopen(path.c_str(), "ab");
    if (!f) fail("train: cannot open {} for appending", path);
    std::fputs(line.c_str(), f);
    std::fclose(f);
}

std::string format_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    const auto t = static_cast<int64_t>(s + 0.5);
    if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t / 60) % 60);
    if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
    return fmt::format("{}s", t);
}

}  // namespace

TrainResult train(const TrainConfig& cfg, const std::string& run_dir, bool resume) {
    cfg.validate();
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    fs::create_directories(run_dir);
    const std::string ckpt_path = (fs::path(run_dir) / "checkpoint.pth").string();
    const std::string log_path = (fs::path(run_dir) / "train_log.csv").string();

    Rng model_rng(cfg.seed, "model");
    IclModel model(cfg.model, model_rng);
    optim::AdamConfig acfg;
    acfg.lr = cfg.learning_rate;
    optim::ParamGroup group{.params = model.parameters(), .weight_decay = cfg.weight_decay};
    optim::Adam opt = optim::make_adamw({group}, acfg);
    Curriculum curriculum(cfg.dims, cfg.points);
    std::unique_ptr<TaskPool> pool;
    if (cfg.num_tasks > 0) {
        Rng pr(cfg.seed, "pool");
        pool = std::make_unique<TaskPool>(cfg.task, cfg.model.n_dims, cfg.num_tasks, pr);
    }

    int64_t start = 0;
    double prior_seconds = 0;
    if (resume && fs::exists(ckpt_path)) {
        const io::StateDict sd = io::load_pth(ckpt_path);
        nn::StateDict msd;
        std::vector<std::pair<std::string, Tensor>> osd;
        for (const auto& [k, v] : sd) {
            if (k.starts_with("model.")) msd.emplace(k.substr(6), v);
            else if (k.starts_with("optim.")) osd.emplace_back(k.substr(6), v);
        }
        auto meta = [&](const char* key) {
            auto it = sd.find(key);
            if (it == sd.end()) fail("train: checkpoint {} lacks \"{}\"", ckpt_path, key);
            return it->second.item();
        };
        model.load_state_dict(msd);
        opt.load_state(osd);
        start = static_cast<int64_t>(meta("meta.step"));
        prior_seconds = meta("meta.seconds");
        curriculum.jump_to(start);
    }
    prepare_log(log_path, start);

    auto save = [&](int64_t steps_done) {
        io::StateDict sd;
        for (const auto& [k, v] : model.named_parameters()) sd.emplace("model." + k, v.value());
        for (const auto& [k, v] : opt.state()) sd.emplace("optim." + k, v);
        sd.emplace("meta.step", Tensor::scalar(static_cast<double>(steps_done), DType::i64));
        sd.emplace("meta.seconds", Tensor::scalar(prior_seconds + elapsed(), DType::f64));
        io::save_pth(ckpt_path, sd);
    };

    TrainResult res;
    res.final_loss = std::numeric_limits<double>::quiet_NaN();
    const bool linear = is_linear(cfg.task.name);
    double last_print = -1;
    for (int64_t step = start; step < cfg.train_steps; ++step) {
        const int64_t nd = curriculum.n_dims(), np = curriculum.n_points();
        const Batch batch = sample_batch(cfg, pool.get(), step, nd, np);
        model.zero_grad();
        Var loss = loss_of(cfg, model.forward(batch.xs, batch.ys), batch.ys);
        const double lv = loss.item();
        ag::backward(loss);
        opt.step();
        curriculum.update();
        res.final_loss = lv;

        const bool last = step + 1 == cfg.train_steps;
        const double excess = linear ? lv / least_squares_baseline(nd, np)
                                     : std::numeric_limits<double>::quiet_NaN();
        if (step % cfg.log_every_steps == 0 || last) {
            append_line(log_path, fmt::format("{},{:.9g},{},{},{},{:.9g},{:.3f}\n", step, lv,
                                              linear ? fmt::format("{:.9g}", excess) : "", nd,
                                              np, cfg.learning_rate,
                                              prior_seconds + elapsed()));
        }
        if ((step + 1) % cfg.save_every_steps == 0 || last) save(step + 1);
        if (cfg.show_progress && (elapsed() - last_print >= 0.25 || last)) {
            last_print = elapsed();
            const double rate = static_cast<double>(step + 1 - start) / std::max(elapsed(), 1e-9);
            std::string line = fmt::format(
                "\rstep {}/{}  loss {:.4f}{}  dims {}  points {}  {:.1f} steps/s  ETA {}   ",
                step + 1, cfg.train_steps, lv,
                linear ? fmt::format("  excess {:.3f}", excess) : "", nd, np, rate,
                format_duration(static_cast<double>(cfg.train_steps - step - 1) / rate));
            std::fputs(line.c_str(), stderr);
            if (last) std::fputs("\n", stderr);
            std::fflush(stderr);
        }
    }
    res.steps = std::max(start, cfg.train_steps);
    res.seconds = elapsed();
    return res;
}

}  // namespace goose::icl
