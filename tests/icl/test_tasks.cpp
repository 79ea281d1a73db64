// The task families: shapes, E[y²], sparsity supports, trees, seeded mode, pools, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "goose/icl/sampler.h"
#include "goose/icl/tasks.h"
#include "icl_test_util.h"

namespace goose::icl {
namespace {

using testing::expect_error;
using testing::mean_square;

TaskConfig named(const std::string& name) {
    TaskConfig c;
    c.name = name;
    return c;
}

// E[y²] over 4096 prompts of 16 points, d = 10.
double second_moment(const TaskConfig& cfg, int64_t d = 10, int64_t batch = 4096) {
    Rng rng(100, "test");
    Rng task_rng = rng.fork("task"), x_rng = rng.fork("xs");
    const auto task = make_task(cfg, d, batch, task_rng);
    const Tensor ys = task->evaluate(sample_xs(batch, 16, d, x_rng));
    EXPECT_EQ(ys.shape(), (Shape{batch, 16}));
    EXPECT_EQ(ys.dtype(), DType::f32);
    return mean_square(ys);
}

// The identity rows as a (B, d, d) prompt: evaluating a linear task gives its w per prompt.
Tensor basis_prompts(int64_t batch, int64_t d) {
    Tensor x = Tensor::zeros(Shape{batch, d, d});
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t i = 0; i < d; ++i) x.set({b, i, i}, 1.0);
    return x;
}

TEST(IclTasks, SecondMoments) {
    EXPECT_NEAR(second_moment(named("linear_regression")), 10.0, 0.5);
    EXPECT_NEAR(second_moment(named("quadratic_regression")), 10.0, 0.5);
    EXPECT_NEAR(second_moment(named("relu_2nn_regression")), 10.0, 0.5);
    EXPECT_NEAR(second_moment(named("sparse_linear_regression")), 3.0, 0.15);
    EXPECT_NEAR(second_moment(named("decision_tree")), 1.0, 0.1);
    TaskConfig scaled = named("linear_regression");
    scaled.scale = 2;
    EXPECT_NEAR(second_moment(scaled), 40.0, 2.0);
    // classification: ±1 labels
    EXPECT_NEAR(second_moment(named("linear_classification")), 1.0, 1e-12);
    TaskConfig noisy = named("noisy_linear_regression");
    noisy.noise_std = 1;
    EXPECT_NEAR(second_moment(noisy), 11.0, 0.55);
    noisy.renormalize_ys = true;
    EXPECT_NEAR(second_moment(noisy), 10.0, 0.5);
}

TEST(IclTasks, ClassificationIsTheSignOfLinear) {
    Rng r1(7, "task"), r2(7, "task"), xr(8, "xs");
    const auto lin = make_task(named("linear_regression"), 5, 16, r1);
    const auto cls = make_task(named("linear_classification"), 5, 16, r2);
    EXPECT_TRUE(cls->is_classification());
    EXPECT_FALSE(lin->is_classification());
    const Tensor x = sample_xs(16, 9, 5, xr);
    const auto a = lin->evaluate(x).to_vector(), b = cls->evaluate(x).to_vector();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(b[i], a[i] > 0 ? 1.0 : -1.0);
}

TEST(IclTasks, SparseSupportInsideValidCoords) {
    TaskConfig cfg = named("sparse_linear_regression");
    cfg.sparsity = 3;
    cfg.valid_coords = 6;
    const int64_t d = 10, batch = 200;
    Rng rng(9, "task");
    const auto task = make_task(cfg, d, batch, rng);
    const Tensor w = task->evaluate(basis_prompts(batch, d));  // (B, d): w per prompt
    std::set<int64_t> used;
    for (int64_t b = 0; b < batch; ++b) {
        int nz = 0;
        for (int64_t j = 0; j < d; ++j)
            if (w.get({b, j}) != 0) {
                ++nz;
                EXPECT_LT(j, 6);
                used.insert(j);
            }
        EXPECT_EQ(nz, 3);
    }
    EXPECT_EQ(used.size(), 6u);  // every valid coordinate gets picked sometime
}

TEST(IclTasks, DecisionTreeDependsOnlyOnSigns) {
    TaskConfig cfg = named("decision_tree");
    Rng rng(10, "task"), xr(11, "xs"), mr(12, "mag");
    const auto task = make_task(cfg, 8, 32, rng);
    const Tensor x = sample_xs(32, 20, 8, xr);
    Tensor x2 = x.clone();
    float* p = x2.data<float>();
    for (int64_t i = 0; i < x2.numel(); ++i) p[i] *= static_cast<float>(0.01 + 5 * mr.uniform());
    EXPECT_EQ(task->evaluate(x).to_vector(), task->evaluate(x2).to_vector());
}

TEST(IclTasks, DecisionTreeHandTraversal) {
    // depth 2: nodes 0; 1, 2; leaves 3, 4, 5, 6
    const std::vector<int64_t> coords = {0, 1, 2, 0, 0, 0, 0};
    const std::vector<double> targets = {0, 0, 0, 10, 20, 30, 40};
    const auto tree = make_decision_tree(3, 2, coords, targets);
    // x0 <= 0 -> node 1 (split on x1): x1 <= 0 -> 3, > 0 -> 4;
    // x0 > 0 -> node 2 (split on x2): x2 <= 0 -> 5, > 0 -> 6.
    const Tensor x = Tensor::from(Shape{2, 3, 3}, {-1, -1, 5,   -1, 2, -5,  3, 7, -1,  //
                                                   0.5, 0, 1,  0, 0, 0,    -2, 0.1, 0});
    const Tensor y = tree->evaluate(x);  // one tree broadcast over the 2 prompts
    EXPECT_EQ(y.to_vector(), (std::vector<double>{10, 20, 30, 40, 10, 20}));
}

TEST(IclTasks, SeededIsReproducibleAndPromptIndependent) {
    for (const auto& name : task_names()) {
        TaskConfig cfg = named(name);
        cfg.noise_std = 0.5;
        const Tensor x1 = sample_xs_seeded({5, 6, 7}, 8, 6);
        const Tensor x2 = sample_xs_seeded({1, 6}, 8, 6);
        const auto a = make_task_seeded(cfg, 6, {5, 6, 7})->evaluate(x1);
        const auto b = make_task_seeded(cfg, 6, {1, 6})->evaluate(x2);
        const auto c = make_task_seeded(cfg, 6, {5, 6, 7})->evaluate(x1);
        EXPECT_EQ(a.to_vector(), c.to_vector()) << name;
        EXPECT_EQ(a.select(0, 1).to_vector(), b.select(0, 1).to_vector()) << name;
        EXPECT_NE(a.select(0, 0).to_vector(), b.select(0, 0).to_vector()) << name;
    }
}

TEST(IclTasks, FreshDrawsAreReproducible) {
    Rng r1(13, "task"), r2(13, "task"), xr(14, "xs");
    const Tensor x = sample_xs(4, 5, 6, xr);
    const auto a = make_task(named("relu_2nn_regression"), 6, 4, r1)->evaluate(x);
    const auto b = make_task(named("relu_2nn_regression"), 6, 4, r2)->evaluate(x);
    EXPECT_EQ(a.to_vector(), b.to_vector());
}

TEST(IclTasks, PoolReturnsOnlyPoolFunctions) {
    const int64_t d = 5;
    Rng rng(15, "pool");
    for (int64_t num_tasks : {3, 16}) {
        TaskPool pool(named("linear_regression"), d, num_tasks, rng);
        ASSERT_EQ(pool.size(), num_tasks);
        const Tensor pw = pool.functions().evaluate(basis_prompts(num_tasks, d));  // (P, d)
        std::vector<std::vector<double>> pool_ws;
        for (int64_t k = 0; k < num_tasks; ++k) pool_ws.push_back(pw.select(0, k).to_vector());
        Rng pick(16, "pick");
        for (int rep = 0; rep < 5; ++rep) {
            const int64_t batch = 8;
            const auto task = pool.sample(batch, pick);
            ASSERT_EQ(task->num_functions(), batch);
            const Tensor w = task->evaluate(basis_prompts(batch, d));
            std::vector<int> counts(static_cast<size_t>(num_tasks), 0);
            for (int64_t b = 0; b < batch; ++b) {
                const auto wb = w.select(0, b).to_vector();
                int found = -1;
                for (int64_t k = 0; k < num_tasks; ++k)
                    if (pool_ws[k] == wb) found = static_cast<int>(k);
                ASSERT_GE(found, 0) << "batch function " << b << " is not in the pool";
                ++counts[found];
            }
            // B <= pool: distinct functions; B > pool: balanced use
            for (int c : counts) {
                if (num_tasks >= batch) {
                    EXPECT_LE(c, 1);
                } else {
                    EXPECT_GE(c, batch / num_tasks);
                    EXPECT_LE(c, (batch + num_tasks - 1) / num_tasks);
                }
            }
        }
    }
}

TEST(IclTasks, Normaliser) {
    TaskConfig sparse = named("sparse_linear_regression");
    sparse.sparsity = 4;
    EXPECT_EQ(task_normaliser(named("linear_regression"), 20), 20.0);
    EXPECT_EQ(task_normaliser(named("noisy_linear_regression"), 20), 20.0);
    EXPECT_EQ(task_normaliser(named("relu_2nn_regression"), 20), 20.0);
    EXPECT_EQ(task_normaliser(named("quadratic_regression"), 20), 20.0);
    EXPECT_EQ(task_normaliser(named("linear_classification"), 20), 20.0);
    EXPECT_EQ(task_normaliser(sparse, 20), 4.0);
    EXPECT_EQ(task_normaliser(named("decision_tree"), 20), 1.0);
}

TEST(IclTasks, Errors) {
    Rng rng(17, "task");
    expect_error([&] { make_task(named("cubic"), 5, 2, rng); },
                 {"unknown task 'cubic'", "linear_regression", "sparse_linear_regression",
                  "decision_tree", "relu_2nn_regression"});
    expect_error([&] { make_task(named("linear_regression"), 0, 2, rng); }, {"n_dims", "0"});
    expect_error([&] { make_task(named("linear_regression"), 5, 0, rng); }, {"batch"});
    TaskConfig c = named("sparse_linear_regression");
    c.sparsity = 6;
    expect_error([&] { make_task(c, 5, 2, rng); }, {"sparsity", "6"});
    c.sparsity = 0;
    expect_error([&] { make_task(c, 5, 2, rng); }, {"sparsity", "0"});
    c.sparsity = 3;
    c.valid_coords = 2;
    expect_error([&] { make_task(c, 5, 2, rng); }, {"valid_coords", "2"});
    c = named("relu_2nn_regression");
    c.hidden = 0;
    expect_error([&] { make_task(c, 5, 2, rng); }, {"hidden", "0"});
    c = named("decision_tree");
    c.depth = 0;
    expect_error([&] { make_task(c, 5, 2, rng); }, {"depth", "0"});
    c = named("noisy_linear_regression");
    c.noise_std = -1;
    expect_error([&] { make_task(c, 5, 2, rng); }, {"noise_std"});
    expect_error([&] { make_task_seeded(named("linear_regression"), 5, {}); }, {"seeds"});
    expect_error([&] { TaskPool(named("linear_regression"), 5, 0, rng); }, {"num_tasks"});
    const auto task = make_task(named("linear_regression"), 5, 2, rng);
    expect_error([&] { task->evaluate(Tensor::zeros(Shape{2, 3, 4})); },
                 {"linear_regression", "evaluate", "f32[2, 3, 4]"});
    expect_error([&] { task->evaluate(Tensor::zeros(Shape{3, 3, 5})); },
                 {"linear_regression", "f32[3, 3, 5]"});
    expect_error([&] { make_decision_tree(3, 2, {0, 1}, {0, 1}); }, {"make_decision_tree", "7"});
    expect_error([&] { make_decision_tree(3, 1, {0, 1, 3}, {0, 1, 2}); }, {"coords", "3"});
}

}  // namespace
}  // namespace goose::icl
