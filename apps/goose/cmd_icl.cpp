// goose icl: train a model in context on a function class and compare it with the baselines.
#include "commands.h"
#include "goose/icl/run.h"

namespace goose::cli {

void add_icl(CLI::App& app) {
    auto cfg = std::make_shared<icl::IclRunConfig>(icl::default_icl_config());
    auto out = std::make_shared<std::string>("runs/icl");
    auto resume = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(
        "icl", "in-context learning of linear regression: train (embedded default), evaluate "
               "beside least squares, 3-NN and averaging, write a run directory");
    cmd->add_option("--out", *out, "run directory")->capture_default_str();
    cmd->add_option("--steps", cfg->train.train_steps, "training steps")
        ->check(CLI::Range(int64_t(1), int64_t(10000000)))
        ->capture_default_str();
    cmd->add_option("--family", cfg->train.model.family, "backbone: rwkv7, transformer or lstm")
        ->capture_default_str();
    cmd->add_option("--eval-prompts", cfg->eval_prompts, "prompts per evaluation")
        ->check(CLI::Range(int64_t(1), int64_t(1000000)))
        ->capture_default_str();
    cmd->add_option("--seed", cfg->train.seed, "random seed")->capture_default_str();
    cmd->add_flag("--resume", *resume, "continue from the run directory's checkpoint");
    cmd->callback([cfg, out, resume] { icl::run_icl(*cfg, *out, *resume); });
}

}  // namespace goose::cli
