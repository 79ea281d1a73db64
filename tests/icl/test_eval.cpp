// The ICL evaluation: bootstrap curves, the suite on baselines against theory, files and plots.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "goose/icl/eval.h"
#include "goose/io/atomic_file.h"
#include "icl_test_util.h"

namespace goose::icl {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;

fs::path temp_dir(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() /
                         ("goose_icl_eval_" + name + "_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    return dir;
}

EvalConfig linear_config(int64_t d, int64_t n, int64_t prompts) {
    EvalConfig cfg;
    cfg.task.name = "linear_regression";
    cfg.n_dims = d;
    cfg.n_points = n;
    cfg.num_prompts = prompts;
    cfg.batch = 64;
    cfg.seed = 7;
    cfg.bootstrap = 200;
    cfg.progress = false;
    return cfg;
}

TEST(IclEval, AggregateKnownMean) {
    const Curve c = aggregate({{1, 2, 0}, {3, 4, 0}, {5, 9, 0}}, 500, 1);
    ASSERT_EQ(c.k, (std::vector<int64_t>{0, 1, 2}));
    EXPECT_DOUBLE_EQ(c.mean[0], 3.0);
    EXPECT_DOUBLE_EQ(c.mean[1], 5.0);
    EXPECT_DOUBLE_EQ(c.mean[2], 0.0);
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_LE(c.lo[i], c.mean[i]);
        EXPECT_GE(c.hi[i], c.mean[i]);
    }
    EXPECT_EQ(c.lo[2], 0.0);  // constant column: no spread
    EXPECT_EQ(c.hi[2], 0.0);
    const Curve none = aggregate({{1, 2}, {3, 4}}, 0);
    EXPECT_EQ(none.lo, none.mean);
    EXPECT_EQ(none.hi, none.mean);
}

TEST(IclEval, AggregateBandShrinksWithPrompts) {
    Rng rng(3, "test");
    auto draw = [&](int64_t p) {
        std::vector<std::vector<double>> e(static_cast<size_t>(p));
        for (auto& row : e) row = {rng.normal() * rng.normal()};
        return e;
    };
    const Curve small = aggregate(draw(20), 1000, 2), large = aggregate(draw(2000), 1000, 2);
    for (const Curve* c : {&small, &large}) {
        EXPECT_LT(c->lo[0], c->mean[0]);
        EXPECT_GT(c->hi[0], c->mean[0]);
    }
    const double ws = small.hi[0] - small.lo[0], wl = large.hi[0] - large.lo[0];
    EXPECT_LT(wl, ws / 4) << "band widths " << ws << " (20 prompts), " << wl << " (2000)";
    // sqrt(2000/20) = 10: the 90% band of a mean of unit-variance values is ~3.29/sqrt(P)
    EXPECT_NEAR(wl, 3.29 / std::sqrt(2000.0), 0.25 * 3.29 / std::sqrt(2000.0));
}

TEST(IclEval, AggregateErrors) {
    expect_error([] { aggregate({}); }, {"aggregate", "no prompts"});
    expect_error([] { aggregate({{1, 2}, {3}}); }, {"aggregate", "prompt 1", "1 positions"});
}

TEST(IclEval, LinearRegressionBaselinesMatchTheory) {
    const int64_t d = 5, n = 11;
    const EvalConfig cfg = linear_config(d, n, 256);
    const auto res =
        evaluate(cfg, baseline_predictors({"least_squares", "averaging", "zero"}), {"standard"});
    ASSERT_EQ(res.size(), 1u);
    const auto& s = res.at("standard");
    const Curve &ls = s.at("least_squares"), &avg = s.at("averaging"), &zero = s.at("zero");
    ASSERT_EQ(ls.mean.size(), static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
        const double l = ls.mean[k], z = zero.mean[k];
        // per-prompt std of the normalised error at k = 0 is ~1.8 -> ~0.11 over 256 prompts
        if (k < d) EXPECT_NEAR(l, 1.0 - double(k) / d, 0.35) << "least squares k " << k;
        else EXPECT_LT(l, 1e-5) << "least squares k " << k;
        EXPECT_NEAR(z, 1.0, 0.35) << "zero k " << k;
        if (k >= 2) {
            const double want = double(d + 1) / double(k);
            EXPECT_NEAR(avg.mean[k], want, 0.3 * want) << "averaging k " << k;
        }
        std::printf("k %2lld  least_squares %.4f [%.4f, %.4f]  averaging %.4f  zero %.4f\n",
                    static_cast<long long>(k), l, ls.lo[k], ls.hi[k], avg.mean[k], z);
    }
    // Position 0 has no examples: every baseline predicts 0, so all equal the zero estimator.
    EXPECT_DOUBLE_EQ(ls.mean[0], zero.mean[0]);
    EXPECT_DOUBLE_EQ(avg.mean[0], zero.mean[0]);
}

TEST(IclEval, SamePromptsForEveryPredictorAndReproducible) {
    const EvalConfig cfg = linear_config(3, 6, 100);  // 64 + 36: a short last batch
    auto preds = baseline_predictors({"least_squares"});
    preds.emplace_back("ls_again", preds[0].second);
    int64_t calls = 0;
    preds.emplace_back("counted", [&](const Tensor& xs, const Tensor& ys) {
        ++calls;
        return preds[0].second(xs, ys);
    });
    const auto a = evaluate(cfg, preds, {"standard", "random_quadrants"});
    EXPECT_EQ(calls, 2 + 2 * 6);  // 2 batches; the prompt/query setting calls n times a batch
    EXPECT_EQ(a.at("standard").at("least_squares").mean, a.at("standard").at("ls_again").mean);
    const auto b = evaluate(cfg, preds, {"standard"});
    EXPECT_EQ(a.at("standard").at("least_squares").mean,
              b.at("standard").at("least_squares").mean);
    EXPECT_EQ(a.at("standard").at("least_squares").lo, b.at("standard").at("least_squares").lo);
}

TEST(IclEval, EveryOodSettingRunsLeastSquares) {
    const int64_t d = 4, n = 9;
    const EvalConfig cfg = linear_config(d, n, 64);
    const std::vector<std::string> settings = eval_settings(cfg.task);
    EXPECT_EQ(settings.size(), 15u);  // the original's 15 linear-regression evals
    const auto res = evaluate(cfg, baseline_predictors({"least_squares", "zero"}), {});
    ASSERT_EQ(res.size(), settings.size());
    for (const auto& s : settings) {
        const Curve& c = res.at(s).at("least_squares");
        ASSERT_EQ(c.mean.size(), static_cast<size_t>(n)) << s;
        for (int64_t k = 0; k < n; ++k)
            EXPECT_TRUE(std::isfinite(c.mean[k]) && std::isfinite(c.lo[k]) &&
                        std::isfinite(c.hi[k]))
                << s << " k " << k;
        std::printf("%-24s", s.c_str());
        for (double m : c.mean) std::printf(" %.3f", m);
        std::printf("\n");
    }
    // Orthogonal queries: least squares' weights lie in span(P[:i]), the query is orthogonal,
    // so it predicts 0: the zero estimator's error, ~1 (~0.22 sampling std over 64 prompts).
    const auto& ortho = res.at("orthogonal_train_test");
    for (int64_t k = 0; k < d; ++k) {
        EXPECT_NEAR(ortho.at("least_squares").mean[k], ortho.at("zero").mean[k],
                    1e-4 * ortho.at("zero").mean[k] + 1e-6)
            << k;
        EXPECT_NEAR(ortho.at("least_squares").mean[k], 1.0, 0.6) << k;
    }
    for (int64_t k = d; k < n; ++k) EXPECT_EQ(ortho.at("least_squares").mean[k], 0.0) << k;
    // Overlapping queries copy an earlier point, which min-norm least squares interpolates.
    const auto& over = res.at("overlapping_train_test").at("least_squares");
    for (int64_t k = 1; k < n; ++k) EXPECT_LT(over.mean[k], 1e-5) << k;
    // scale-y=s multiplies y by s: the zero estimator's normalised error is ~s².
    EXPECT_NEAR(res.at("scale-y=3").at("zero").mean[0], 9.0, 9.0 * 0.6);
}

TEST(IclEval, ClassificationZeroOneError) {
    EvalConfig cfg = linear_config(4, 7, 256);
    cfg.task.name = "linear_classification";
    EXPECT_EQ(eval_settings(cfg.task), (std::vector<std::string>{"standard"}));
    EXPECT_EQ(default_baselines(cfg.task), (std::vector<std::string>{"knn3", "averaging", "zero"}));
    const auto res = evaluate(cfg, baseline_predictors(default_baselines(cfg.task)), {});
    const auto& s = res.at("standard");
    for (double m : s.at("zero").mean) EXPECT_EQ(m, 1.0);  // sign(0) is never right
    for (int64_t k = 1; k < 7; ++k) {
        EXPECT_GE(s.at("averaging").mean[k], 0.0);
        EXPECT_LT(s.at("averaging").mean[k], 0.5) << k;  // better than chance after 1 example
    }
}

TEST(IclEval, SettingAndPredictorErrors) {
    const EvalConfig cfg = linear_config(4, 5, 8);
    const auto ls = baseline_predictors({"least_squares"});
    expect_error([&] { evaluate(cfg, ls, {"standard", "bogus"}); },
                 {"evaluate", "unknown setting 'bogus'", "standard", "orthogonal_train_test",
                  "scale-x=0.333", "scale-y=3", "noisyLR"});
    EvalConfig tree = cfg;
    tree.task.name = "decision_tree";
    expect_error([&] { evaluate(tree, ls, {"skewed"}); },
                 {"unknown setting 'skewed'", "decision_tree", "standard"});
    auto twice = ls;
    twice.push_back(ls[0]);
    expect_error([&] { evaluate(cfg, twice, {"standard"}); }, {"duplicate", "least_squares"});
    std::vector<std::pair<std::string, Predictor>> bad = {
        {"bad", [](const Tensor& xs, const Tensor&) { return Tensor::zeros(Shape{xs.size(0)}); }}};
    expect_error([&] { evaluate(cfg, bad, {"standard"}); }, {"predictor 'bad'", "(B, n)"});
    expect_error([] { baseline_predictors({"nope"}); }, {"unknown baseline 'nope'"});
}

TEST(IclEval, DefaultBaselines) {
    TaskConfig t;
    t.name = "linear_regression";
    EXPECT_EQ(default_baselines(t),
              (std::vector<std::string>{"least_squares", "knn3", "averaging", "zero"}));
    t.name = "decision_tree";
    EXPECT_EQ(default_baselines(t),
              (std::vector<std::string>{"least_squares", "knn3", "tree_depth_4", "tree",
                                        "xgboost", "averaging", "zero"}));
    t.name = "sparse_linear_regression";
    EXPECT_EQ(default_baselines(t),
              (std::vector<std::string>{"least_squares", "knn3", "averaging", "lasso_alpha_1",
                                        "lasso_alpha_0.1", "lasso_alpha_0.01",
                                        "lasso_alpha_0.001", "lasso_alpha_0.0001", "zero"}));
    t.name = "relu_2nn_regression";
    EXPECT_EQ(default_baselines(t)[3], "nn_gd");
    EXPECT_EQ(eval_settings(t), (std::vector<std::string>{"standard", "linear_regression"}));
    for (const auto& name : baseline_names()) EXPECT_NO_THROW(baseline_predictors({name}));
    for (const char* t2 : {"sparse_linear_regression", "decision_tree"}) {
        t.name = t2;
        EXPECT_NO_THROW(baseline_predictors(default_baselines(t))) << t2;
    }
}

EvalResults sample_results() {
    EvalResults r;
    r["standard"]["least_squares"] =
        Curve{{0, 1, 2}, {1.0, 0.5, 1e-9}, {0.9, 0.4, 0}, {1.1, 0.6, 2e-9}};
    r["standard"]["zero"] = Curve{{0, 1, 2}, {1, 1, 1}, {0.95, 0.95, 0.95}, {1.05, 1.05, 1.05}};
    r["scale-y=2"]["zero"] =
        Curve{{0, 1, 2}, {4, 4, std::numeric_limits<double>::quiet_NaN()}, {4, 4, 4}, {4, 4, 4}};
    return r;
}

TEST(IclEval, MetricsJsonRoundTripAndShape) {
    const fs::path dir = temp_dir("json");
    const std::string path = (dir / "metrics.json").string();
    const EvalResults r = sample_results();
    write_metrics_json(path, "linear_regression", 2, 3, r);
    const auto doc = nlohmann::json::parse(io::read_file(path));
    std::set<std::string> keys;
    for (const auto& [k, v] : doc.items()) keys.insert(k);
    EXPECT_EQ(keys, (std::set<std::string>{"task", "n_dims", "n_points", "curves"}));
    EXPECT_EQ(doc["task"], "linear_regression");
    EXPECT_EQ(doc["n_dims"], 2);
    EXPECT_EQ(doc["n_points"], 3);
    const auto& c = doc["curves"]["standard"]["least_squares"];
    std::set<std::string> ckeys;
    for (const auto& [k, v] : c.items()) ckeys.insert(k);
    EXPECT_EQ(ckeys, (std::set<std::string>{"k", "mean", "lo", "hi"}));
    EXPECT_TRUE(c["k"][1].is_number_integer());
    EXPECT_TRUE(doc["curves"]["scale-y=2"]["zero"]["mean"][2].is_null());  // NaN -> null

    const EvalResults back = read_metrics_json(path);
    ASSERT_EQ(back.size(), r.size());
    for (const auto& [s, by_name] : r)
        for (const auto& [name, curve] : by_name) {
            const Curve& b = back.at(s).at(name);
            EXPECT_EQ(b.k, curve.k);
            EXPECT_EQ(b.lo, curve.lo);
            EXPECT_EQ(b.hi, curve.hi);
            for (size_t i = 0; i < curve.mean.size(); ++i)
                if (std::isnan(curve.mean[i])) EXPECT_TRUE(std::isnan(b.mean[i]));
                else EXPECT_EQ(b.mean[i], curve.mean[i]);
        }
    fs::remove_all(dir);
}

TEST(IclEval, MetricsJsonErrors) {
    const fs::path dir = temp_dir("bad");
    const std::string missing = (dir / "missing.json").string();
    expect_error([&] { read_metrics_json(missing); }, {"missing.json"});
    const std::string bad = (dir / "bad.json").string();
    io::write_file_atomic(bad, "{\"curves\": {\"standard\": ");
    expect_error([&] { read_metrics_json(bad); }, {"read_metrics_json", "bad.json", "malformed"});
    io::write_file_atomic(bad, "{\"task\": \"x\"}");
    expect_error([&] { read_metrics_json(bad); }, {"bad.json", "\"curves\""});
    io::write_file_atomic(bad,
                          R"({"curves": {"standard": {"ls": {"k": [0, 1], "mean": [1],)"
                          R"( "lo": [1, 2], "hi": [1, 2]}}}})");
    expect_error([&] { read_metrics_json(bad); }, {"curves.standard.ls", "lengths"});
    io::write_file_atomic(bad, R"({"curves": {"standard": {"ls": {"k": [0], "mean": ["a"],)"
                               R"( "lo": [1], "hi": [1]}}}})");
    expect_error([&] { read_metrics_json(bad); }, {"curves.standard.ls.mean", "numbers"});
    fs::remove_all(dir);
}

TEST(IclEval, CurvesCsv) {
    const fs::path dir = temp_dir("csv");
    const std::string path = (dir / "curves.csv").string();
    write_curves_csv(path, sample_results());
    const std::string text = io::read_file(path);
    EXPECT_EQ(text.rfind("setting,name,k,mean,lo,hi\n", 0), 0u);
    EXPECT_NE(text.find("standard,least_squares,1,0.5,0.4,0.6\n"), std::string::npos) << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + 9);
    fs::remove_all(dir);
}

