// The ICL lab's training loop (spec icl_function_classes §3.2): curriculum-driven batches of
// fresh (or pooled, or finite seeded) functions, MSE (BCE for classification), Adam, a CSV log,
// a live progress line and resumable single-file checkpoints.
#pragma once
#include <cstdint>
#include <string>

#include "goose/icl/curriculum.h"
#include "goose/icl/model.h"
#include "goose/icl/tasks.h"

namespace goose::icl {

struct TrainConfig {
    TaskConfig task;
    ModelConfig model;  // model.n_dims is the task's d
    CurriculumSchedule dims, points;
    int64_t batch_size = 64;
    int64_t train_steps = 0;
    double learning_rate = 1e-4;
    std::string optimizer = "adam";  // "adam" or "adamw" (both decoupled decay when > 0)
    double weight_decay = 0;
    int64_t save_every_steps = 1000;
    int64_t log_every_steps = 100;
    uint64_t seed = 0;
    int64_t num_training_examples = 0;  // N > 0: each step draws B distinct seeds of [0, N)
    int64_t num_tasks = 0;              // > 0: a pool of that many functions
    bool show_progress = true;          // the live line on stderr

    // goose::Error naming the field.
    void validate() const;
};

struct TrainResult {
    double final_loss = 0;  // the loss of the last step run (NaN when no step ran)
    int64_t steps = 0;      // steps done in total (resumed ones included)
    double seconds = 0;     // wall time of this call
};

// Trains into run_dir (created if missing): run_dir/checkpoint.pth every save_every_steps and
// at the end ("model.<param>", "optim.<adam state>", "meta.step", "meta.seconds"), and
// run_dir/train_log.csv (step, loss, excess_loss, n_dims, n_points, lr, seconds) at steps
// 0, log_every, 2·log_every, ... and the last. With resume and an existing checkpoint, training
// continues from it and draws exactly what an uninterrupted run would: step s's data come from
// Rng(seed, "data").fork(s), the model from Rng(seed, "model"), a pool from Rng(seed, "pool").
// Without resume an existing run is overwritten.
TrainResult train(const TrainConfig& cfg, const std::string& run_dir, bool resume);

// The least-squares baseline of §3.2: (1/n) Σ_{i<n} max(d - i, 0).
double least_squares_baseline(int64_t n_dims, int64_t n_points);

}  // namespace goose::icl
