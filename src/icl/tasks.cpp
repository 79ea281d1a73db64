// The task families of §2.2, the factory, seeded mode, the finite task pool and the normaliser.
#include "goose/icl/tasks.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace goose::icl {
namespace {

// One function per prompt: F::draw(cfg, d, rng) draws it; f.eval(x, d) maps one x (d) to y.
struct Linear {
    std::vector<double> w;  // (d)
    double scale = 1;
    static Linear draw(const TaskConfig& cfg, int64_t d, Rng& rng) {
        Linear f{std::vector<double>(static_cast<size_t>(d)), cfg.scale};
        rng.fill_normal(f.w);
        return f;
    }
    double dot(const double* x) const {
        double acc = 0;
        for (size_t j = 0; j < w.size(); ++j) acc += w[j] * x[j];
        return acc;
    }
    double eval(const double* x) { return scale * dot(x); }
};

struct SparseLinear : Linear {
    static SparseLinear draw(const TaskConfig& cfg, int64_t d, Rng& rng) {
        SparseLinear f;
        static_cast<Linear&>(f) = Linear::draw(cfg, d, rng);
        const int64_t valid = cfg.valid_coords < 0 ? d : cfg.valid_coords;
        // Support: the first k of a partial Fisher-Yates shuffle of [0, valid).
        std::vector<int64_t> perm(static_cast<size_t>(valid));
        std::iota(perm.begin(), perm.end(), 0);
        for (int64_t i = 0; i < cfg.sparsity; ++i)
            std::swap(perm[i], perm[rng.randint(i, valid)]);
        std::vector<double> keep(f.w.size(), 0.0);
        for (int64_t i = 0; i < cfg.sparsity; ++i) keep[perm[i]] = f.w[perm[i]];
        f.w = std::move(keep);
        return f;
    }
};

struct Classification : Linear {
    static Classification draw(const TaskConfig& cfg, int64_t d, Rng& rng) {
        Classification f;
        static_cast<Linear&>(f) = Linear::draw(cfg, d, rng);
        return f;
    }
    double eval(const double* x) {
        const double v = dot(x);
        return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0);  // torch.sign: 0 stays 0
    }
};

struct NoisyLinear : Linear {
    double noise_std = 0;
    Rng noise;  // this function's own noise stream, drawn on from evaluate to evaluate
    static NoisyLinear draw(const TaskConfig& cfg, int64_t d, Rng& rng) {
        NoisyLinear f;
        static_cast<Linear&>(f) = Linear::draw(cfg, d, rng);
        f.noise_std = cfg.noise_std;
        f.noise = Rng(rng.next_u64(), "noise");
        return f;
    }
    double eval(const double* x) { return dot(x) + noise_std * noise.normal(); }
    // A copy placed in a new task gets a stream of its own (repeats in a batch differ).
    void rekey(const std::string& tag) { noise = noise.fork(tag); }
};

struct Quadratic : Linear {
    static Quadratic draw(const TaskConfig& cfg, int64_t d, Rng& rng) {
        Quadratic f;
        static_cast<Linear&>(f) = Linear::draw(cfg, d, rng);
        return f;
    }
    double eval(const double* x) {
        double acc = 0;
        for (size_t j = 0; j < w.size(); ++j) acc += w[j] * x[j] * x[j];
        return scale * acc / std::sqrt(3.0);
    }
};

struct Relu2nn {
    std::vector<double> w1;  // (d, h)
    std::vector<double> w2;  // (h)
    double scale = 1;
    std::vector<double> pre;  // (h) scratch
    static Relu2nn draw(const TaskConfig& cfg, int64_t d, Rng& rng) {
        const auto h = static_cast<size_t>(cfg.hidden);
        Relu2nn f{std::vector<double>(static_cast<size_t>(d) * h), std::vector<double>(h),
                  cfg.scale, std::vector<double>(h)};
        rng.fill_normal(f.w1);
        rng.fill_normal(f.w2);
        return f;
    }
    double eval(const double* x) {
        const size_t h = w2.size(), d = w1.size() / h;
        std::fill(pre.begin(), pre.end(), 0.0);
        for (size_t i = 0; i < d; ++i) {
            if (x[i] == 0) continue;  // the zeroed tail of the curriculum
            const double* row = w1.data() + i * h;
            for (size_t j = 0; j < h; ++j) pre[j] += x[i] * row[j];
        }
        double acc = 0;
        for (size_t j = 0; j < h; ++j) acc += w2[j] * std::max(pre[j], 0.0);
        return scale * std::sqrt(2.0 / static_cast<double>(h)) * acc;
    }
};

struct Tree {
    int64_t depth = 0;
    std::vector<int64_t> coords;   // (2^(D+1) - 1) split coordinates in [0, d)
    std::vector<double> targets;   // (2^(D+1) - 1) values; only the leaves' are read
    static Tree draw(const TaskConfig& cfg, int64_t d, Rng& rng) {
        const auto nodes = static_cast<size_t>((int64_t{1} << (cfg.depth + 1)) - 1);
        Tree f{cfg.depth, std::vector<int64_t>(nodes), std::vector<double>(nodes)};
        for (auto& c : f.coords) c = rng.randint(0, d);  // the full d, as the original
        rng.fill_normal(f.targets);
        return f;
    }
    double eval(const double* x) {
        size_t c = 0;
        for (int64_t k = 0; k < depth; ++k) c = 2 * c + 1 + (x[coords[c]] > 0 ? 1 : 0);
        return targets[c];
    }
};

