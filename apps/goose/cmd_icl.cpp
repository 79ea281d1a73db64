// goose icl [train | eval | plot | compare]: in-context learning of function classes, beside the
// classical baselines. Without a subcommand: the embedded default (a few minutes on 2 cores).
#include <filesystem>
#include <sstream>

#include "commands.h"
#include "goose/icl/compare.h"
#include "goose/icl/run.h"

namespace goose::cli {
namespace {

// "a,b,c" -> {"a", "b", "c"} (empty pieces dropped).
std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string piece;
    while (std::getline(in, piece, ','))
        if (!piece.empty()) out.push_back(piece);
    return out;
}

// The options of `goose icl` itself belong to the embedded default: given before a subcommand
// they would be ignored, so they are an error there.
void reject_default_options(const CLI::App* icl, const std::string& sub) {
    for (const char* name :
         {"--out", "--steps", "--family", "--eval-prompts", "--seed", "--resume"})
        if (icl->count(name) > 0)
            fail(
                "goose icl {}: {} before the subcommand belongs to the embedded default (`goose "
                "icl` alone); give the subcommand's own options after it (goose icl {} --help)",
                sub, name, sub);
}

void add_icl_train(CLI::App* icl) {
    struct Opts {
        std::string config, out;
        std::vector<std::string> sets;
        bool resume = false, overwrite = false;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = icl->add_subcommand(
        "train", "train from a config file (configs/icl/*.yaml), then evaluate and plot");
    cmd->add_option("config", o->config, "the configuration (YAML)")->required();
    cmd->add_option("--set", o->sets,
                    "override one key, e.g. --set training.train_steps=1000 "
                    "(repeatable; the value is YAML)")
        ->allow_extra_args(false);
    cmd->add_option("--out", o->out, "run directory (default: runs/icl/<config file stem>)");
    auto* resume = cmd->add_flag("--resume", o->resume,
                                 "continue the run directory's checkpoint (an interrupted run)");
    cmd->add_flag("--overwrite", o->overwrite, "start again over an existing run directory")
        ->excludes(resume);
    cmd->callback([icl, o] {
        reject_default_options(icl, "train");
        const icl::IclRunConfig cfg = icl::load_icl_config(o->config, o->sets);
        const std::string out =
            o->out.empty()
                ? (std::filesystem::path("runs/icl") / std::filesystem::path(o->config).stem())
                      .string()
                : o->out;
        icl::check_run_dir(cfg, out, o->resume, o->overwrite);
        icl::run_icl(cfg, out, o->resume);
    });
}

void add_icl_eval(CLI::App* icl) {
    struct Opts {
        std::string run_dir, ood;
        int64_t prompts = 0;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = icl->add_subcommand(
        "eval",
        "re-evaluate a trained run directory beside the baselines (rewrites metrics.json, "
        "curves.csv, plots)");
    cmd->add_option("run_dir", o->run_dir, "the run directory")->required();
    cmd->add_option("--ood", o->ood,
                    "out-of-distribution settings besides standard: all, or SETTING,SETTING,... "
                    "(default: the config's eval.settings)");
    cmd->add_option("--prompts", o->prompts, "prompts per setting (default: the config's)")
        ->check(CLI::Range(int64_t(1), int64_t(10000000)));
    cmd->callback([icl, o] {
        reject_default_options(icl, "eval");
        icl::EvalRunOptions opts;
        opts.ood = split_commas(o->ood);
        opts.prompts = o->prompts;
        icl::evaluate_run(o->run_dir, opts);
    });
}

void add_icl_plot(CLI::App* icl) {
    auto dir = std::make_shared<std::string>();
    auto* cmd =
        icl->add_subcommand("plot", "draw RUN_DIR/metrics.json as PNGs in the run directory");
    cmd->add_option("run_dir", *dir, "the run directory")->required();
    cmd->callback([icl, dir] {
        reject_default_options(icl, "plot");
        icl::plot_run(*dir);
    });
}

void add_icl_compare(CLI::App* icl) {
    struct Opts {
        icl::CompareOptions c;
        std::string ks;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = icl->add_subcommand("compare",
                                    "several run directories side by side: one table and one plot");
    cmd->add_option("run_dirs", o->c.run_dirs, "run directories")->required();
    cmd->add_option("--out", o->c.out_dir, "where compare.csv, compare.json and the plot go")
        ->capture_default_str();
    cmd->add_option("--k", o->ks,
                    "in-context example counts of the table, e.g. 1,5,10 "
                    "(default: 1, d/2, d, n-1 of the first run)");
    cmd->add_option("--setting", o->c.setting, "evaluation setting")->capture_default_str();
    cmd->callback([icl, o] {
        reject_default_options(icl, "compare");
        for (const auto& k : split_commas(o->ks)) {
            try {
                size_t used = 0;
                o->c.ks.push_back(std::stoll(k, &used));
                if (used != k.size()) throw std::invalid_argument(k);
            } catch (const std::exception&) {
                fail("icl compare: --k: '{}' is not an integer", k);
            }
        }
        icl::compare_runs(o->c);
    });
}

}  // namespace

void add_icl(CLI::App& app) {
    auto cfg = std::make_shared<icl::IclRunConfig>(icl::default_icl_config());
    auto out = std::make_shared<std::string>("runs/icl");
    auto resume = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(
        "icl",
        "in-context learning of function classes beside the classical baselines; without "
        "a subcommand: train the embedded default (RWKV-7 on linear regression, d=5), "
        "evaluate, write a run directory");
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
    add_icl_train(cmd);
    add_icl_eval(cmd);
    add_icl_plot(cmd);
    add_icl_compare(cmd);
    cmd->callback([cmd, cfg, out, resume] {
        if (!cmd->get_subcommands().empty()) return;  // a subcommand ran instead
        icl::validate_icl_config(*cfg, "embedded default");
        icl::run_icl(*cfg, *out, *resume);
    });
}

}  // namespace goose::cli
