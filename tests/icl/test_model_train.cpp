// The ICL models (shapes, causality, config errors) and the training loop (learning, resume).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "goose/autograd.h"
#include "goose/icl/model.h"
#include "goose/icl/sampler.h"
#include "goose/icl/train.h"
#include "goose/io/atomic_file.h"
#include "goose/io/pth.h"
#include "goose/models/lstm.h"
#include "icl_test_util.h"

namespace goose::icl {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;

ModelConfig tiny(const std::string& family, int64_t d = 3, int64_t n = 7) {
    return ModelConfig{.family = family, .n_dims = d, .n_positions = n, .n_embd = 32,
                       .n_layer = 2, .n_head = 2, .head_size = 16};
}

const std::vector<std::string> kFamilies = {"rwkv7", "transformer", "lstm"};

TEST(IclModel, ForwardShapesAllFamilies) {
    for (const auto& f : kFamilies) {
        Rng rng(1, "model");
        IclModel m(tiny(f), rng);
        Rng r(2, "xs");
        const Tensor xs = sample_xs(4, 5, 3, r);
        const Tensor ys = Tensor::randn(Shape{4, 5}, r);
        Var p = m.forward(xs, ys);
        EXPECT_EQ(p.shape(), (Shape{4, 5})) << f;
        EXPECT_EQ(m.predict(xs, ys).shape(), (Shape{4, 5})) << f;
        // Gradients reach the read-in, the backbone and the read-out.
        ag::backward(ag::mean(ag::square(p)));
        for (const auto& [name, v] : m.named_parameters()) {
            if (name.find("backbone.emb") != std::string::npos ||
                name.find("backbone.head") != std::string::npos ||
                name.find("blocks.0.att.v") != std::string::npos)
                continue;  // rwkv7's unused token table, head and layer-0 v0/v1/v2 (official)
            EXPECT_TRUE(v.grad().defined()) << f << " " << name;
        }
    }
}

TEST(IclModel, CausalAllFamilies) {
    const int64_t b = 2, n = 6, d = 3;
    for (const auto& f : kFamilies) {
        Rng rng(3, "model");
        IclModel m(tiny(f, d, n), rng);
        Rng r(4, "xs");
        const Tensor xs = sample_xs(b, n, d, r);
        const Tensor ys = Tensor::randn(Shape{b, n}, r);
        const Tensor p0 = m.predict(xs, ys);
        for (int64_t i = 0; i < n; ++i) {
            // Perturb y_i and every (x, y) after i: predictions 0..i must not move.
            Tensor xs2 = xs.clone(), ys2 = ys.clone();
            for (int64_t bb = 0; bb < b; ++bb) {
                ys2.set({bb, i}, ys.get({bb, i}) + 5.0);
                for (int64_t j = i + 1; j < n; ++j) {
                    ys2.set({bb, j}, -3.0 * ys.get({bb, j}) + 1);
                    for (int64_t k = 0; k < d; ++k) xs2.set({bb, j, k}, xs.get({bb, j, k}) * 2 - 1);
                }
            }
            const Tensor p1 = m.predict(xs2, ys2);
            bool changed_later = false;
            for (int64_t bb = 0; bb < b; ++bb) {
                for (int64_t j = 0; j <= i; ++j)
                    EXPECT_NEAR(p1.get({bb, j}), p0.get({bb, j}), 1e-6) << f << " i=" << i;
                for (int64_t j = i + 1; j < n; ++j)
                    changed_later = changed_later || p1.get({bb, j}) != p0.get({bb, j});
            }
            if (i + 1 < n) {
                EXPECT_TRUE(changed_later) << f << " i=" << i;
            }
        }
    }
}

TEST(IclModel, ConfigErrors) {
    Rng rng(0);
    expect_error([&] { IclModel m(tiny("gpt2"), rng); },
                 {"gpt2", "rwkv7", "transformer", "lstm"});
    auto with = [](auto edit) {
        ModelConfig c = tiny("transformer");
        edit(c);
        return c;
    };
    expect_error([&] { IclModel m(with([](ModelConfig& c) { c.n_dims = 0; }), rng); }, {"n_dims"});
    expect_error([&] { IclModel m(with([](ModelConfig& c) { c.n_positions = 0; }), rng); },
                 {"n_positions"});
    expect_error([&] { IclModel m(with([](ModelConfig& c) { c.n_layer = 0; }), rng); },
                 {"n_layer"});
    expect_error([&] { IclModel m(with([](ModelConfig& c) { c.n_head = 5; }), rng); },
                 {"n_head"});
    ModelConfig rc = tiny("rwkv7");
    rc.head_size = 7;
    expect_error([&] { IclModel m(rc, rng); }, {"head_size"});
    IclModel m(tiny("lstm"), rng);
    Rng r(1);
    expect_error([&] { m.forward(sample_xs(2, 8, 3, r), Tensor::zeros(Shape{2, 8})); },
                 {"n_positions"});
    expect_error([&] { m.forward(sample_xs(2, 4, 2, r), Tensor::zeros(Shape{2, 4})); }, {"xs"});
    expect_error([&] { m.forward(sample_xs(2, 4, 3, r), Tensor::zeros(Shape{2, 5})); }, {"ys"});
}

TEST(IclLstm, MatchesHandStep) {
    // One layer, T = 1, C = 1: h = σ(o)·tanh(σ(i)·tanh(g)) with gates from x.
    Rng rng(5);
    models::Lstm lstm({.n_layer = 1, .n_embd = 1}, rng);
    const auto ps = lstm.named_parameters();
    ASSERT_EQ(ps.size(), 4u);
    EXPECT_EQ(ps[0].first, "layers.0.weight_ih");
    const auto w = ps[0].second.value().to_vector(), bi = ps[2].second.value().to_vector(),
               bh = ps[3].second.value().to_vector();
    for (double v : w) EXPECT_LE(std::abs(v), 1.0);
    const double x = 0.7;
    auto sig = [](double z) { return 1 / (1 + std::exp(-z)); };
    auto gate = [&](int k) { return w[k] * x + bi[k] + bh[k]; };
    const double c = sig(gate(0)) * std::tanh(gate(2));
    const double h = sig(gate(3)) * std::tanh(c);
    Var out = lstm.forward(Var(Tensor::full(Shape{1, 1, 1}, x)));
    EXPECT_NEAR(out.value().item(), h, 1e-6);
}

TrainConfig linear_config(const std::string& family, int64_t steps) {
    TrainConfig c;
    c.task.name = "linear_regression";
    c.model = tiny(family, 3, 7);
    c.dims = {.start = 3, .end = 3, .inc = 0, .interval = 1};
    c.points = {.start = 7, .end = 7, .inc = 0, .interval = 1};
    c.batch_size = 64;
    c.train_steps = steps;
    c.learning_rate = 3e-3;
    c.log_every_steps = 10;
    c.save_every_steps = 1000;
    c.seed = 7;
    c.show_progress = false;
    return c;
}

fs::path fresh_dir(const std::string& name) {
    fs::path p = fs::temp_directory_path() / ("goose_icl_train_" + name);
    fs::remove_all(p);
    return p;
}

// Rows of train_log.csv as (step, loss string).
std::vector<std::pair<int64_t, std::string>> log_rows(const fs::path& dir) {
    std::istringstream in(io::read_file((dir / "train_log.csv").string()));
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "step,loss,excess_loss,n_dims,n_points,lr,seconds");
    std::vector<std::pair<int64_t, std::string>> rows;
    while (std::getline(in, line)) {
        const size_t a = line.find(','), b = line.find(',', a + 1);
        rows.emplace_back(std::stoll(line.substr(0, a)), line.substr(a + 1, b - a - 1));
    }
    return rows;
}

