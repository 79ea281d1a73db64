// ICL run configurations: YAML parsing, defaults, --set overrides, the emitter round trip, every
// error of the schema, the committed configs/icl/*.yaml, parametrised baseline names.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "goose/icl/baselines.h"
#include "goose/icl/config.h"
#include "goose/icl/model.h"
#include "goose/icl/run.h"
#include "goose/io/atomic_file.h"
#include "icl_test_util.h"

namespace goose::icl {
namespace {
namespace fs = std::filesystem;
using testing::expect_error;

const char* kFull = R"(
model:
  family: transformer
  n_dims: 8
  n_positions: 17
  n_embd: 32
  n_layer: 2
  n_head: 4
  head_size: 8
training:
  task: sparse_linear_regression
  task_kwargs: {sparsity: 2, valid_coords: 6, scale: 0.5}
  batch_size: 16
  learning_rate: 3e-4
  optimizer: adamw
  weight_decay: 0.01
  train_steps: 200
  save_every_steps: 50
  log_every_steps: 10
  seed: 7
  num_tasks: 100
  num_training_examples: null
  curriculum:
    dims: {start: 4, end: 8, inc: 2, interval: 20}
    points: {start: 9, end: 17, inc: 4, interval: 20}
eval:
  prompts: 128
  baselines: [least_squares, lasso_alpha_0.1, tree_depth_3]
  settings: [standard]
)";

// A valid minimal config: only the required keys.
const char* kMinimal = R"(
model: {family: rwkv7, n_dims: 5, n_positions: 11}
training:
  task: linear_regression
  train_steps: 10
  curriculum:
    dims: {start: 5, end: 5, inc: 0, interval: 1}
    points: {start: 11, end: 11, inc: 0, interval: 1}
)";

IclRunConfig parse(const std::string& text, const std::vector<std::string>& sets = {}) {
    return parse_icl_config(text, "test.yaml", sets);
}

std::string configs_dir() {
    return std::string(GOOSE_TEST_SOURCE_DIR) + "/configs/icl";
}

TEST(IclConfig, ParsesEveryKey) {
    const IclRunConfig c = parse(kFull);
    const TrainConfig& t = c.train;
    EXPECT_EQ(t.model.family, "transformer");
    EXPECT_EQ(t.model.n_dims, 8);
    EXPECT_EQ(t.model.n_positions, 17);
    EXPECT_EQ(t.model.n_embd, 32);
    EXPECT_EQ(t.model.n_layer, 2);
    EXPECT_EQ(t.model.n_head, 4);
    EXPECT_EQ(t.model.head_size, 8);
    EXPECT_EQ(t.task.name, "sparse_linear_regression");
    EXPECT_EQ(t.task.sparsity, 2);
    EXPECT_EQ(t.task.valid_coords, 6);
    EXPECT_DOUBLE_EQ(t.task.scale, 0.5);
    EXPECT_EQ(t.batch_size, 16);
    EXPECT_DOUBLE_EQ(t.learning_rate, 3e-4);
    EXPECT_EQ(t.optimizer, "adamw");
    EXPECT_DOUBLE_EQ(t.weight_decay, 0.01);
    EXPECT_EQ(t.train_steps, 200);
    EXPECT_EQ(t.save_every_steps, 50);
    EXPECT_EQ(t.log_every_steps, 10);
    EXPECT_EQ(t.seed, 7u);
    EXPECT_EQ(t.num_tasks, 100);
    EXPECT_EQ(t.num_training_examples, 0);
    EXPECT_EQ(t.dims.start, 4);
    EXPECT_EQ(t.dims.end, 8);
    EXPECT_EQ(t.dims.inc, 2);
    EXPECT_EQ(t.dims.interval, 20);
    EXPECT_EQ(t.points.start, 9);
    EXPECT_EQ(t.points.end, 17);
    EXPECT_EQ(t.points.inc, 4);
    EXPECT_EQ(c.eval_prompts, 128);
    EXPECT_EQ(c.baselines,
              (std::vector<std::string>{"least_squares", "lasso_alpha_0.1", "tree_depth_3"}));
    EXPECT_EQ(c.settings, std::vector<std::string>{"standard"});
}

