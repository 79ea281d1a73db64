// goose bench ...: benchmarks that print our figure beside a peer or the hardware limit.
#include "commands.h"
#include "goose/bench/ops_bench.h"

namespace goose::cli {

void add_bench(CLI::App& app) {
    auto* bench = app.add_subcommand("bench", "benchmarks (our figure, the peer or hardware limit, the ratio)");
    bench->require_subcommand(1);
    auto cfg = std::make_shared<bench::OpsBenchConfig>();
    auto* ops = bench->add_subcommand("ops", "GFLOP/s of the models' matmul shapes vs the measured peak");
    ops->add_option("--threads", cfg->threads, "threads (default: all)")->check(CLI::Range(0, 1024));
    ops->add_flag("--quick", cfg->quick, "fewer repetitions");
    ops->add_option("--json", cfg->json_out, "also write the results as JSON");
    ops->callback([cfg] { bench::run_ops_bench(*cfg); });
}

}  // namespace goose::cli
