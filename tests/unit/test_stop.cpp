// StopMatcher: held-back prefixes, cutting at the first stop string to complete, independence
// from how the text is split into pushes.
#include <gtest/gtest.h>

#include "common/expect_error.h"
#include "goose/core/rng.h"
#include "goose/infer/stop.h"

namespace goose::infer {
namespace {

struct Streamed {
    std::string text;
    bool stopped;
    std::string matched;
};

// Pushes `text` in pieces cut at `cuts` (sorted offsets), then flushes if not stopped.
Streamed stream(const std::vector<std::string>& stops, const std::string& text,
                const std::vector<size_t>& cuts) {
    StopMatcher m(stops);
    std::string out;
    size_t at = 0;
    for (size_t c : cuts) {
        out += m.push(text.substr(at, c - at));
        at = c;
    }
    out += m.push(text.substr(at));
    if (!m.stopped()) out += m.flush();
    return {out, m.stopped(), m.matched()};
}

Streamed by_char(const std::vector<std::string>& stops, const std::string& text) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < text.size(); ++i) cuts.push_back(i);
    return stream(stops, text, cuts);
}

TEST(StopMatcher, PassesTextThroughWithoutStops) {
    StopMatcher m;
    EXPECT_EQ(m.push("abc"), "abc");
    EXPECT_EQ(m.push("\n\n"), "\n\n");
    EXPECT_FALSE(m.stopped());
    EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, HoldsBackAPossibleStart) {
    StopMatcher m({"\n\n"});
    EXPECT_EQ(m.push("abc\n"), "abc");
    EXPECT_EQ(m.held(), 1u);
    EXPECT_EQ(m.push("x"), "\nx");
    EXPECT_EQ(m.push("y\n"), "y");
    EXPECT_EQ(m.push("\nrest"), "");
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.matched(), "\n\n");
    EXPECT_EQ(m.push("more"), "");
    EXPECT_EQ(m.flush(), "");

    StopMatcher end({"User:"});
    EXPECT_EQ(end.push("hi Us"), "hi ");
    EXPECT_EQ(end.flush(), "Us");  // the output ended: what was held is real text
}

TEST(StopMatcher, CutsAtTheStopAcrossPushes) {
    EXPECT_EQ(stream({"User:"}, "Hello there\nUser: next", {8, 13, 15}).text, "Hello there\n");
    const auto r = by_char({"\n\n", "User:"}, "Hi!\n\nUser: x");
    EXPECT_EQ(r.text, "Hi!");
    EXPECT_TRUE(r.stopped);
    EXPECT_EQ(r.matched, "\n\n");
    // A held prefix that turns out to be text.
    EXPECT_EQ(by_char({"abcX"}, "abcabcX").text, "abc");
    EXPECT_EQ(by_char({"abcX"}, "abcabc").text, "abcabc");
    EXPECT_FALSE(by_char({"abcX"}, "abcabc").stopped);
    // UTF-8 text is cut on character boundaries.
    EXPECT_EQ(by_char({"。"}, "日本語。終わり").text, "日本語");
    EXPECT_EQ(by_char({"\n\n"}, "日本\n\n").text, "日本");
}

TEST(StopMatcher, FirstToCompleteWins) {
    // "bcd" completes before "abcde" although it starts later.
    auto r = stream({"abcde", "bcd"}, "xabcdef", {});
    EXPECT_EQ(r.text, "xa");
    EXPECT_EQ(r.matched, "bcd");
    // Same end: the longer one.
    r = stream({"cd", "bcd"}, "abcd", {});
    EXPECT_EQ(r.text, "a");
    EXPECT_EQ(r.matched, "bcd");
}

TEST(StopMatcher, ResultDoesNotDependOnTheSplit) {
    const std::vector<std::string> stops = {"aab", "ba", "\n\n\n", "abab"};
    Rng rng(4);
    const std::string alphabet = "ab\n";
    for (int trial = 0; trial < 300; ++trial) {
        std::string text;
        const int64_t len = rng.randint(0, 20);
        for (int64_t i = 0; i < len; ++i) text += alphabet[rng.randint(0, 3)];
        const Streamed whole = stream(stops, text, {});
        std::vector<size_t> cuts;
        for (size_t i = 1; i < text.size(); ++i)
            if (rng.randint(0, 2)) cuts.push_back(i);
        const Streamed split = stream(stops, text, cuts);
        EXPECT_EQ(split.text, whole.text) << "text '" << text << "'";
        EXPECT_EQ(split.matched, whole.matched) << "text '" << text << "'";
        EXPECT_EQ(by_char(stops, text).text, whole.text) << "text '" << text << "'";
        // Reference: cut before the earliest-ending occurrence.
        size_t end = std::string::npos, start = 0;
        for (const auto& s : stops) {
            const size_t p = text.find(s);
            if (p != std::string::npos && (p + s.size() < end || (p + s.size() == end && p < start))) {
                end = p + s.size();
                start = p;
            }
        }
        EXPECT_EQ(whole.text, end == std::string::npos ? text : text.substr(0, start)) << text;
    }
}

TEST(StopMatcher, EmptyStopIsAnError) {
    test::expect_error([] { StopMatcher m({"ok", ""}); }, "stop string 2 is empty");
}

}  // namespace
}  // namespace goose::infer
