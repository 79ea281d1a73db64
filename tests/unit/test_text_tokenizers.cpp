// Byte-level and char-level tokenizers, Utf8Stream (characters split across pushes, invalid
// sequences) and find_world_vocab (--vocab, $GOOSE_VOCAB, beside the model).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "common/expect_error.h"
#include "goose/io/atomic_file.h"
#include "goose/text/tokenizer.h"

namespace goose {
namespace {

using test::expect_error;
using Ids = std::vector<int32_t>;
const std::string kFffd = "\xEF\xBF\xBD";  // U+FFFD

TEST(ByteTokenizer, IdIsBytePlusOneAndRoundTripsAnyBytes) {
    const auto tok = text::make_byte_tokenizer();
    EXPECT_EQ(tok->name(), "byte");
    EXPECT_EQ(tok->vocab_size(), 257);
    EXPECT_EQ(tok->encode("A\xC3\xA9\xFF"), (Ids{66, 196, 170, 256}));
    EXPECT_EQ(tok->encode(std::string(1, '\0')), (Ids{1}));
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    EXPECT_EQ(tok->decode(tok->encode(all)), all);
    EXPECT_EQ(tok->decode(Ids{0, 105, 0, 106}), "hi");  // 0 = end of document: no text
    expect_error([&] { tok->decode(Ids{66, 257}); }, {"257", "position 1", "[0, 257)", "byte"});
    expect_error([&] { tok->decode(Ids{-3}); }, {"-3", "position 0"});
}

TEST(CharTokenizer, IdsFollowTheAlphabet) {
    const auto tok = text::make_char_tokenizer("ab é中😀\n");
    EXPECT_EQ(tok->name(), "char");
    EXPECT_EQ(tok->vocab_size(), 8);  // 7 characters + end of document
    // a=1 b=2 ' '=3 é=4 中=5 😀=6 \n=7
    EXPECT_EQ(tok->encode("ba 中😀é\n"), (Ids{2, 1, 3, 5, 6, 4, 7}));
    EXPECT_EQ(tok->decode(Ids{2, 1, 0, 3, 5, 6, 4, 7}), "ba 中😀é\n");
    EXPECT_EQ(tok->encode(""), Ids{});
}

TEST(CharTokenizer, BadInputIsAClearError) {
    const auto tok = text::make_char_tokenizer("abc");
    expect_error([&] { tok->encode("abz"); }, {"'z' (U+007A)", "offset 2", "not in the alphabet"});
    expect_error([&] { tok->encode("a\n"); }, {"U+000A", "offset 1"});
    expect_error([&] { tok->encode("ab\xC3"); }, {"not valid UTF-8", "0xC3", "offset 2"});
    expect_error([&] { tok->decode(Ids{1, 4}); }, {"4", "position 1", "[0, 4)", "char"});
    expect_error([] { text::make_char_tokenizer(""); }, "empty");
    expect_error([] { text::make_char_tokenizer("aba"); }, {"repeats", "'a'"});
    expect_error([] { text::make_char_tokenizer("a\xFF"); }, {"alphabet", "0xFF"});
}

TEST(Utf8Stream, HoldsBackACharacterSplitAcrossPushes) {
    for (const std::string ch : {"\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80"}) {
        text::Utf8Stream s;
        std::string out = s.push("x");
        for (size_t i = 0; i + 1 < ch.size(); ++i) out += s.push(ch.substr(i, 1));
        EXPECT_EQ(out, "x") << "nothing of an incomplete character comes out";
        out += s.push(ch.substr(ch.size() - 1) + "y");
        EXPECT_EQ(out, "x" + ch + "y");
        EXPECT_EQ(s.flush(), "");
    }
}

TEST(Utf8Stream, InvalidSequencesBecomeReplacementCharacters) {
    text::Utf8Stream s;
    // a stray continuation byte, a lead byte followed by ASCII, a surrogate (ED A0 80: one U+FFFD
    // per byte, as ED is only followed by 80..9F), an overlong C0 AF
    EXPECT_EQ(s.push("a\x80"
                     "b\xC3(c\xED\xA0\x80\xC0\xAF"),
              "a" + kFffd + "b" + kFffd + "(c" + kFffd + kFffd + kFffd + kFffd + kFffd);
    EXPECT_EQ(s.push("\xE2\x82"), "");  // a well-formed prefix of € is held back
    EXPECT_EQ(s.flush(), kFffd);        // ... and is one U+FFFD at the end
    EXPECT_EQ(s.push("\xE2\x82"
                     "A"),
              kFffd + "A");  // cut short by an ASCII byte
    EXPECT_EQ(s.flush(), "");
}

class VocabSearch : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / fmt::format("goose_vocab_{}", ::getpid());
        std::filesystem::create_directories(dir_ / "model");
        if (const char* v = std::getenv("GOOSE_VOCAB")) saved_ = v, had_ = true;
        ::unsetenv("GOOSE_VOCAB");
    }
    void TearDown() override {
        if (had_)
            ::setenv("GOOSE_VOCAB", saved_.c_str(), 1);
        else
            ::unsetenv("GOOSE_VOCAB");
        std::filesystem::remove_all(dir_);
    }
    std::string path(const std::string& n) const { return (dir_ / n).string(); }
    std::filesystem::path dir_;
    std::string saved_;
    bool had_ = false;
};

TEST_F(VocabSearch, ExplicitThenEnvironmentThenBesideTheModel) {
    const std::string model = path("model/m.pth");
    const std::string beside = path("model/rwkv_vocab_v20230424.txt");
    const std::string env = path("env.txt"), flag = path("flag.txt");
    for (const auto& p : {beside, env, flag}) io::write_file_atomic(p, "1 'a' 1\n");
    EXPECT_EQ(text::find_world_vocab("", model), beside);
    ::setenv("GOOSE_VOCAB", env.c_str(), 1);
    EXPECT_EQ(text::find_world_vocab("", model), env);
    EXPECT_EQ(text::find_world_vocab(flag, model), flag);
    expect_error([&] { text::find_world_vocab(path("missing.txt"), model); },
                 {"missing.txt", "--vocab"});
    ::setenv("GOOSE_VOCAB", path("gone.txt").c_str(), 1);
    expect_error([&] { text::find_world_vocab("", model); }, {"GOOSE_VOCAB", "gone.txt"});
}

TEST_F(VocabSearch, NothingFoundListsThePlacesTried) {
    expect_error([&] { text::find_world_vocab("", path("m.pth")); },
                 {"--vocab", "GOOSE_VOCAB", path("rwkv_vocab_v20230424.txt"), "not found"});
    expect_error([] { text::find_world_vocab("", ""); }, {"no model given", "--vocab"});
}

}  // namespace
}  // namespace goose