TEST(IclConfig, DefaultsOfOptionalKeys) {
    const IclRunConfig c = parse(kMinimal);
    const TrainConfig defaults;
    const ModelConfig model_defaults;
    EXPECT_EQ(c.train.model.n_embd, model_defaults.n_embd);
    EXPECT_EQ(c.train.model.head_size, model_defaults.head_size);
    EXPECT_EQ(c.train.batch_size, defaults.batch_size);
    EXPECT_DOUBLE_EQ(c.train.learning_rate, defaults.learning_rate);
    EXPECT_EQ(c.train.optimizer, "adam");
    EXPECT_EQ(c.train.seed, 0u);
    EXPECT_EQ(c.train.num_tasks, 0);
    EXPECT_EQ(c.eval_prompts, 1280);
    EXPECT_TRUE(c.baselines.empty());  // default_baselines(task)
    EXPECT_EQ(c.settings, std::vector<std::string>{"standard"});
    // "all" and "default" spelled out.
    const IclRunConfig all =
        parse(std::string(kMinimal) + "eval: {settings: all, baselines: default}\n");
    EXPECT_TRUE(all.settings.empty());
    EXPECT_TRUE(all.baselines.empty());
}

TEST(IclConfig, EmitterRoundTrip) {
    for (const IclRunConfig& c : {parse(kFull), parse(kMinimal), default_icl_config()}) {
        const std::string yaml = icl_config_yaml(c);
        const IclRunConfig back = parse(yaml);
        EXPECT_EQ(icl_config_yaml(back), yaml);
        EXPECT_TRUE(icl_config_differences(c, back).empty()) << yaml;
        EXPECT_DOUBLE_EQ(back.train.learning_rate, c.train.learning_rate);
        EXPECT_DOUBLE_EQ(back.train.task.scale, c.train.task.scale);
        EXPECT_EQ(back.train.task.valid_coords, c.train.task.valid_coords);
        EXPECT_EQ(back.baselines, c.baselines);
        EXPECT_EQ(back.settings, c.settings);
    }
    // Awkward doubles survive exactly.
    IclRunConfig c = default_icl_config();
    c.train.learning_rate = 1.0 / 3.0;
    c.train.weight_decay = 1e-7;
    const IclRunConfig back = parse(icl_config_yaml(c));
    EXPECT_EQ(back.train.learning_rate, c.train.learning_rate);
    EXPECT_EQ(back.train.weight_decay, c.train.weight_decay);
    // The emitted text is plain YAML with the schema's sections.
    const std::string yaml = icl_config_yaml(default_icl_config());
    for (const char* part : {"model:\n", "training:\n", "curriculum:\n", "eval:\n",
                             "learning_rate: 0.001\n", "dims: {start: 5, end: 5, inc: 0"})
        EXPECT_NE(yaml.find(part), std::string::npos) << part << "\n" << yaml;
}

