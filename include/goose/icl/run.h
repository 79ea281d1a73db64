// `goose icl`: train a model on a function class, evaluate it beside the classical baselines,
// and leave everything in a run directory: config.yaml, train_log.csv, checkpoint.pth,
// metrics.json, curves.csv and PNG plots (when matplotlib is installed).
#pragma once
#include <string>
#include <vector>

#include "goose/icl/eval.h"
#include "goose/icl/train.h"

namespace goose::icl {

struct IclRunConfig {
    TrainConfig train;
    int64_t eval_prompts = 1280;
    std::vector<std::string> baselines;  // empty: default_baselines(task)
    std::vector<std::string> settings = {"standard"};
};

// The embedded default: RWKV-7 (L3 C64, head 16) on noiseless linear regression, d = 5,
// 11 points, sized to train in a few minutes on 2 cores.
IclRunConfig default_icl_config();

// Trains (or resumes) into out_dir, evaluates, writes the files, prints the error-vs-k table.
EvalResults run_icl(const IclRunConfig& cfg, const std::string& out_dir, bool resume);

}  // namespace goose::icl
