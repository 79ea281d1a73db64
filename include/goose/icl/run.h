// `goose icl`: train a model on a function class, evaluate it beside the classical baselines,
// and leave everything in a run directory: config.yaml, train_log.csv, checkpoint.pth,
// metrics.json, curves.csv and PNG plots (when matplotlib is installed). Also the run
// directory's later life: re-evaluation, plots.
#pragma once
#include <string>
#include <vector>

#include "goose/icl/config.h"
#include "goose/icl/eval.h"
#include "goose/icl/train.h"

namespace goose::icl {

// The embedded default: RWKV-7 (L3 C64, head 16) on noiseless linear regression, d = 5,
// 11 points, sized to train in a few minutes on 2 cores (configs/icl/small_linear_regression.yaml
// holds the same configuration).
IclRunConfig default_icl_config();

// Guards out_dir before training. When it holds a checkpoint: without resume and overwrite it is
// goose::Error (naming the directory, the checkpoint's step and both flags); with resume the
// directory's config.yaml must agree with cfg except in training.train_steps,
// training.save_every_steps, training.log_every_steps and eval.* (else goose::Error listing the
// differing keys). Nothing to check when there is no checkpoint.
void check_run_dir(const IclRunConfig& cfg, const std::string& out_dir, bool resume,
                   bool overwrite);

// Trains (or resumes) into out_dir, writes config.yaml, evaluates, writes the files, prints the
// error-vs-k table. An existing run is continued with resume (check_run_dir's rules), else
// started again.
EvalResults run_icl(const IclRunConfig& cfg, const std::string& out_dir, bool resume);

// The configuration of a run directory (RUN_DIR/config.yaml, validated). A missing directory or
// file is goose::Error naming the path.
IclRunConfig load_run_config(const std::string& run_dir);

struct EvalRunOptions {
    // Empty: the config's eval.settings. {"all"}: every setting of the task. Otherwise
    // "standard" plus these (unknown ones are goose::Error listing the valid settings).
    std::vector<std::string> ood;
    int64_t prompts = 0;  // 0: the config's eval.prompts
};

// Rebuilds the model from RUN_DIR/config.yaml and RUN_DIR/checkpoint.pth, evaluates it beside
// the baselines, rewrites metrics.json, curves.csv and the plots, prints the table.
EvalResults evaluate_run(const std::string& run_dir, const EvalRunOptions& options = {});

// The error-vs-k table of every setting (rows subsampled to about 40 for long prompts).
void print_results_table(const EvalResults& results);

// python/plot_icl.py on RUN_DIR/metrics.json into RUN_DIR; prints the PNG paths. goose::Error
// when metrics.json is missing or unreadable, matplotlib is not installed, or the script fails.
void plot_run(const std::string& run_dir);

// Whether the plotting Python ($GOOSE_PYTHON, else /usr/bin/python3) has matplotlib.
bool plots_available();

// Runs python/<script> of the source tree with args through the plotting Python; returns its
// exit status, its output in *output when given.
int run_python_script(const std::string& script, const std::vector<std::string>& args,
                      std::string* output = nullptr);

}  // namespace goose::icl
