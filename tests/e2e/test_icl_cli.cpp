// goose icl end to end with a short run: the run directory holds every file, metrics.json has
// the shape, a resumed run continues, bad options are clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "common/run_cli.h"
#include "goose/icl/eval.h"

namespace goose {
namespace {

TEST(IclCli, ShortRunWritesTheRunDirectory) {
    const auto dir = std::filesystem::temp_directory_path() / ("goose_icl_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    const auto r = test::run_goose("icl --steps 8 --eval-prompts 64 --out " + dir.string());
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* f : {"config.yaml", "train_log.csv", "checkpoint.pth", "metrics.json", "curves.csv"})
        EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
    EXPECT_NE(r.out.find("least_squares"), std::string::npos) << r.out;
    const icl::EvalResults res = icl::read_metrics_json((dir / "metrics.json").string());
    ASSERT_TRUE(res.count("standard"));
    for (const char* name : {"rwkv7", "least_squares", "knn3", "averaging", "zero"}) {
        ASSERT_TRUE(res.at("standard").count(name)) << name;
        EXPECT_EQ(res.at("standard").at(name).k.size(), 11u) << name;
    }
    // Least squares is exact from k = d = 5 on (noiseless linear regression).
    EXPECT_LT(res.at("standard").at("least_squares").mean[6], 1e-6);
    const auto again = test::run_goose("icl --steps 12 --eval-prompts 64 --resume --out " + dir.string());
    ASSERT_EQ(again.code, 0) << again.out;
    EXPECT_NE(again.out.find("after 12 steps"), std::string::npos) << again.out;
    std::filesystem::remove_all(dir);
}

TEST(IclCli, BadOptionsAreClearErrors) {
    auto r = test::run_goose("icl --family mamba2 --steps 1 --out " +
                             (std::filesystem::temp_directory_path() / "goose_icl_bad").string());
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("rwkv7"), std::string::npos) << r.out;  // lists the valid families
    r = test::run_goose("icl --steps 0");
    EXPECT_NE(r.code, 0);
}

}  // namespace
}  // namespace goose