TEST(IclConfig, Overrides) {
    const IclRunConfig c =
        parse(kMinimal, {"training.train_steps=99", "model.n_embd=32",
                         "eval.baselines=[least_squares, knn3]", "training.curriculum.points.inc=2",
                         "training.task_kwargs.scale=2.5", "eval.settings=scale-x=2"});
    EXPECT_EQ(c.train.train_steps, 99);
    EXPECT_EQ(c.train.model.n_embd, 32);
    EXPECT_EQ(c.baselines, (std::vector<std::string>{"least_squares", "knn3"}));
    EXPECT_EQ(c.train.points.inc, 2);
    EXPECT_DOUBLE_EQ(c.train.task.scale, 2.5);
    EXPECT_EQ(c.settings, std::vector<std::string>{"scale-x=2"});  // split at the first '='
    // Later overrides win; a whole mapping can be replaced.
    const IclRunConfig d =
        parse(kMinimal, {"training.train_steps=5", "training.train_steps=6",
                         "training.curriculum.dims={start: 2, end: 5, inc: 1, interval: 3}"});
    EXPECT_EQ(d.train.train_steps, 6);
    EXPECT_EQ(d.train.dims.start, 2);
    EXPECT_EQ(d.train.dims.interval, 3);
    // Overrides get the same validation as the file.
    expect_error([] { parse(kMinimal, {"training.train_stpes=5"}); },
                 {"test.yaml", "unknown key 'training.train_stpes'", "train_steps", "curriculum"});
    expect_error([] { parse(kMinimal, {"model.n_dims=abc"}); },
                 {"model.n_dims must be an integer", "'abc'"});
    expect_error([] { parse(kMinimal, {"training.train_steps"}); }, {"expected KEY.PATH=VALUE"});
    expect_error([] { parse(kMinimal, {"=5"}); }, {"expected KEY.PATH=VALUE"});
    expect_error([] { parse(kMinimal, {"training..seed=5"}); }, {"empty component"});
    expect_error([] { parse(kMinimal, {"model.n_dims.x=1"}); },
                 {"model.n_dims is '5', not a mapping"});
    expect_error([] { parse(kMinimal, {"eval.baselines=[a, "}); }, {"not valid YAML"});
    expect_error([] { parse(kMinimal, {"wandb.project=x"}); },
                 {"unknown key 'wandb'", "model, training, eval"});
}

