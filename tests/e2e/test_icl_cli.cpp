// goose icl end to end with short runs: the embedded default and `icl train` write the run
// directory, an interrupted run resumes, eval / plot / compare work on run directories, and bad
// input (options, configs, run directories) gives clear errors.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/run_cli.h"
#include "goose/icl/config.h"
#include "goose/icl/eval.h"
#include "goose/icl/run.h"
#include "goose/io/atomic_file.h"

namespace goose {
namespace {
namespace fs = std::filesystem;

// A tiny configuration: trains and evaluates in about a second.
const char* kTiny =
    R"(model: {family: rwkv7, n_dims: 3, n_positions: 7, n_embd: 32, n_layer: 1, head_size: 16}
training:
  task: linear_regression
  batch_size: 8
  learning_rate: 0.001
  train_steps: 4
  save_every_steps: 2
  log_every_steps: 1
  curriculum:
    dims: {start: 3, end: 3, inc: 0, interval: 100}
    points: {start: 7, end: 7, inc: 0, interval: 100}
eval: {prompts: 16}
)";

// Each test gets its own temporary directory; plots are off (GOOSE_PYTHON points nowhere) unless
// a test turns them on, so that only the plot test pays for starting matplotlib.
class IclCli : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() /
               ("goose_icl_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        ::setenv("GOOSE_PYTHON", "/nonexistent/python3", 1);
    }
    void TearDown() override {
        ::unsetenv("GOOSE_PYTHON");
        fs::remove_all(dir_);
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    std::string tiny_config() const {
        const std::string p = path("tiny.yaml");
        io::write_file_atomic(p, kTiny);
        return p;
    }
    fs::path dir_;
};

TEST_F(IclCli, ShortRunWritesTheRunDirectory) {
    const std::string out = path("default");
    const auto r = test::run_goose("icl --steps 2 --eval-prompts 16 --out " + out);
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* f :
         {"config.yaml", "train_log.csv", "checkpoint.pth", "metrics.json", "curves.csv"})
        EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
    EXPECT_NE(r.out.find("least_squares"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("plots: skipped"), std::string::npos) << r.out;
    const icl::EvalResults res = icl::read_metrics_json(out + "/metrics.json");
    ASSERT_TRUE(res.count("standard"));
    for (const char* name : {"rwkv7", "least_squares", "knn3", "averaging", "zero"}) {
        ASSERT_TRUE(res.at("standard").count(name)) << name;
        EXPECT_EQ(res.at("standard").at(name).k.size(), 11u) << name;
    }
    // Least squares is exact from k = d = 5 on (noiseless linear regression).
    EXPECT_LT(res.at("standard").at("least_squares").mean[6], 1e-6);
    // config.yaml is the emitter's and reads back as the embedded default with 2 steps.
    icl::IclRunConfig expected = icl::default_icl_config();
    expected.train.train_steps = 2;
    expected.eval_prompts = 16;
    EXPECT_EQ(io::read_file(out + "/config.yaml"), icl::icl_config_yaml(expected));
    const auto again = test::run_goose("icl --steps 3 --eval-prompts 16 --resume --out " + out);
    ASSERT_EQ(again.code, 0) << again.out;
    EXPECT_NE(again.out.find("after 3 steps"), std::string::npos) << again.out;
}

TEST_F(IclCli, BadOptionsAreClearErrors) {
    auto r = test::run_goose("icl --family mamba2 --steps 1 --out " + path("bad"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("rwkv7"), std::string::npos) << r.out;  // lists the valid families
    r = test::run_goose("icl --steps 0");
    EXPECT_NE(r.code, 0);
}

// train, the resume rules, eval with OOD settings, a second run, compare; then the errors of
// eval and compare on broken run directories.
TEST_F(IclCli, TrainEvalCompare) {
    const std::string cfg = tiny_config(), a = path("a"), b = path("b");
    auto r = test::run_goose("icl train " + cfg + " --out " + a);
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* f :
         {"config.yaml", "train_log.csv", "checkpoint.pth", "metrics.json", "curves.csv"})
        EXPECT_TRUE(fs::exists(fs::path(a) / f)) << f;
    EXPECT_NE(r.out.find("after 4 steps"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("least_squares"), std::string::npos) << r.out;
    EXPECT_EQ(icl::load_run_config(a).train.train_steps, 4);

    // An existing run is neither silently overwritten nor resumed with another model.
    r = test::run_goose("icl train " + cfg + " --out " + a);
    EXPECT_NE(r.code, 0);
    for (const char* part : {"already holds a run", "step 4", "--resume", "--overwrite"})
        EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
    r = test::run_goose("icl train " + cfg + " --out " + a + " --resume --set model.n_embd=64");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("cannot resume"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("model.n_embd"), std::string::npos) << r.out;
    // An interrupted run (here: one that stopped at step 4) continues to the new end.
    r = test::run_goose("icl train " + cfg + " --out " + a +
                        " --resume --set training.train_steps=6");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("after 6 steps"), std::string::npos) << r.out;
    const std::string log = io::read_file(a + "/train_log.csv");
    EXPECT_NE(log.find("\n5,"), std::string::npos) << log;
    EXPECT_EQ(icl::load_run_config(a).train.train_steps, 6);

    // eval: rebuilds the model, adds OOD settings, rewrites metrics.json.
    r = test::run_goose("icl eval " + a + " --ood scale-x=2,noisyLR --prompts 8");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("checkpoint at step 6 of 6"), std::string::npos) << r.out;
    const icl::EvalResults res = icl::read_metrics_json(a + "/metrics.json");
    for (const char* s : {"standard", "scale-x=2", "noisyLR"}) {
        ASSERT_TRUE(res.count(s)) << s;
        EXPECT_EQ(res.at(s).at("rwkv7").k.size(), 7u) << s;
    }
    EXPECT_LT(res.at("standard").at("least_squares").mean[4], 1e-6);  // exact from k = d = 3
    r = test::run_goose("icl eval " + a + " --ood skewd");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("unknown setting 'skewd'"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("half_subspace"), std::string::npos) << r.out;

