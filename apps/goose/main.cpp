// goose: the command-line tool. Thin: each subcommand parses its options into a config struct
// and calls one library function. goose::Error is printed without a stack trace, exit code 1.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.h"
#include "goose/core/error.h"

int main(int argc, char** argv) {
    CLI::App app{"goose: RWKV-7 engine and in-context-learning lab"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "goose 0.1.0");
    goose::cli::add_icl(app);
    goose::cli::add_demo(app);
    goose::cli::add_bench(app);
    goose::cli::add_model_commands(app);
    goose::cli::add_tokenize(app);
    goose::cli::add_generate(app);
    goose::cli::add_serve(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const goose::Error& e) {
        std::fprintf(stderr, "goose: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