TEST(IclConfig, SchemaErrors) {
    const std::string m = kMinimal;  // each case: overrides of it, then the message's parts
    const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
        // unknown keys list the valid ones at their level
        {{"bogus=1"},
         {"unknown key 'bogus'", "valid keys at the top level: model, training, eval"}},
        {{"model.n_dim=5"},
         {"unknown key 'model.n_dim'", "under model", "family, n_dims, n_positions"}},
        {{"training.curriculum.dims.step=1"},
         {"unknown key 'training.curriculum.dims.step'", "start, end, inc, interval"}},
        {{"eval.prompt=5"}, {"unknown key 'eval.prompt'", "prompts, baselines, settings"}},
        {{"training.task_kwargs.sparsity=2"},
         {"unknown key 'training.task_kwargs.sparsity'", "for task linear_regression: scale"}},
        // wrong types name the key
        {{"training.batch_size=1.5"}, {"training.batch_size must be an integer", "'1.5'"}},
        {{"training.learning_rate=fast"}, {"training.learning_rate must be a number", "'fast'"}},
        {{"model.family=[rwkv7]"}, {"model.family must be a string", "a list"}},
        {{"training.curriculum=7"}, {"training.curriculum must be a mapping", "'7'"}},
        {{"eval.baselines={a: 1}"}, {"eval.baselines must be a list of names", "a mapping"}},
        {{"training.seed=-3"}, {"training.seed must be a non-negative integer"}},
        // names list the valid ones
        {{"training.task=quadratic"},
         {"training.task: unknown task 'quadratic'", "linear_regression", "decision_tree"}},
        {{"model.family=mamba"},
         {"model.family: unknown family 'mamba'", "rwkv7, transformer, lstm"}},
        {{"training.optimizer=sgd"}, {"training.optimizer", "'sgd'", "adam, adamw"}},
        {{"eval.baselines=[ols]"},
         {"eval.baselines", "unknown baseline 'ols'", "least_squares", "lasso_alpha_<A>"}},
        {{"eval.baselines=[knn3, knn3]"}, {"eval.baselines: 'knn3' appears twice"}},
        {{"eval.settings=[skewd]"},
         {"eval.settings: unknown setting 'skewd'", "half_subspace", "noisyLR"}},
        // inconsistent sizes
        {{"training.task=sparse_linear_regression", "training.task_kwargs={sparsity: 6}"},
         {"training.task_kwargs.sparsity (6) must be in [1, model.n_dims = 5]"}},
        {{"training.task=sparse_linear_regression", "training.task_kwargs={sparsity: 4}",
          "training.curriculum.dims={start: 3, end: 5, inc: 1, interval: 10}"},
         {"sparsity (4) exceeds training.curriculum.dims.start (3)"}},
        {{"training.task=sparse_linear_regression", "training.task_kwargs={valid_coords: 9}"},
         {"training.task_kwargs.valid_coords (9)"}},
        {{"training.curriculum.points.start=0"},
         {"training.curriculum.points.start must be >= 1, got 0"}},
        {{"training.curriculum.dims.end=6", "training.curriculum.dims.start=6"},
         {"training.curriculum.dims.end (6) exceeds model.n_dims (5)"}},
        {{"training.curriculum.points.end=12"},
         {"training.curriculum.points.end (12) exceeds model.n_positions (11)"}},
        {{"training.curriculum.points.end=10"},
         {"training.curriculum.points.end (10) must be >= training.curriculum.points.start (11)"}},
        {{"training.curriculum.dims.interval=0"},
         {"training.curriculum.dims.interval must be >= 1"}},
        {{"model.n_embd=48", "model.head_size=32"},
         {"model.n_embd (48) must be a multiple of model.head_size (32)"}},
        {{"model.family=transformer", "model.n_head=5"},
         {"model.n_embd (64) must be a multiple of model.n_head (5)"}},
        {{"model.n_dims=0"}, {"model.n_dims must be >= 1, got 0"}},
        {{"training.train_steps=0"}, {"training.train_steps must be >= 1"}},
        {{"training.learning_rate=0"}, {"training.learning_rate must be > 0"}},
        {{"training.batch_size=0"}, {"training.batch_size must be >= 1"}},
        {{"eval.prompts=0"}, {"eval.prompts must be >= 1"}},
        {{"training.num_tasks=4", "training.num_training_examples=100"},
         {"num_tasks and training.num_training_examples cannot both be set"}},
        {{"training.num_training_examples=10"},
         {"num_training_examples (10) must be >= training.batch_size (64)"}},
        {{"training.task=decision_tree", "training.task_kwargs.depth=0"},
         {"training.task_kwargs.depth must be in [1, 24], got 0"}},
    };
    for (const auto& [sets, parts] : cases) {
        std::vector<std::string> all = parts;
        all.push_back("test.yaml");
        expect_error([&] { parse(m, sets); }, all);
    }
    // Missing required keys, documents that are not YAML or not a mapping, duplicate keys.
    expect_error([] { parse("model: {family: rwkv7, n_dims: 5}\n"); },
                 {"missing required key 'model.n_positions'"});
    expect_error([] { parse(""); }, {"missing required key 'model'"});
    expect_error([] { parse("- 1\n- 2\n"); }, {"the document must be a mapping", "a list"});
    expect_error([] { parse("model: [unclosed\n"); }, {"test.yaml: not valid YAML"});
    expect_error([] { parse(std::string(kMinimal) + "eval: {prompts: 5, prompts: 6}\n"); },
                 {"key 'eval.prompts' appears twice"});
    {
        std::string no_points = kMinimal;
        no_points = no_points.substr(0, no_points.find("    points"));
        expect_error([&] { parse(no_points); },
                     {"missing required key 'training.curriculum.points'"});
    }
    expect_error([] { parse(std::string(kMinimal), {"training.curriculum.dims={start: 5}"}); },
                 {"missing required key 'training.curriculum.dims.end'"});
    expect_error([] { load_icl_config("/nonexistent/dir/cfg.yaml"); },
                 {"icl config /nonexistent/dir/cfg.yaml"});
}