    // A second run with another backbone, then compare.
    r = test::run_goose("icl train " + cfg + " --out " + b +
                        " --set model.family=transformer --set model.n_head=2");
    ASSERT_EQ(r.code, 0) << r.out;
    const std::string cmp = path("cmp");
    r = test::run_goose("icl compare " + a + " " + b + " --out " + cmp + " --k 1,3,6");
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* part : {"a (rwkv7)", "b (transformer)", "least_squares", "k=3", "k=6"})
        EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
    const std::string csv = io::read_file(cmp + "/compare.csv");
    EXPECT_EQ(csv.rfind("label,kind,run_dir,task,n_dims,k=1,k=3,k=6\n", 0), 0u) << csv;
    EXPECT_NE(csv.find("\"a (rwkv7)\",model,"), std::string::npos) << csv;
    EXPECT_NE(csv.find("\"least_squares\",baseline,"), std::string::npos) << csv;
    EXPECT_TRUE(fs::exists(cmp + "/compare.json"));

    // Broken run directories name the path.
    r = test::run_goose("icl compare " + a + " " + path("missing") + " --out " + cmp);
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find(path("missing")), std::string::npos) << r.out;
    r = test::run_goose("icl compare " + a + " --setting skewed --out " + cmp);
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("no setting 'skewed'"), std::string::npos) << r.out;
    fs::create_directories(path("empty"));
    r = test::run_goose("icl eval " + path("empty"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find(path("empty") + "/config.yaml is missing"), std::string::npos) << r.out;
    fs::create_directories(path("untrained"));
    fs::copy_file(a + "/config.yaml", path("untrained") + "/config.yaml");
    r = test::run_goose("icl eval " + path("untrained"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("checkpoint.pth is missing"), std::string::npos) << r.out;
    r = test::run_goose("icl compare " + path("untrained") + " --out " + cmp);
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("metrics.json is missing"), std::string::npos) << r.out;
    io::write_file_atomic(path("untrained") + "/config.yaml", "model: [");
    r = test::run_goose("icl eval " + path("untrained"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("config.yaml: not valid YAML"), std::string::npos) << r.out;
}

TEST_F(IclCli, TrainDefaultsToRunsIclConfigStem) {
    const std::string cfg = tiny_config();
    const fs::path cwd = fs::current_path();
    const char* bin = std::getenv("GOOSE_BIN");
    if (!bin || bin[0] != '/') GTEST_SKIP() << "needs an absolute GOOSE_BIN";
    fs::current_path(dir_);
    const auto r = test::run_goose("icl train " + cfg + " --set training.train_steps=1");
    fs::current_path(cwd);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(fs::exists(dir_ / "runs" / "icl" / "tiny" / "checkpoint.pth")) << r.out;
}

TEST_F(IclCli, TrainConfigErrors) {
    const std::string cfg = tiny_config() + " --out " + path("x");
    struct Case {
        std::string args;
        std::vector<std::string> parts;
    };
    const std::vector<Case> cases = {
        {"icl train " + path("nope.yaml"), {"icl config " + path("nope.yaml")}},
        {"icl train " + cfg + " --set training.task=parity",
         {"unknown task 'parity'", "linear_regression", "decision_tree"}},
        {"icl train " + cfg + " --set model.family=mamba", {"unknown family 'mamba'", "rwkv7"}},
        {"icl train " + cfg + " --set eval.baselines=[ols]",
         {"unknown baseline 'ols'", "least_squares", "lasso_alpha_<A>"}},
        {"icl train " + cfg +
             " --set training.task=sparse_linear_regression"
             " --set training.task_kwargs.sparsity=4",
         {"training.task_kwargs.sparsity (4) must be in [1, model.n_dims = 3]"}},
        {"icl train " + cfg + " --set training.curriculum.points.start=0",
         {"training.curriculum.points.start must be >= 1"}},
        {"icl train " + cfg + " --set training.curriculum.dims.end=4",
         {"training.curriculum.dims.end (4) exceeds model.n_dims (3)"}},
        {"icl train " + cfg + " --set training.batch_sise=4",
         {"unknown key 'training.batch_sise'", "batch_size"}},
        {"icl train " + cfg + " --set training.batch_size=many",
         {"training.batch_size must be an integer"}},
        {"icl train " + cfg + " --set nokey", {"expected KEY.PATH=VALUE"}},
        {"icl train " + cfg + " --resume --overwrite", {"excludes"}},
        {"icl --steps 5 train " + cfg, {"--steps before the subcommand", "embedded default"}},
        {"icl eval " + path("nowhere"), {path("nowhere"), "does not exist"}},
        {"icl plot " + path("nowhere"), {path("nowhere"), "does not exist"}},
        {"icl compare", {"run_dirs is required"}},
        {"icl compare " + path("nowhere") + " --k x", {"not an integer"}},
    };
    for (const auto& c : cases) {
        const auto r = test::run_goose(c.args);
        EXPECT_NE(r.code, 0) << c.args;
        for (const auto& p : c.parts)
            EXPECT_NE(r.out.find(p), std::string::npos) << c.args << "\n" << r.out;
    }
}

TEST_F(IclCli, Plot) {
    const std::string cfg = tiny_config(), a = path("a");
    auto r = test::run_goose("icl train " + cfg + " --out " + a + " --set eval.prompts=4");
    ASSERT_EQ(r.code, 0) << r.out;
    r = test::run_goose("icl plot " + a);  // GOOSE_PYTHON points nowhere: a clear error
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("cannot import matplotlib"), std::string::npos) << r.out;
    ::unsetenv("GOOSE_PYTHON");
    if (!icl::plots_available()) GTEST_SKIP() << "python3-matplotlib is not installed";
    r = test::run_goose("icl plot " + a);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(fs::exists(a + "/standard.png")) << r.out;
    fs::remove(a + "/metrics.json");
    r = test::run_goose("icl plot " + a);
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find(a + "/metrics.json is missing"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace goose
