// goose info / goose logits: inspect an RWKV-7 checkpoint and compute logits.
#include "commands.h"
#include "goose/infer/logits.h"

namespace goose::cli {

void add_model_commands(CLI::App& app) {
    auto path = std::make_shared<std::string>();
    auto* info = app.add_subcommand("info", "architecture, parameter count and dtype of a checkpoint");
    info->add_option("model", *path, "RWKV-7 checkpoint (.pth or .safetensors)")->required();
    info->callback([path] { infer::run_info(*path); });

    auto cfg = std::make_shared<infer::LogitsConfig>();
    auto* logits = app.add_subcommand("logits", "logits of a token sequence as a NumPy .npy [T, V] float32");
    logits->add_option("--model", cfg->model, "RWKV-7 checkpoint (.pth or .safetensors)")->required();
    logits->add_option("--tokens", cfg->tokens, "token ids, e.g. \"1 2 3\"")->required();
    logits->add_option("--out", cfg->out, "output .npy file")->required();
    logits->add_flag("--rnn", cfg->rnn, "token by token (RNN mode) instead of parallel mode");
    logits->callback([cfg] { infer::run_logits(*cfg); });
}

}  // namespace goose::cli