TEST(IclConfig, Differences) {
    const IclRunConfig a = parse(kMinimal);
    EXPECT_TRUE(icl_config_differences(a, a).empty());
    const IclRunConfig b =
        parse(kMinimal, {"training.train_steps=20", "model.n_embd=32", "eval.prompts=7"});
    EXPECT_EQ(icl_config_differences(a, b),
              (std::vector<std::string>{"model.n_embd", "training.train_steps", "eval.prompts"}));
    const IclRunConfig c = parse(kMinimal, {"training.task=decision_tree"});
    const auto d = icl_config_differences(a, c);
    EXPECT_NE(std::find(d.begin(), d.end(), "training.task"), d.end());
    EXPECT_NE(std::find(d.begin(), d.end(), "training.task_kwargs.depth"), d.end());
}

// Every committed config loads and validates; the Garg ones match the spec's table (§3.3), the
// RWKV-7 ones differ from them only in the model, the small linear one is the embedded default.
TEST(IclConfig, CommittedConfigs) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(configs_dir()))
        if (e.path().extension() == ".yaml") files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    ASSERT_GE(files.size(), 12u);
    for (const auto& f : files) EXPECT_NO_THROW(load_icl_config(configs_dir() + "/" + f)) << f;

    struct Row {
        const char* task;
        int64_t points_start, points_end, points_inc;
    };
    for (const Row& r :
         {Row{"linear_regression", 11, 41, 2}, Row{"sparse_linear_regression", 11, 41, 2},
          Row{"decision_tree", 26, 101, 5}, Row{"relu_2nn_regression", 26, 101, 5}}) {
        SCOPED_TRACE(r.task);
        const IclRunConfig g = load_icl_config(configs_dir() + "/garg_" + r.task + ".yaml");
        const TrainConfig& t = g.train;
        EXPECT_EQ(t.task.name, r.task);
        EXPECT_EQ(t.model.family, "transformer");
        EXPECT_EQ(t.model.n_dims, 20);
        EXPECT_EQ(t.model.n_positions, 101);
        EXPECT_EQ(t.model.n_embd, 256);
        EXPECT_EQ(t.model.n_layer, 12);
        EXPECT_EQ(t.model.n_head, 8);
        EXPECT_EQ(t.dims.start, 5);
        EXPECT_EQ(t.dims.end, 20);
        EXPECT_EQ(t.dims.inc, 1);
        EXPECT_EQ(t.dims.interval, 2000);
        EXPECT_EQ(t.points.start, r.points_start);
        EXPECT_EQ(t.points.end, r.points_end);
        EXPECT_EQ(t.points.inc, r.points_inc);
        EXPECT_EQ(t.points.interval, 2000);
        EXPECT_EQ(t.train_steps, 500001);
        EXPECT_DOUBLE_EQ(t.learning_rate, 1e-4);
        EXPECT_EQ(t.batch_size, 64);
        EXPECT_EQ(t.optimizer, "adam");
        EXPECT_EQ(t.weight_decay, 0);
        EXPECT_EQ(t.save_every_steps, 1000);
        EXPECT_EQ(t.num_tasks, 0);  // fresh functions every batch
        EXPECT_EQ(t.num_training_examples, 0);
        EXPECT_EQ(g.eval_prompts, 1280);
        EXPECT_TRUE(g.settings.empty());  // all of the task's evaluations
        if (std::string(r.task) == "sparse_linear_regression") {
            EXPECT_EQ(t.task.sparsity, 3);
        }
        if (std::string(r.task) == "decision_tree") {
            EXPECT_EQ(t.task.depth, 4);
        }
        if (std::string(r.task) == "relu_2nn_regression") {
            EXPECT_EQ(t.task.hidden, 100);
        }

        const IclRunConfig w = load_icl_config(configs_dir() + "/rwkv7_" + r.task + ".yaml");
        EXPECT_EQ(w.train.model.family, "rwkv7");
        EXPECT_EQ(w.train.model.n_embd, 256);
        EXPECT_EQ(w.train.model.n_layer, 12);
        EXPECT_EQ(w.train.model.head_size, 64);
        for (const auto& key : icl_config_differences(g, w))
            EXPECT_TRUE(key.starts_with("model.")) << key;

        const IclRunConfig s = load_icl_config(configs_dir() + "/small_" + r.task + ".yaml");
        EXPECT_LE(s.train.model.n_dims, 8);
        EXPECT_LE(s.train.train_steps, 2000);
    }
    EXPECT_EQ(icl_config_yaml(load_icl_config(configs_dir() + "/small_linear_regression.yaml")),
              icl_config_yaml(default_icl_config()));
}

