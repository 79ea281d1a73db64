// Runs the goose binary (GOOSE_BIN, else ./goose) with arguments; stdout and stderr together.
#pragma once
#include <string>

namespace goose::test {

struct CliResult {
    int code;         // exit status
    std::string out;  // stdout + stderr
};

CliResult run_goose(const std::string& args);

}  // namespace goose::test
