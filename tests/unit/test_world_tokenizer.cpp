// World tokenizer: vocabulary parsing edge cases on small files, greedy longest match against a
// naive reference, hand-checked ids, exact round trips (LAMBADA, invalid UTF-8), agreement with
// the Python reference, bad ids, and encode throughput.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/expect_error.h"
#include "common/shared_data.h"
#include "goose/core/error.h"
#include "goose/io/atomic_file.h"
#include "goose/text/tokenizer.h"

namespace goose {
namespace {

using test::expect_error;
using Ids = std::vector<int32_t>;

class TempDir {
  public:
    TempDir()
        : dir_(std::filesystem::temp_directory_path() / fmt::format("goose_tok_{}", ::getpid())) {
        std::filesystem::create_directories(dir_);
    }
    ~TempDir() { std::filesystem::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& bytes) const {
        const std::string p = (dir_ / name).string();
        io::write_file_atomic(p, bytes);
        return p;
    }

  private:
    std::filesystem::path dir_;
};

// Lines 1..256 as the real file writes them: str literals below 0x80, bytes literals above.
std::string single_byte_lines(int skip_byte = -1) {
    std::string s;
    for (int b = 0; b < 256; ++b) {
        if (b == skip_byte) continue;
        std::string lit;
        if (b == '\\')
            lit = "'\\\\'";
        else if (b == '\'')
            lit = "\"'\"";
        else if (b == '\t')
            lit = "'\\t'";
        else if (b == '\n')
            lit = "'\\n'";
        else if (b == '\r')
            lit = "'\\r'";
        else if (b >= 0x20 && b < 0x7F)
            lit = fmt::format("'{}'", static_cast<char>(b));
        else if (b < 0x80)
            lit = fmt::format("'\\x{:02x}'", b);
        else
            lit = fmt::format("b'\\x{:02x}'", b);
        s += fmt::format("{} {} 1\n", b + 1, lit);
    }
    return s;
}

// Greedy longest match the slow way: at each position try every length from the longest down.
Ids naive_encode(const std::unordered_map<std::string, int32_t>& vocab, size_t max_len,
                 std::string_view text) {
    Ids ids;
    std::string key;
    for (size_t pos = 0; pos < text.size();) {
        for (size_t len = std::min(max_len, text.size() - pos); len >= 1; --len) {
            key.assign(text.substr(pos, len));
            const auto it = vocab.find(key);
            if (it != vocab.end()) {
                ids.push_back(it->second);
                pos += len;
                break;
            }
            if (len == 1) {
                ADD_FAILURE() << "no token for byte " << int(text[pos]);
                return ids;
            }
        }
    }
    return ids;
}

// ---- parsing, on small vocabulary files ---------------------------------------------------------

TEST(WorldTokenizerParse, StrAndBytesLiterals) {
    TempDir dir;
    const std::string extra =
        "257 '\\x80\\x81' 4\n"       // str: \xNN is a code point, U+0080 U+0081 = C2 80 C2 81
        "258 b'\\x80\\x81' 2\n"      // bytes: \xNN is one raw byte
        "259 ' b' 2\n"               // the literal itself contains a space
        "260 \"'s\" 2\n"             // double quotes around a single quote
        "261 '\\u00e9t\\u00e9' 5\n"  // \uNNNN: été
        "262 '中文' 6\n"             // raw UTF-8 inside a str literal
        "263 'a\\\\b\\'c' 5\n"       // escaped backslash and quote: a\b'c
        "264 b'\\xe4\\xb8' 2\n"      // a partial UTF-8 character as bytes
        "265 '\\U0001f600' 4\n";     // \UNNNNNNNN: 😀
    const auto tok = text::load_world_tokenizer(dir.write("v.txt", single_byte_lines() + extra));
    EXPECT_EQ(tok->name(), "world");
    EXPECT_EQ(tok->vocab_size(), 266);
    const std::pair<int32_t, std::string> expected[] = {{257, "\xC2\x80\xC2\x81"},
                                                        {258, "\x80\x81"},
                                                        {259, " b"},
                                                        {260, "'s"},
                                                        {261, "\xC3\xA9t\xC3\xA9"},
                                                        {262, "中文"},
                                                        {263, "a\\b'c"},
                                                        {264, "\xE4\xB8"},
                                                        {265, "\xF0\x9F\x98\x80"},
                                                        {1, std::string(1, '\0')},
                                                        {129, "\x80"},
                                                        {93, "\\"}};
    for (const auto& [id, bytes] : expected) {
        EXPECT_EQ(tok->decode(Ids{id}), bytes) << "id " << id;
        EXPECT_EQ(tok->encode(bytes), Ids{id}) << "id " << id;
    }
}

TEST(WorldTokenizerParse, CrlfLineEndingsGiveTheSameVocabulary) {
    TempDir dir;
    const std::string lf = single_byte_lines() + "257 'ab' 2\n258 ' b' 2\n259 '\\r\\n' 2\n";
    std::string crlf;
    for (char c : lf) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    const auto a = text::load_world_tokenizer(dir.write("lf.txt", lf));
    const auto b = text::load_world_tokenizer(dir.write("crlf.txt", crlf));
    ASSERT_EQ(a->vocab_size(), b->vocab_size());
    for (int32_t id = 1; id < a->vocab_size(); ++id)
        EXPECT_EQ(a->decode(Ids{id}), b->decode(Ids{id})) << "id " << id;
    EXPECT_EQ(b->decode(Ids{259}), "\r\n");
    EXPECT_EQ(b->encode("ab b\r\n"), (Ids{257, 258, 259}));
}

TEST(WorldTokenizerParse, MalformedLinesNameTheFileAndLine) {
    TempDir dir;
    const std::string base = single_byte_lines();  // lines 1..256
    struct Case {
        std::string lines;  // appended after the 256 byte lines
        std::vector<std::string> parts;
    };
    const Case cases[] = {
        {"257 'ab' 3\n", {":257:", "length column says 3", "2 bytes"}},
        {"257 'ab' 2\n257 'cd' 2\n", {":258:", "duplicate id 257", "line 257"}},
        {"257 'ab' 2\n258 'ab' 2\n", {":258:", "repeats the bytes of id 257"}},
        {"257 'ab 2\n", {":257:", "no closing ' quote"}},
        {"257 'a\\qb' 3\n", {":257:", "unsupported escape \\q"}},
        {"257 b'\\u00e9' 2\n", {":257:", "not an escape in a bytes literal"}},
        {"257 '\\x8' 1\n", {":257:", "needs 2 hex digits"}},
        {"257 'ab'c 3\n", {":257:", "text after the closing quote"}},
        {"257 ab 2\n", {":257:", "expected a Python literal"}},
        {"257 'ab'\n", {":257:", "expected '<id> <python literal> <byte length>'"}},
        {"0 'ab' 2\n", {":257:", "id '0'", "end of document"}},
        {"x1 'ab' 2\n", {":257:", "id 'x1'"}},
        {"257 'ab' two\n", {":257:", "byte length 'two'"}},
        {"257 '' 0\n", {":257:", "empty token"}},
        {"257 b'\xC3\xA9' 2\n", {":257:", "non-ASCII byte 0xC3 in a bytes literal"}},
        {"257 '\xC3' 1\n", {":257:", "invalid UTF-8"}},
        {"\n\n257 'ab' 9\n", {":259:", "length column says 9"}},  // blank lines still count
    };
    for (const auto& c : cases) {
        const std::string path = dir.write("bad.txt", base + c.lines);
        std::vector<std::string> parts = c.parts;
        parts.push_back(path);
        expect_error([&] { text::load_world_tokenizer(path); }, parts);
    }
    const std::string no_a = dir.write("no_a.txt", single_byte_lines('A'));
    expect_error([&] { text::load_world_tokenizer(no_a); }, {no_a, "single byte 0x41"});
    expect_error([&] { text::load_world_tokenizer(dir.write("empty.txt", "")); },
                 "no vocabulary entries");
    expect_error([] { text::load_world_tokenizer("/nonexistent/vocab.txt"); },
                 "/nonexistent/vocab.txt");
}

TEST(WorldTokenizerParse, GreedyLongestMatchThroughNonTokenPrefixes) {
    TempDir dir;
    // "abcd" is a token but "abc" is not: after "ab" the walk must go on and fall back.
    const auto tok = text::load_world_tokenizer(
        dir.write("v.txt", single_byte_lines() + "257 'ab' 2\n258 'abcd' 4\n259 'bcx' 3\n"));
    const int32_t a = 'a' + 1, c = 'c' + 1, x = 'x' + 1, d = 'd' + 1;
    EXPECT_EQ(tok->encode("abcd"), (Ids{258}));
    EXPECT_EQ(tok->encode("abcx"), (Ids{257, c, x}));  // greedy: "ab" wins over "a" + "bcx"
    EXPECT_EQ(tok->encode("abcdabc"), (Ids{258, 257, c}));
    EXPECT_EQ(tok->encode("aabc"), (Ids{a, 257, c}));
    EXPECT_EQ(tok->encode("dbcx"), (Ids{d, 259}));
    EXPECT_EQ(tok->encode(""), Ids{});
}

// ---- the real vocabulary ----------------------------------------------------------------------

class WorldTokenizer : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        const std::string path = test::shared_data_file("rwkv_vocab_v20230424.txt");
        if (!path.empty()) tok_ = text::load_world_tokenizer(path).release();
    }
    static void TearDownTestSuite() {
        delete tok_;
        tok_ = nullptr;
    }
    void SetUp() override {
        if (!tok_)
            GTEST_SKIP() << "rwkv_vocab_v20230424.txt not found in ../shared/data beside the "
                            "source tree (or $GOOSE_SHARED_DATA)";
    }
    static std::vector<std::string> lambada() {
        std::vector<std::string> texts;
        const std::string path = test::shared_data_file("lambada_test.jsonl");
        if (path.empty()) return texts;
        std::ifstream f(path);
        for (std::string line; std::getline(f, line);)
            if (!line.empty())
                texts.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
        return texts;
    }
    static const text::Tokenizer* tok_;
};
const text::Tokenizer* WorldTokenizer::tok_ = nullptr;