TEST(IclEval, PlotScriptWritesPngs) {
    if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "/usr/bin/python3 cannot import matplotlib (apt-get install "
                        "python3-matplotlib, see scripts/deps.sh): plot script not tested";
    const fs::path script = fs::path(__FILE__).parent_path() / "../../python/plot_icl.py";
    ASSERT_TRUE(fs::exists(script)) << script;
    const fs::path dir = temp_dir("plot");
    const std::string metrics = (dir / "metrics.json").string();
    write_metrics_json(metrics, "linear_regression", 2, 3, sample_results());
    const std::string out = (dir / "plots").string();
    const std::string cmd = "/usr/bin/python3 '" + script.string() + "' '" + metrics +
                            "' --out '" + out + "' >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    for (const char* name : {"standard.png", "scale-y=2.png"}) {
        const fs::path png = fs::path(out) / name;
        ASSERT_TRUE(fs::exists(png)) << png;
        EXPECT_GT(fs::file_size(png), 1000u) << png;
    }
    const std::string cmp = "/usr/bin/python3 '" + script.string() + "' '" + metrics + "' '" +
                            metrics + "' --labels a b --compare --out '" + out + "' >/dev/null";
    ASSERT_EQ(std::system(cmp.c_str()), 0) << cmp;
    EXPECT_GT(fs::file_size(fs::path(out) / "compare_standard.png"), 1000u);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace goose::icl
