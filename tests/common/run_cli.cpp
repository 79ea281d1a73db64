// Running the CLI from tests.
#include "common/run_cli.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace goose::test {

CliResult run_goose(const std::string& args) {
    const char* bin = std::getenv("GOOSE_BIN");
    const std::string cmd = std::string(bin ? bin : "./goose") + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return {-1, "popen failed"};
    std::string out;
    std::array<char, 4096> buf;
    while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
    const int status = pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, out};
}

}  // namespace goose::test
