// goose demo: trains a tiny model end to end and prints its falling loss.
#include "commands.h"
#include "goose/demo.h"

namespace goose::cli {

void add_demo(CLI::App& app) {
    auto cfg = std::make_shared<DemoConfig>();
    auto* cmd = app.add_subcommand("demo", "train a tiny Transformer end to end and print its falling loss");
    cmd->add_option("--steps", cfg->steps, "training steps")->check(CLI::Range(1, 1000000));
    cmd->add_option("--batch", cfg->batch, "sequences per step")->check(CLI::Range(1, 4096));
    cmd->add_option("--lr", cfg->lr, "peak learning rate")->check(kFinite)->check(CLI::PositiveNumber);
    cmd->add_option("--seed", cfg->seed, "random seed");
    cmd->callback([cfg] { run_demo(*cfg); });
}

}  // namespace goose::cli
