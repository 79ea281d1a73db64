// ICL run configurations: the YAML schema of configs/icl/*.yaml and of a run's config.yaml,
// loading with validation, `--set key.path=value` overrides and writing back (yaml-cpp).
//
// The schema follows Garg et al.'s configs (model / training / curriculum), resolved: no
// inheritance, one file holds everything. Keys and their defaults (R = required):
//
//   model:
//     family: rwkv7           R  rwkv7 | transformer | lstm
//     n_dims: 20              R  d, the width of the x tokens
//     n_positions: 101        R  the most (x, y) points a prompt may have
//     n_embd: 64                 width C
//     n_layer: 3
//     n_head: 2                  transformer only (C % n_head == 0)
//     head_size: 16              rwkv7 only (C % head_size == 0)
//   training:
//     task: linear_regression R  linear_regression | sparse_linear_regression |
//                                noisy_linear_regression | linear_classification |
//                                quadratic_regression | relu_2nn_regression | decision_tree
//     task_kwargs: {}            only the task's own keys (defaults as TaskConfig):
//                                  scale            linear, sparse, noisy, quadratic, relu
//                                  sparsity, valid_coords (null = d)     sparse
//                                  noise_std, renormalize_ys             noisy
//                                  hidden_layer_size                     relu_2nn
//                                  depth                                 decision_tree
//     batch_size: 64
//     learning_rate: 0.0001
//     optimizer: adam            adam | adamw
//     weight_decay: 0
//     train_steps: 500001     R  >= 1
//     save_every_steps: 1000     checkpoint.pth (the resume point) every this many steps
//     log_every_steps: 100       train_log.csv rows
//     seed: 0
//     num_tasks: null            null / 0: fresh functions every batch; N: a pool of N
//     num_training_examples: null  null / 0: fresh data; N: seeded finite training set
//     curriculum:             R
//       dims:   {start: 5,  end: 20, inc: 1, interval: 2000}   all four keys required
//       points: {start: 11, end: 41, inc: 2, interval: 2000}
//   eval:
//     prompts: 1280              evaluation prompts per setting (in batches of batch_size)
//     baselines: default         default (default_baselines(task)) or a list of names
//     settings: [standard]       a list of eval_settings(task) names, or all
//
// Errors are goose::Error naming the source (file or "embedded"), the key path and, for unknown
// keys, the valid keys at that level; wrong types name the key and the expected type; unknown
// task / family / baseline / setting names list the valid ones; inconsistent sizes (sparsity >
// n_dims, curriculum start < 1, end < start, dims.end > model.n_dims, points.end >
// model.n_positions, ...) name both keys and values.
#pragma once
#include <string>
#include <vector>

#include "goose/icl/train.h"

namespace goose::icl {

struct IclRunConfig {
    TrainConfig train;
    int64_t eval_prompts = 1280;
    std::vector<std::string> baselines;                // empty: default_baselines(task)
    std::vector<std::string> settings = {"standard"};  // empty: all of eval_settings(task)
};

// Parses YAML text (source names it in error messages), applies the overrides in order, each
// "a.b.c=VALUE" with VALUE parsed as YAML (so lists work: eval.baselines=[least_squares,knn3]),
// converts and validates.
IclRunConfig parse_icl_config(const std::string& yaml_text, const std::string& source,
                              const std::vector<std::string>& overrides = {});

// parse_icl_config on a file; an unreadable file is goose::Error naming the path.
IclRunConfig load_icl_config(const std::string& path,
                             const std::vector<std::string>& overrides = {});

// The full configuration as YAML (every key explicit, schema order), written with yaml-cpp's
// emitter; parse_icl_config(icl_config_yaml(c)) == c.
std::string icl_config_yaml(const IclRunConfig& cfg);

// The checks described above (key paths in the messages), then TrainConfig::validate.
void validate_icl_config(const IclRunConfig& cfg, const std::string& source = "config");

// The task_kwargs keys a task accepts (task names as task_names()).
std::vector<std::string> task_kwarg_names(const std::string& task);

// Keys (dotted paths) whose values differ between two configurations, in schema order.
std::vector<std::string> icl_config_differences(const IclRunConfig& a, const IclRunConfig& b);

}  // namespace goose::icl
