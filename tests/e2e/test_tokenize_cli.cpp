// goose tokenize end to end: encode to stdout / text / .npy, decode back byte for byte, the
// vocabulary search (--vocab, GOOSE_VOCAB, beside --model), and clear errors for bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "common/run_cli.h"
#include "common/shared_data.h"
#include "goose/io/atomic_file.h"
#include "goose/io/npy.h"

namespace goose {
namespace {

using Result = test::CliResult;
Result run(const std::string& args) {
    return test::run_goose(args);
}

class TokenizeCli : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / fmt::format("goose_tokcli_{}", ::getpid());
        std::filesystem::create_directories(dir_);
        if (const char* v = std::getenv("GOOSE_VOCAB")) saved_ = v, had_ = true;
        ::unsetenv("GOOSE_VOCAB");
    }
    void TearDown() override {
        if (had_) ::setenv("GOOSE_VOCAB", saved_.c_str(), 1);
        std::filesystem::remove_all(dir_);
    }
    std::string path(const std::string& n) const { return (dir_ / n).string(); }
    std::string write(const std::string& n, const std::string& bytes) const {
        io::write_file_atomic(path(n), bytes);
        return path(n);
    }
    static std::vector<int32_t> npy_ids(const std::string& p) {
        const Tensor t = io::load_npy(p);
        EXPECT_EQ(t.dtype(), DType::i32);
        std::vector<int32_t> v(t.data<int32_t>(), t.data<int32_t>() + t.numel());
        return v;
    }
    std::filesystem::path dir_;
    std::string saved_;
    bool had_ = false;
};

TEST_F(TokenizeCli, ByteTokenizerRoundTripThroughTextAndNpy) {
    const std::string text = "hi \xC3\xA9\xFF\n";  // é and an invalid byte
    const std::string in = write("in.txt", text);
    Result r = run("tokenize --tokenizer byte --in " + in);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out, "105 106 33 196 170 256 11\n");  // byte + 1
    r = run("tokenize --tokenizer byte --in " + in + " --out " + path("ids.npy"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("7 bytes -> 7 tokens"), std::string::npos) << r.out;
    EXPECT_EQ(npy_ids(path("ids.npy")), (std::vector<int32_t>{105, 106, 33, 196, 170, 256, 11}));
    r = run("tokenize --tokenizer byte --decode --in " + path("ids.npy") + " --out " +
            path("back.txt"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(io::read_file(path("back.txt")), text);
    // text ids: spaces, commas and newlines separate; 0 (end of document) decodes to nothing
    const std::string ids = write("ids.txt", "105, 106\n0 34\n");
    r = run("tokenize --tokenizer byte --decode --in " + ids);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out, "hi!");
}

TEST_F(TokenizeCli, BadInputIsAClearError) {
    const std::string big = write("big.txt", "105 70000 3\n");
    Result r = run("tokenize --tokenizer byte --decode --in " + big);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("token id 70000 at position 1 is outside [0, 257)"), std::string::npos)
        << r.out;
    const std::string junk = write("junk.txt", "12 abc 5");
    r = run("tokenize --tokenizer byte --decode --in " + junk);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("'abc' at byte offset 3 is not a token id"), std::string::npos) << r.out;
    const std::string floats = path("f.npy");
    io::save_npy(floats, Tensor::from(Shape{2}, {1.5, 2.0}));
    r = run("tokenize --tokenizer byte --decode --in " + floats);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("must be integers"), std::string::npos) << r.out;
    r = run("tokenize --tokenizer bogus --in " + big);
    EXPECT_NE(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("bogus"), std::string::npos) << r.out;
    // the World tokenizer without a vocabulary: the places tried are listed
    r = run("tokenize --in " + big + " --model " + path("m.pth"));
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("no World vocabulary found"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(path("rwkv_vocab_v20230424.txt")), std::string::npos) << r.out;
}

TEST_F(TokenizeCli, WorldTokenizerRoundTripAndVocabularySearch) {
    const std::string vocab = test::shared_data_file("rwkv_vocab_v20230424.txt");
    if (vocab.empty())
        GTEST_SKIP() << "rwkv_vocab_v20230424.txt not found in ../shared/data beside the source "
                        "tree (or $GOOSE_SHARED_DATA)";
    const std::string in = write("in.txt", "Hello, world!");
    // 33155 'Hello' | 45 ',' | 40213 ' world' | 34 '!' (rwkv_vocab_v20230424.txt)
    Result r = run("tokenize --vocab " + vocab + " --in " + in);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out, "33155 45 40213 34\n");

    const std::string text = "Emoji 😀, 中文, bad \xFF\xC3 bytes,\r\n and 12345.\n";
    const std::string in2 = write("in2.txt", text);
    r = run("tokenize --vocab " + vocab + " --in " + in2 + " --out " + path("ids.npy"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("world tokenizer, 65530 ids"), std::string::npos) << r.out;
    r = run("tokenize --decode --vocab " + vocab + " --in " + path("ids.npy") + " --out " +
            path("back.txt"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(io::read_file(path("back.txt")), text);

    // GOOSE_VOCAB, then the vocabulary beside --model
    ::setenv("GOOSE_VOCAB", vocab.c_str(), 1);
    r = run("tokenize --in " + in);
    ::unsetenv("GOOSE_VOCAB");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out, "33155 45 40213 34\n");
    std::filesystem::copy_file(vocab, path("rwkv_vocab_v20230424.txt"));
    r = run("tokenize --in " + in + " --model " + path("m.pth"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out, "33155 45 40213 34\n");

    const std::string bad = write("bad.txt", "33155 65530");
    r = run("tokenize --decode --vocab " + vocab + " --in " + bad);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("token id 65530 at position 1 is outside [0, 65530)"), std::string::npos)
        << r.out;
}

}  // namespace
}  // namespace goose
