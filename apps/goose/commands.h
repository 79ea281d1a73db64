// Registration of the CLI subcommands, one function per subcommand family (one file each).
#pragma once
#include <CLI/CLI.hpp>

namespace goose::cli {

void add_demo(CLI::App& app);   // goose demo
void add_bench(CLI::App& app);  // goose bench ops | rwkv7-train | decode
void add_model_commands(CLI::App& app);  // goose info, goose logits
void add_icl(CLI::App& app);             // goose icl [train | eval | plot | compare]
void add_tokenize(CLI::App& app);        // goose tokenize
void add_generate(CLI::App& app);        // goose generate, goose chat
void add_serve(CLI::App& app);           // goose serve, goose bench serve (after add_bench)

}  // namespace goose::cli