TEST_F(WorldTokenizer, VocabularyShape) {
    EXPECT_EQ(tok_->vocab_size(), 65530);  // ids 1..65529 in the file, 0 = end of document
    for (int b = 0; b < 256; ++b) EXPECT_EQ(tok_->decode(Ids{b + 1}), std::string(1, char(b)));
    EXPECT_EQ(tok_->decode(Ids{0}), "");
    EXPECT_EQ(tok_->decode(Ids{0, 33155, 0}), "Hello");
}

// Expected ids looked up by hand in rwkv_vocab_v20230424.txt (line = id).
TEST_F(WorldTokenizer, HandCheckedIds) {
    // 33155 'Hello' 5 | 45 ',' 1 | 40213 ' world' 6 | 34 '!' 1
    EXPECT_EQ(tok_->encode("Hello, world!"), (Ids{33155, 45, 40213, 34}));
    // 10285 '中' 3 | 13012 '文' 3 | 14734 '的' 3 | 11860 '字' 3
    EXPECT_EQ(tok_->encode("中文的字"), (Ids{10285, 13012, 14734, 11860}));
    // 3340 '   ' 3 | 8851 'two' 3 | 267 '  ' 2 | 42287 'spaces' 6
    EXPECT_EQ(tok_->encode("   two  spaces"), (Ids{3340, 8851, 267, 42287}));
    // 1136 'In' 2 | 3493 ' 20' 3 | 643 '23' 2 | 45 ',' | 3485 ' 12' 3 | 654 '34' 2 | 54 '5' 1 |
    // 38810 ' items' 6: digits have no special handling
    EXPECT_EQ(tok_->encode("In 2023, 12345 items"),
              (Ids{1136, 3493, 643, 45, 3485, 654, 54, 38810}));
    // 34295 'emoji' 5 | 33 ' ' 1 | 3319 b'\xf0\x9f' 2 | 153 b'\x98' 1 | 129 b'\x80' 1 | 34 '!':
    // 😀 = F0 9F 98 80 is split inside the character
    EXPECT_EQ(tok_->encode("emoji 😀!"), (Ids{34295, 33, 3319, 153, 129, 34}));
    // 1784 'ca' 2 | 7596 'fé' 3: greedy from the left, not at character boundaries
    EXPECT_EQ(tok_->encode("café"), (Ids{1784, 7596}));
    // 261 '\n\n' 2
    EXPECT_EQ(tok_->encode("\n\n"), (Ids{261}));
    // invalid UTF-8: 256 b'\xff' | 255 b'\xfe' | 66 'A' | 196 b'\xc3' (a truncated character)
    EXPECT_EQ(tok_->encode("\xFF\xFE"
                           "A\xC3"),
              (Ids{256, 255, 66, 196}));
}