void expect_learns(const std::string& family, int64_t steps) {
    const fs::path dir = fresh_dir("learn_" + family);
    const auto t0 = std::chrono::steady_clock::now();
    const TrainResult r = train(linear_config(family, steps), dir.string(), false);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.steps, steps);
    const auto rows = log_rows(dir);
    ASSERT_FALSE(rows.empty());
    const double first = std::stod(rows.front().second);
    EXPECT_GT(first, 2.0) << family;  // starts near d = 3 (the zero estimator)
    // The last step's loss is one random batch and depends on the thread count (summation
    // order); measured 1.35 (1 thread) and 1.57 (2 threads) from 3.26: require < 0.6 x start.
    EXPECT_LT(r.final_loss, 0.6 * first) << family;
    std::printf("[%s] %lld steps in %.2f s, first loss %s, final loss %.4f\n", family.c_str(),
                static_cast<long long>(steps), s, rows.front().second.c_str(), r.final_loss);
    fs::remove_all(dir);
}

TEST(IclTrain, TinyRwkv7Learns) { expect_learns("rwkv7", 500); }

// Timing only (run with --gtest_also_run_disabled_tests): the toy config d=5, n=11, B=64,
// C=64, L=3.
TEST(IclTrain, DISABLED_StepTiming) {
    for (const std::string family : {"rwkv7", "transformer", "lstm"}) {
        TrainConfig c = linear_config(family, 30);
        c.model = ModelConfig{.family = family, .n_dims = 5, .n_positions = 11};
        c.dims = {.start = 5, .end = 5, .inc = 0, .interval = 1};
        c.points = {.start = 11, .end = 11, .inc = 0, .interval = 1};
        const fs::path dir = fresh_dir("timing");
        const TrainResult r = train(c, dir.string(), false);
        std::printf("[timing] %s: %.1f ms/step\n", family.c_str(), 1e3 * r.seconds / 30);
        fs::remove_all(dir);
    }
}

