// goose bench ...: benchmarks that print our figure beside a peer or the hardware limit.
#include "commands.h"

namespace goose::cli {

void add_bench(CLI::App& app) {
    auto* bench = app.add_subcommand("bench", "benchmarks (figure, peer or hardware limit, ratio)");
    bench->require_subcommand(1);
    auto* ops = bench->add_subcommand("ops", "GFLOP/s of the models' matmul shapes vs measured peak");
    ops->callback([] {});
}

}  // namespace goose::cli