template <class F>
class FnTask final : public Task {
public:
    FnTask(const TaskConfig& cfg, int64_t d, std::vector<F> fns)
        : cfg_(cfg), d_(d), fns_(std::move(fns)) {}

    Tensor evaluate(const Tensor& xs) const override {
        if (xs.ndim() != 3 || !dtype_is_float(xs.dtype()) || xs.size(2) != d_ ||
            (fns_.size() != 1 && xs.size(0) != num_functions()))
            fail("{}: evaluate expects float xs (B, n, d = {}) with B = {} (the task's "
                 "functions), got {}",
                 cfg_.name, d_, num_functions(), xs.desc());
        const Tensor x = xs.to(DType::f64);  // packed
        const int64_t batch = xs.size(0), n = xs.size(1);
        std::vector<double> ys(static_cast<size_t>(batch * n));
        for (int64_t b = 0; b < batch; ++b) {
            F& f = fns_[fns_.size() == 1 ? 0 : static_cast<size_t>(b)];
            for (int64_t i = 0; i < n; ++i)
                ys[b * n + i] = f.eval(x.data<double>() + (b * n + i) * d_);
        }
        if (cfg_.name == "noisy_linear_regression" && cfg_.renormalize_ys) renormalize(ys);
        return Tensor::from(Shape{batch, n}, ys, DType::f32);
    }
    bool is_classification() const override {
        return cfg_.name == "linear_classification";
    }
    const std::string& name() const override { return cfg_.name; }
    int64_t n_dims() const override { return d_; }
    int64_t num_functions() const override { return static_cast<int64_t>(fns_.size()); }

    std::unique_ptr<Task> select(std::span<const int64_t> idx) const override {
        std::vector<F> out;
        out.reserve(idx.size());
        const uint64_t call = selects_++;
        for (size_t k = 0; k < idx.size(); ++k) {
            if (idx[k] < 0 || idx[k] >= num_functions())
                fail("{}: select index {} out of range [0, {})", cfg_.name, idx[k],
                     num_functions());
            out.push_back(fns_[static_cast<size_t>(idx[k])]);
            if constexpr (requires(F f) { f.rekey(std::string()); })
                out.back().rekey(fmt::format("select/{}/{}", call, k));
        }
        if (out.empty()) fail("{}: select needs at least one index", cfg_.name);
        return std::make_unique<FnTask<F>>(cfg_, d_, std::move(out));
    }

private:
    // y <- y·sqrt(d)/std(y), std unbiased over the whole (B, n) tensor (as torch.std).
    void renormalize(std::vector<double>& ys) const {
        if (ys.size() < 2) return;
        const double mean = std::accumulate(ys.begin(), ys.end(), 0.0) / ys.size();
        double ss = 0;
        for (double y : ys) ss += (y - mean) * (y - mean);
        const double sd = std::sqrt(ss / static_cast<double>(ys.size() - 1));
        if (!(sd > 0)) return;
        for (double& y : ys) y *= std::sqrt(static_cast<double>(d_)) / sd;
    }

    TaskConfig cfg_;
    int64_t d_;
    mutable std::vector<F> fns_;  // mutable: noise streams and scratch advance in evaluate
    mutable uint64_t selects_ = 0;
};

void validate(const char* op, const TaskConfig& cfg, int64_t d) {
    const auto& names = task_names();
    if (std::find(names.begin(), names.end(), cfg.name) == names.end())
        fail("{}: unknown task '{}'; valid names: {}", op, cfg.name, fmt::join(names, ", "));
    if (d < 1) fail("{}: n_dims must be >= 1, got {}", op, d);
    if (cfg.name == "sparse_linear_regression") {
        if (cfg.sparsity < 1 || cfg.sparsity > d)
            fail("{}: sparsity must be in [1, n_dims = {}], got {}", op, d, cfg.sparsity);
        if (cfg.valid_coords != -1 && (cfg.valid_coords < cfg.sparsity || cfg.valid_coords > d))
            fail("{}: valid_coords must be -1 or in [sparsity = {}, n_dims = {}], got {}", op,
                 cfg.sparsity, d, cfg.valid_coords);
    }
    if (cfg.name == "relu_2nn_regression" && cfg.hidden < 1)
        fail("{}: hidden must be >= 1, got {}", op, cfg.hidden);
    if (cfg.name == "decision_tree" && (cfg.depth < 1 || cfg.depth > 24))
        fail("{}: depth must be in [1, 24], got {}", op, cfg.depth);
    if (cfg.name == "noisy_linear_regression" && !(cfg.noise_std >= 0))
        fail("{}: noise_std must be >= 0, got {}", op, cfg.noise_std);
}

