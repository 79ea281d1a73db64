// `goose bench icl-train` end to end: a short Goose-only run prints the table with the models'
// parameter counts; bad options are clear errors.
#include <gtest/gtest.h>

#include "common/run_cli.h"

namespace goose::test {
namespace {

TEST(IclBenchCli, GooseOnlyRunPrintsTheTable) {
    const CliResult r =
        run_goose("bench icl-train --no-peer --family all --steps 1 --warmup 0 --threads 1");
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* want : {"goose s/step", "twin s/step", "goose/twin", "rwkv7", "201089",
                             "transformer", "151937", "lstm", "100289", "not run (--no-peer)"})
        EXPECT_NE(r.out.find(want), std::string::npos) << want << " missing in:\n" << r.out;
}

TEST(IclBenchCli, BadOptionsAreClearErrors) {
    const CliResult fam = run_goose("bench icl-train --no-peer --family gru");
    EXPECT_NE(fam.code, 0);
    EXPECT_NE(fam.out.find("gru"), std::string::npos) << fam.out;
    EXPECT_NE(fam.out.find("rwkv7"), std::string::npos) << fam.out;
    const CliResult steps = run_goose("bench icl-train --no-peer --steps 0");
    EXPECT_NE(steps.code, 0);
    EXPECT_NE(steps.out.find("--steps"), std::string::npos) << steps.out;
}

}  // namespace
}  // namespace goose::test
