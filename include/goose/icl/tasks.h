// The function classes of the ICL lab (spec icl_function_classes §2): a Task holds one function
// per prompt and maps prompts xs (B, n, d) to ys (B, n). Fresh, finite-pool and seeded modes.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "goose/core/rng.h"
#include "goose/core/tensor.h"

namespace goose::icl {

// The task's name and options (names as in the original's configs).
struct TaskConfig {
    std::string name;            // linear_regression, sparse_linear_regression, ...
    int64_t sparsity = 3;        // sparse_linear_regression: non-zero coefficients k
    int64_t valid_coords = -1;   // sparse: support drawn among the first valid_coords (-1 = d)
    double noise_std = 0;        // noisy_linear_regression
    bool renormalize_ys = false; // noisy: y <- y·sqrt(d)/std(y), std over the whole (B, n) batch
    int64_t hidden = 100;        // relu_2nn_regression: hidden width h
    int64_t depth = 4;           // decision_tree: depth D
    double scale = 1;            // linear, sparse, quadratic, relu: y is multiplied by scale
};

// The valid task names, in the order used by error messages.
const std::vector<std::string>& task_names();

class Task {
public:
    virtual ~Task() = default;
    // ys (B, n) f32 for prompts xs (B, n, d), f32 or f64, d = n_dims(). B must equal
    // num_functions(), or the task holds one function, which is then applied to every prompt.
    virtual Tensor evaluate(const Tensor& xs) const = 0;
    virtual bool is_classification() const { return false; }
    virtual const std::string& name() const = 0;
    virtual int64_t n_dims() const = 0;
    virtual int64_t num_functions() const = 0;
    // A task holding functions idx[0], idx[1], ... of this one (repeats allowed).
    virtual std::unique_ptr<Task> select(std::span<const int64_t> idx) const = 0;
};

// B fresh functions drawn from rng, one after another. Unknown names and inconsistent sizes
// (n_dims, batch, sparsity, valid_coords, hidden, depth, noise_std) are goose::Error.
std::unique_ptr<Task> make_task(const TaskConfig& cfg, int64_t n_dims, int64_t batch, Rng& rng);

// Seeded mode: prompt b's function is drawn from Rng(seeds[b], "task") alone. (noisy: its noise
// stream too; only renormalize_ys, a whole-batch statistic, couples the prompts.)
std::unique_ptr<Task> make_task_seeded(const TaskConfig& cfg, int64_t n_dims,
                                       const std::vector<uint64_t>& seeds);

// One fixed decision tree (a task of one function, applied to every prompt): node c splits on
// coordinate coords[c]; traversal from c = 0 repeats depth times c <- 2c + 1 + [x[coords[c]] > 0],
// then y = targets[c]. Both arrays have 2^(depth+1) - 1 entries. For tests and hand-built trees.
std::unique_ptr<Task> make_decision_tree(int64_t n_dims, int64_t depth,
                                         const std::vector<int64_t>& coords,
                                         const std::vector<double>& targets);

// Finite task pool: num_tasks functions drawn once; each batch takes the first B entries of a
// random permutation of the pool. When num_tasks < B (the original then shares the pool across
// the batch through broadcasting, an accident of its tensor shapes) we concatenate independent
// random permutations until B indices are taken: every pool function is used either
// floor(B/num_tasks) or ceil(B/num_tasks) times, and only pool functions ever appear.
class TaskPool {
public:
    TaskPool(const TaskConfig& cfg, int64_t n_dims, int64_t num_tasks, Rng& rng);
    std::unique_ptr<Task> sample(int64_t batch, Rng& rng) const;
    const Task& functions() const { return *pool_; }
    int64_t size() const { return pool_->num_functions(); }

private:
    std::unique_ptr<Task> pool_;
};

// What the plots divide the squared error by (§5.1): d for linear, noisy, relu, quadratic and
// classification, the sparsity k for sparse, 1 for the decision tree.
double task_normaliser(const TaskConfig& cfg, int64_t n_dims);

}  // namespace goose::icl