// Draws one function per rng of `rngs` (each used once, in order) and builds the task.
template <class F>
std::unique_ptr<Task> build(const TaskConfig& cfg, int64_t d, std::span<Rng*> rngs) {
    std::vector<F> fns;
    fns.reserve(rngs.size());
    for (Rng* r : rngs) fns.push_back(F::draw(cfg, d, *r));
    return std::make_unique<FnTask<F>>(cfg, d, std::move(fns));
}

std::unique_ptr<Task> dispatch(const TaskConfig& cfg, int64_t d, std::span<Rng*> rngs) {
    const std::string& n = cfg.name;
    if (n == "linear_regression") return build<Linear>(cfg, d, rngs);
    if (n == "sparse_linear_regression") return build<SparseLinear>(cfg, d, rngs);
    if (n == "noisy_linear_regression") return build<NoisyLinear>(cfg, d, rngs);
    if (n == "linear_classification") return build<Classification>(cfg, d, rngs);
    if (n == "quadratic_regression") return build<Quadratic>(cfg, d, rngs);
    if (n == "relu_2nn_regression") return build<Relu2nn>(cfg, d, rngs);
    if (n == "decision_tree") return build<Tree>(cfg, d, rngs);
    GOOSE_ASSERT(false, "task name {} passed validation but has no builder", n);
    return nullptr;
}

}  // namespace

const std::vector<std::string>& task_names() {
    static const std::vector<std::string> names = {
        "linear_regression",     "sparse_linear_regression", "noisy_linear_regression",
        "linear_classification", "quadratic_regression",     "relu_2nn_regression",
        "decision_tree"};
    return names;
}

std::unique_ptr<Task> make_task(const TaskConfig& cfg, int64_t n_dims, int64_t batch, Rng& rng) {
    validate("make_task", cfg, n_dims);
    if (batch < 1) fail("make_task: batch must be >= 1, got {}", batch);
    std::vector<Rng*> rngs(static_cast<size_t>(batch), &rng);
    return dispatch(cfg, n_dims, rngs);
}

std::unique_ptr<Task> make_task_seeded(const TaskConfig& cfg, int64_t n_dims,
                                       const std::vector<uint64_t>& seeds) {
    validate("make_task_seeded", cfg, n_dims);
    if (seeds.empty()) fail("make_task_seeded: seeds must not be empty");
    std::vector<Rng> own;
    own.reserve(seeds.size());
    for (uint64_t s : seeds) own.emplace_back(s, "task");
    std::vector<Rng*> rngs;
    for (Rng& r : own) rngs.push_back(&r);
    return dispatch(cfg, n_dims, rngs);
}

std::unique_ptr<Task> make_decision_tree(int64_t n_dims, int64_t depth,
                                         const std::vector<int64_t>& coords,
                                         const std::vector<double>& targets) {
    TaskConfig cfg;
    cfg.name = "decision_tree";
    cfg.depth = depth;
    validate("make_decision_tree", cfg, n_dims);
    const auto nodes = static_cast<size_t>((int64_t{1} << (depth + 1)) - 1);
    if (coords.size() != nodes || targets.size() != nodes)
        fail("make_decision_tree: coords and targets need 2^(depth+1) - 1 = {} entries, got {} "
             "and {}",
             nodes, coords.size(), targets.size());
    for (int64_t c : coords)
        if (c < 0 || c >= n_dims)
            fail("make_decision_tree: coords must lie in [0, n_dims = {}), got {}", n_dims, c);
    std::vector<Tree> fns{Tree{depth, coords, targets}};
    return std::make_unique<FnTask<Tree>>(cfg, n_dims, std::move(fns));
}

TaskPool::TaskPool(const TaskConfig& cfg, int64_t n_dims, int64_t num_tasks, Rng& rng) {
    if (num_tasks < 1) fail("TaskPool: num_tasks must be >= 1, got {}", num_tasks);
    pool_ = make_task(cfg, n_dims, num_tasks, rng);
}

std::unique_ptr<Task> TaskPool::sample(int64_t batch, Rng& rng) const {
    if (batch < 1) fail("TaskPool::sample: batch must be >= 1, got {}", batch);
    const int64_t n = size();
    std::vector<int64_t> idx;
    idx.reserve(static_cast<size_t>(batch));
    std::vector<int64_t> perm(static_cast<size_t>(n));
    while (static_cast<int64_t>(idx.size()) < batch) {
        // Partial Fisher-Yates: only the entries we take are shuffled.
        std::iota(perm.begin(), perm.end(), 0);
        const int64_t take = std::min(n, batch - static_cast<int64_t>(idx.size()));
        for (int64_t i = 0; i < take; ++i) {
            std::swap(perm[i], perm[rng.randint(i, n)]);
            idx.push_back(perm[i]);
        }
    }
    return pool_->select(idx);
}

double task_normaliser(const TaskConfig& cfg, int64_t n_dims) {
    validate("task_normaliser", cfg, n_dims);
    if (cfg.name == "sparse_linear_regression") return static_cast<double>(cfg.sparsity);
    if (cfg.name == "decision_tree") return 1.0;
    return static_cast<double>(n_dims);
}

}  // namespace goose::icl
