// The CLI end to end: help lists the subcommands, the demo's loss falls, bad input gives a
// clear error and a non-zero exit code.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>

#include "common/run_cli.h"

namespace {

using Result = goose::test::CliResult;
Result run(const std::string& args) { return goose::test::run_goose(args); }

TEST(Cli, HelpListsSubcommands) {
    const Result r = run("--help");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("demo"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("bench"), std::string::npos) << r.out;
}

TEST(Cli, DemoLossFalls) {
    const Result r = run("demo --steps 60 --batch 8");
    ASSERT_EQ(r.code, 0) << r.out;
    std::smatch m1, m2;
    ASSERT_TRUE(std::regex_search(r.out, m1, std::regex("first 10% steps\\s+([0-9.]+)"))) << r.out;
    ASSERT_TRUE(std::regex_search(r.out, m2, std::regex("last 10% steps\\s+([0-9.]+)"))) << r.out;
    const double first = std::stod(m1[1]), last = std::stod(m2[1]);
    EXPECT_LT(last, first - 0.5) << r.out;  // from ~ln(16) = 2.77 down by well over half a nat
}

TEST(Cli, BadInputIsAClearError) {
    Result r = run("demo --steps 0");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("steps"), std::string::npos) << r.out;
    r = run("no-such-command");
    EXPECT_NE(r.code, 0);
    r = run("bench ops --threads -3");
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(r.out.find("Aborted"), std::string::npos) << r.out;
}

TEST(Cli, NanIsNotANumberAnOptionTakes) {  // CLI11's range checks alone let "nan" through
    for (const char* args : {"bench train --grad-clip nan", "bench train --grad-clip 1e400",
                             "demo --lr nan"}) {
        const Result r = run(args);
        EXPECT_NE(r.code, 0) << args;
        EXPECT_NE(r.out.find("not a finite number"), std::string::npos) << args << ": " << r.out;
    }
}

TEST(Cli, BenchOpsQuickRuns) {
    const Result r = run("bench ops --quick --threads 1");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("GFLOP/s"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("%peak"), std::string::npos) << r.out;
}

}  // namespace
