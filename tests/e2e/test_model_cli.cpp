// goose info / goose logits end to end on a small checkpoint written by Goose (pth and
// safetensors with HF names): parallel and RNN logits agree, bad input is a clear error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/run_cli.h"
#include "goose/io/atomic_file.h"
#include "goose/io/npy.h"
#include "goose/models/rwkv7_checkpoint.h"

namespace goose {
namespace {

using Result = test::CliResult;
Result run(const std::string& args) { return test::run_goose(args); }

class ModelCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("goose_cli_" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        models::Rwkv7 m(models::Rwkv7Config::with_defaults(50, 2, 64, 32));
        Rng rng(5);
        m.init_official(rng);
        // Make the zero-initialised matrices non-trivial so that logits depend on everything.
        for (auto& [n, p] : m.named_parameters())
            p.value_mut().copy_(Tensor::randn(p.shape(), rng, DType::f32, 0, 0.1));
        models::save_rwkv7(m, path("m.pth"), DType::f32);
        models::save_rwkv7(m, path("m.safetensors"), DType::bf16, /*hf_names=*/true);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string path(const std::string& n) const { return (dir_ / n).string(); }
    std::filesystem::path dir_;
};

TEST_F(ModelCli, InfoDescribesTheModel) {
    Result r = run("info " + path("m.pth"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("L2 C64, 2 heads of 32, vocab 50"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("f32"), std::string::npos) << r.out;
    r = run("info " + path("m.safetensors"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("Hugging Face"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("bf16"), std::string::npos) << r.out;
}

TEST_F(ModelCli, ParallelAndRnnLogitsAgree) {
    Result a = run("logits --model " + path("m.pth") + " --tokens \"3 1 4 1 5 9 2 6\" --out " + path("a.npy"));
    ASSERT_EQ(a.code, 0) << a.out;
    Result b = run("logits --rnn --model " + path("m.pth") + " --tokens 3,1,4,1,5,9,2,6 --out " + path("b.npy"));
    ASSERT_EQ(b.code, 0) << b.out;
    const Tensor la = io::load_npy(path("a.npy")), lb = io::load_npy(path("b.npy"));
    ASSERT_EQ(la.shape(), (Shape{8, 50}));
    const auto va = la.to_vector(), vb = lb.to_vector();
    double worst = 0;
    for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::abs(va[i] - vb[i]));
    EXPECT_LE(worst, 1e-4);
}

TEST_F(ModelCli, BadInputIsAClearError) {
    Result r = run("logits --model " + path("m.pth") + " --tokens \"1 50\" --out " + path("x.npy"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("token id 50 is out of range [0, 50)"), std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(path("x.npy")));
    r = run("logits --model " + path("m.pth") + " --tokens \"1 x\" --out " + path("x.npy"));
    EXPECT_NE(r.code, 0);
    r = run("info " + path("missing.pth"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("missing.pth"), std::string::npos) << r.out;
    const std::string bytes = io::read_file(path("m.pth"));
    io::write_file_atomic(path("cut.pth"), bytes.substr(0, bytes.size() / 2));
    r = run("info " + path("cut.pth"));
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(r.out.find("Aborted"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("goose: error:"), std::string::npos) << r.out;
    io::write_file_atomic(path("junk.pth"), "definitely not a checkpoint");
    r = run("info " + path("junk.pth"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("neither a PyTorch"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace goose