TEST(IclTrain, ResumeIsBitIdentical) {
    for (const std::string family : {"rwkv7", "transformer"}) {
        TrainConfig c = linear_config(family, 6);
        c.batch_size = 8;
        c.log_every_steps = 1;
        c.save_every_steps = 3;
        const fs::path a = fresh_dir("resume_a"), b = fresh_dir("resume_b");
        const TrainResult ra = train(c, a.string(), false);
        TrainConfig c3 = c;
        c3.train_steps = 3;
        train(c3, b.string(), false);
        const TrainResult rb = train(c, b.string(), true);
        EXPECT_EQ(ra.steps, 6);
        EXPECT_EQ(rb.steps, 6);
        EXPECT_EQ(ra.final_loss, rb.final_loss) << family;
        const auto la = log_rows(a), lb = log_rows(b);
        ASSERT_EQ(la.size(), 6u);
        ASSERT_EQ(lb.size(), 6u);
        for (size_t i = 0; i < 6; ++i) {
            EXPECT_EQ(la[i].first, static_cast<int64_t>(i));
            EXPECT_EQ(la[i], lb[i]) << family << " step " << i;
        }
        const io::StateDict sa = io::load_pth((a / "checkpoint.pth").string());
        const io::StateDict sb = io::load_pth((b / "checkpoint.pth").string());
        ASSERT_EQ(sa.size(), sb.size());
        EXPECT_EQ(sa.at("meta.step").item(), 6);
        size_t n_model = 0;
        for (const auto& [k, v] : sa) {
            if (k == "meta.seconds") continue;
            n_model += k.starts_with("model.");
            ASSERT_TRUE(sb.count(k)) << k;
            EXPECT_EQ(v.to_vector(), sb.at(k).to_vector()) << family << " " << k;
        }
        EXPECT_GT(n_model, 4u);
        fs::remove_all(a);
        fs::remove_all(b);
    }
}

TEST(IclTrain, PoolAndFiniteDataRun) {
    TrainConfig c = linear_config("lstm", 3);
    c.batch_size = 4;
    c.num_tasks = 2;
    const fs::path dir = fresh_dir("pool");
    EXPECT_TRUE(std::isfinite(train(c, dir.string(), false).final_loss));
    c.num_tasks = 0;
    c.num_training_examples = 10;
    EXPECT_TRUE(std::isfinite(train(c, dir.string(), false).final_loss));
    c.task.name = "linear_classification";
    EXPECT_TRUE(std::isfinite(train(c, dir.string(), false).final_loss));
    EXPECT_EQ(log_rows(dir).size(), 2u);  // steps 0 and 2 (the last), excess loss empty
    fs::remove_all(dir);
}

TEST(IclTrain, ConfigErrors) {
    const std::string dir = (fs::temp_directory_path() / "goose_icl_train_err").string();
    auto bad = [&](auto edit, std::initializer_list<const char*> parts) {
        TrainConfig c = linear_config("transformer", 1);
        edit(c);
        expect_error([&] { train(c, dir, false); }, std::vector<std::string>(parts.begin(), parts.end()));
    };
    bad([](TrainConfig& c) { c.batch_size = 0; }, {"batch_size"});
    bad([](TrainConfig& c) { c.train_steps = -1; }, {"train_steps"});
    bad([](TrainConfig& c) { c.learning_rate = 0; }, {"learning_rate"});
    bad([](TrainConfig& c) { c.optimizer = "sgd"; }, {"optimizer", "sgd"});
    bad([](TrainConfig& c) { c.dims.end = 4; }, {"dims.end", "n_dims"});
    bad([](TrainConfig& c) { c.points.end = 9; }, {"points.end", "n_positions"});
    bad([](TrainConfig& c) { c.num_training_examples = 10; }, {"num_training_examples"});
    bad([](TrainConfig& c) { c.model.family = "mamba"; }, {"mamba", "rwkv7"});
    bad([](TrainConfig& c) { c.task.name = "nope"; }, {"nope"});
    fs::remove_all(dir);
}

TEST(IclTrain, LeastSquaresBaseline) {
    EXPECT_DOUBLE_EQ(least_squares_baseline(3, 7), (3 + 2 + 1) / 7.0);
    EXPECT_DOUBLE_EQ(least_squares_baseline(5, 2), (5 + 4) / 2.0);
}

}  // namespace
}  // namespace goose::icl