TEST_F(WorldTokenizer, InvalidUtf8RoundTripsByteForByte) {
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    EXPECT_EQ(tok_->decode(tok_->encode(all)), all);
    std::mt19937 rng(7);
    std::string noise(100000, '\0');
    for (auto& c : noise) c = static_cast<char>(rng() & 0xFF);
    EXPECT_EQ(tok_->decode(tok_->encode(noise)), noise);
    const std::string mixed = "ok \xC3\x28 \xED\xA0\x80 \xF0\x9F\x98 end\xE2\x82";
    EXPECT_EQ(tok_->decode(tok_->encode(mixed)), mixed);
}

TEST_F(WorldTokenizer, OutOfRangeIdsAreAnError) {
    expect_error([&] { tok_->decode(Ids{5, 65530}); }, {"65530", "position 1", "[0, 65530)"});
    expect_error([&] { tok_->decode(Ids{-1}); }, {"-1", "position 0"});
    expect_error([&] { tok_->decode(Ids{1, 2, 65535}); }, {"65535", "position 2"});
}

TEST_F(WorldTokenizer, EveryLambadaPassageRoundTripsAndMatchesNaiveGreedy) {
    const auto texts = lambada();
    if (texts.empty()) GTEST_SKIP() << "lambada_test.jsonl not found in ../shared/data";
    ASSERT_EQ(texts.size(), 5153u);
    std::unordered_map<std::string, int32_t> vocab;
    size_t max_len = 0;
    for (int32_t id = 1; id < tok_->vocab_size(); ++id) {
        std::string bytes = tok_->decode(Ids{id});
        max_len = std::max(max_len, bytes.size());
        vocab.emplace(std::move(bytes), id);
    }
    EXPECT_EQ(max_len, 128u);
    size_t tokens = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
        const Ids ids = tok_->encode(texts[i]);
        tokens += ids.size();
        ASSERT_EQ(tok_->decode(ids), texts[i]) << "passage " << i;
        if (i % 16 == 0) {
            ASSERT_EQ(ids, naive_encode(vocab, max_len, texts[i])) << "passage " << i;
        }
    }
    EXPECT_GT(tokens, 300000u);
}

