// goose bench decode end to end on tiny models (random weights and a checkpoint): every table
// the issue asks for is printed; bad options are clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "common/run_cli.h"
#include "goose/models/rwkv7_checkpoint.h"

namespace goose {
namespace {

using Result = test::CliResult;
Result run(const std::string& args) { return test::run_goose(args); }

constexpr const char* kTiny =
    "bench decode --layers 2 --dim 64 --head 16 --vocab 300 --prompt-lengths 4,32 --batch 1,3 "
    "--tokens 3 --accuracy-tokens 8 --threads 1";

TEST(BenchDecodeCli, PrintsEveryTable) {
    const Result r = run(kTiny);
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* part : {"copy bandwidth", "MB/token", "tokens/s", "GB/s", "ratio", "B=3",
                             "T=32", "max|dlogit|", "top-1"})
        EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
    // one decode row per format, with a bandwidth ratio
    for (const char* f : {"f32", "bf16", "int8"})
        EXPECT_TRUE(std::regex_search(r.out, std::regex(std::string("\\n") + f +
                                                        " +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +"
                                                        "[0-9.]+ +[0-9]+%")))
            << f << "\n" << r.out;
    // int8 against f32: a small, non-zero difference
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex("\\nint8 +([0-9.]+) +([0-9.]+) +([0-9.]+)%")))
        << r.out;
    EXPECT_GT(std::stod(m[1]), 0.0);
    EXPECT_LT(std::stod(m[1]), 0.1 * std::stod(m[2]));
}

TEST(BenchDecodeCli, RunsOnACheckpoint) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("goose_bench_decode_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    models::Rwkv7 m(models::Rwkv7Config::with_defaults(90, 1, 32, 16));
    Rng rng(3);
    m.init_official(rng);
    const std::string path = (dir / "m.pth").string();
    models::save_rwkv7(m, path, DType::bf16);
    const Result r = run("bench decode --model " + path +
                         " --formats bf16 --head-format f32 --prompt-lengths 8 --batch 2 "
                         "--tokens 2 --accuracy-tokens 4 --threads 1");
    std::filesystem::remove_all(dir);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("L1 C32 head 16 V90"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("bf16 (head f32)"), std::string::npos) << r.out;
}

TEST(BenchDecodeCli, BadOptionsAreClearErrors) {
    Result r = run("bench decode --formats fp8 --layers 1 --dim 32 --head 16 --vocab 50");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("fp8"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("f32, bf16, int8"), std::string::npos) << r.out;
    r = run("bench decode --prompt-lengths 0 --layers 1 --dim 32 --head 16 --vocab 50");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("prompt length 0"), std::string::npos) << r.out;
    r = run("bench decode --model /nonexistent/m.pth");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("/nonexistent/m.pth"), std::string::npos) << r.out;
    r = run("bench rwkv7-decode");  // replaced by bench decode
    EXPECT_NE(r.code, 0);
}

}  // namespace
}  // namespace goose
