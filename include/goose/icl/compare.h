// `goose icl compare`: several run directories side by side, one table and one plot.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "goose/icl/eval.h"

namespace goose::icl {

struct CompareOptions {
    std::vector<std::string> run_dirs;  // at least one
    std::string out_dir = "runs/icl/compare";
    std::vector<int64_t> ks;  // empty: 1, d/2, d and n-1 of the first run
    std::string setting = "standard";
};

// One row of the comparison: a run's model, or a baseline.
struct CompareRow {
    std::string label;    // models: "RUN (FAMILY)", RUN the directory name (the path when two
                          // runs share it); baselines: the name, plus
                          // " [TASK d=D]" when the runs do not all share task, d and n
    std::string kind;     // "model" or "baseline"
    std::string run_dir;  // the run it comes from
    std::string task;
    int64_t n_dims = 0;
    Curve curve;
};

// Reads every RUN_DIR/config.yaml and metrics.json (goose::Error naming the path when a
// directory or file is missing or unreadable, or a run lacks the setting or its model's curve).
// Rows: each run's model, then the baselines (not "zero") of the first run of each distinct
// (task, d, n) group. Prints the table (mean error at each k; "-" where a run's prompts are
// shorter), writes OUT/compare.csv (label,kind,run_dir,task,n_dims,k=K...) and
// OUT/compare.json ({"setting", "ks", "rows": [{label, kind, run_dir, task, n_dims, k, mean,
// lo, hi}]}) atomically and, when matplotlib is installed, OUT/compare_<setting>.png through
// python/compare_icl.py.
std::vector<CompareRow> compare_runs(const CompareOptions& options);

}  // namespace goose::icl
