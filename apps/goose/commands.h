// Registration of the CLI subcommands, one function per subcommand family (one file each).
#pragma once
#include <CLI/CLI.hpp>
#include <cmath>
#include <exception>
#include <string>

namespace goose::cli {

void add_demo(CLI::App& app);   // goose demo
void add_bench(CLI::App& app);  // goose bench ops | rwkv7-train | decode
void add_model_commands(CLI::App& app);  // goose info, goose logits
void add_icl(CLI::App& app);             // goose icl [train | eval | plot | compare]
void add_tokenize(CLI::App& app);        // goose tokenize
void add_generate(CLI::App& app);        // goose generate, goose chat
void add_serve(CLI::App& app);           // goose serve, goose bench serve (after add_bench)

// CLI11's Range and PositiveNumber let "nan" through (every comparison with NaN is false):
// options read as floating point take this check too.
inline const CLI::Validator kFinite(
    [](std::string& text) -> std::string {
        try {
            size_t used = 0;
            const double v = std::stod(text, &used);
            if (used == text.size() && std::isfinite(v)) return {};
        } catch (const std::exception&) {
        }
        return "not a finite number: " + text;
    },
    "FINITE");

}  // namespace goose::cli