// The RWKV-7 configs are "at a comparable size": parameter counts within 25% of the Transformer's
// (measured: 9,534,977 and 10,485,761, ratio 1.10).
TEST(IclConfig, Rwkv7ConfigsMatchTheTransformerSize) {
    const IclRunConfig g = load_icl_config(configs_dir() + "/garg_linear_regression.yaml");
    const IclRunConfig w = load_icl_config(configs_dir() + "/rwkv7_linear_regression.yaml");
    Rng r1(0, "model"), r2(0, "model");
    const double pg = static_cast<double>(IclModel(g.train.model, r1).num_parameters());
    const double pw = static_cast<double>(IclModel(w.train.model, r2).num_parameters());
    RecordProperty("transformer_params", std::to_string(pg));
    RecordProperty("rwkv7_params", std::to_string(pw));
    std::printf("parameters: transformer %.0f, rwkv7 %.0f (ratio %.3f)\n", pg, pw, pw / pg);
    EXPECT_GT(pw / pg, 0.75);
    EXPECT_LT(pw / pg, 1.25);
}

TEST(IclConfig, ParametrisedBaselineNames) {
    EXPECT_EQ(lasso_baseline_name(0.01), "lasso_alpha_0.01");
    EXPECT_EQ(lasso_baseline_name(1), "lasso_alpha_1");
    EXPECT_EQ(lasso_baseline_name(0.0001), "lasso_alpha_0.0001");
    EXPECT_EQ(tree_baseline_name(4), "tree_depth_4");
    EXPECT_EQ(tree_baseline_name(-1), "tree");
    // lasso_alpha_A is lasso with alpha A; tree_depth_D is tree with max depth D.
    Rng rng(3, "xs");
    const int64_t B = 4, n = 12, d = 5;
    std::vector<double> xv(static_cast<size_t>(B * n * d)), yv(static_cast<size_t>(B * n));
    rng.fill_normal(xv);
    rng.fill_normal(yv);
    const Tensor xs = Tensor::from(Shape{B, n, d}, xv, DType::f64);
    const Tensor ys = Tensor::from(Shape{B, n}, yv, DType::f64);
    BaselineOptions o;
    o.lasso_alpha = 0.1;
    EXPECT_EQ(make_baseline("lasso_alpha_0.1")->predict(xs, ys).to_vector(),
              make_baseline("lasso", o)->predict(xs, ys).to_vector());
    EXPECT_NE(make_baseline("lasso_alpha_1")->predict(xs, ys).to_vector(),
              make_baseline("lasso_alpha_0.001")->predict(xs, ys).to_vector());
    o.tree_max_depth = 2;
    EXPECT_EQ(make_baseline("tree_depth_2")->predict(xs, ys).to_vector(),
              make_baseline("tree", o)->predict(xs, ys).to_vector());
    expect_error([] { make_baseline("lasso_alpha_"); }, {"'lasso_alpha_'", "not a number"});
    expect_error([] { make_baseline("lasso_alpha_0.1x"); }, {"not a number"});
    expect_error([] { make_baseline("lasso_alpha_-1"); }, {"alpha must be > 0"});
    expect_error([] { make_baseline("tree_depth_0"); }, {"depth must be >= 1"});
    expect_error([] { make_baseline("tree_depth_2.5"); }, {"not a number"});
    expect_error([] { make_baseline("lasso0.1"); },
                 {"unknown baseline 'lasso0.1'", "lasso_alpha_<A>", "tree_depth_<D>"});
}

}  // namespace
}  // namespace goose::icl