// The Python reference parses the vocabulary with Python's own literal syntax (ast) and encodes
// with its own trie: every token's bytes and the ids of a LAMBADA sample must agree.
TEST_F(WorldTokenizer, MatchesThePythonReference) {
    const auto texts = lambada();
    if (texts.empty()) GTEST_SKIP() << "lambada_test.jsonl not found in ../shared/data";
    if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 not found";
    std::string sample;
    for (size_t i = 0; i < texts.size(); i += 20) sample += texts[i] + "\n";
    sample += "\xFF\xFE invalid \xC3 and 😀 emoji, 12345 digits\r\n";
    TempDir dir;
    const std::string in = dir.write("sample.txt", sample);
    const std::string out = dir.write("ids.bin", ""), all = dir.write("all.bin", "");
    const std::string cmd = fmt::format(
        "/usr/bin/python3 {}/tests/reference/world_tokenizer_ref.py --vocab {} --in {} --out {} "
        "--vocab-bytes {} > /dev/null",
        GOOSE_TEST_SOURCE_DIR, test::shared_data_file("rwkv_vocab_v20230424.txt"), in, out, all);
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

    Ids every_id(static_cast<size_t>(tok_->vocab_size() - 1));
    for (size_t i = 0; i < every_id.size(); ++i) every_id[i] = static_cast<int32_t>(i + 1);
    const std::string all_bytes = io::read_file(all);
    EXPECT_EQ(all_bytes.size(), 373358u);  // the sum of the length column
    // Equal lengths (the length column) and equal concatenations: every token is equal.
    EXPECT_TRUE(tok_->decode(every_id) == all_bytes);

    const std::string bytes = io::read_file(out);
    Ids ref(bytes.size() / 4);
    std::memcpy(ref.data(), bytes.data(), ref.size() * 4);
    EXPECT_EQ(tok_->encode(sample), ref);
}

// Throughput over the LAMBADA text (best of 3). The ≥ 20 MB/s target is asserted only in an
// optimised build without sanitizers.
TEST_F(WorldTokenizer, EncodeThroughput) {
    const auto texts = lambada();
    if (texts.empty()) GTEST_SKIP() << "lambada_test.jsonl not found in ../shared/data";
    std::string all;
    for (const auto& t : texts) all += t + "\n";
    double best_encode = 1e9, best_decode = 1e9;
    Ids ids;
    for (int rep = 0; rep < 3; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        ids = tok_->encode(all);
        auto t1 = std::chrono::steady_clock::now();
        const std::string back = tok_->decode(ids);
        auto t2 = std::chrono::steady_clock::now();
        best_encode = std::min(best_encode, std::chrono::duration<double>(t1 - t0).count());
        best_decode = std::min(best_decode, std::chrono::duration<double>(t2 - t1).count());
        ASSERT_EQ(back.size(), all.size());
    }
    const double mb = static_cast<double>(all.size()) / 1e6;
    const double encode_mbps = mb / best_encode, decode_mbps = mb / best_decode;
    std::printf(
        "[ world tokenizer ] %.2f MB: encode %.1f MB/s, decode %.1f MB/s (target encode "
        ">= 20 MB/s)\n",
        mb, encode_mbps, decode_mbps);
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
    EXPECT_GE(encode_mbps, 20.0);
#endif
}

}  // namespace
}  // namespace goose
