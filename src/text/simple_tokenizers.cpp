// Byte-level (id = byte + 1) and char-level (ids 1.. over an alphabet) tokenizers; 0 = end of doc.
#include <array>
#include <unordered_map>

#include "goose/core/error.h"
#include "goose/text/tokenizer.h"
#include "text/utf8.h"

namespace goose::text {

namespace {

[[noreturn]] void fail_out_of_range(int32_t id, size_t pos, int64_t n, const char* name) {
    fail("token id {} at position {} is outside [0, {}) of the {} tokenizer", id, pos, n, name);
}

class ByteTokenizer final : public Tokenizer {
  public:
    std::vector<int32_t> encode(std::string_view text) const override {
        std::vector<int32_t> ids(text.size());
        for (size_t i = 0; i < text.size(); ++i)
            ids[i] = static_cast<int32_t>(static_cast<unsigned char>(text[i])) + 1;
        return ids;
    }
    std::string decode(std::span<const int32_t> ids) const override {
        std::string out;
        out.reserve(ids.size());
        for (size_t i = 0; i < ids.size(); ++i) {
            if (ids[i] < 0 || ids[i] > 256) fail_out_of_range(ids[i], i, 257, "byte");
            if (ids[i] != 0) out += static_cast<char>(ids[i] - 1);
        }
        return out;
    }
    int64_t vocab_size() const override { return 257; }
    std::string name() const override { return "byte"; }
};

class CharTokenizer final : public Tokenizer {
  public:
    explicit CharTokenizer(std::string_view alphabet) {
        chars_.emplace_back();  // id 0: end of document, no text
        ascii_.fill(0);
        for (size_t pos = 0; pos < alphabet.size();) {
            const Utf8Char c = decode_utf8_char(alphabet, pos);
            if (c.status != Utf8Status::ok)
                fail("char tokenizer: the alphabet is not valid UTF-8 (byte 0x{:02X} at offset {})",
                     static_cast<unsigned char>(alphabet[pos]), pos);
            const auto id = static_cast<int32_t>(chars_.size());
            if (!ids_.emplace(c.code, id).second)
                fail("char tokenizer: the alphabet repeats {}", describe_char(c.code));
            if (c.code < 128) ascii_[c.code] = id;
            chars_.emplace_back(alphabet.substr(pos, static_cast<size_t>(c.length)));
            pos += static_cast<size_t>(c.length);
        }
        if (chars_.size() == 1) fail("char tokenizer: the alphabet is empty");
    }

    std::vector<int32_t> encode(std::string_view text) const override {
        std::vector<int32_t> ids;
        ids.reserve(text.size());
        for (size_t pos = 0; pos < text.size();) {
            const auto b = static_cast<unsigned char>(text[pos]);
            if (b < 128 && ascii_[b] != 0) {
                ids.push_back(ascii_[b]);
                ++pos;
                continue;
            }
            const Utf8Char c = decode_utf8_char(text, pos);
            if (c.status != Utf8Status::ok)
                fail("char tokenizer: the text is not valid UTF-8 (byte 0x{:02X} at offset {})", b,
                     pos);
            const auto it = ids_.find(c.code);
            if (it == ids_.end())
                fail("char tokenizer: {} at byte offset {} is not in the alphabet of {} characters",
                     describe_char(c.code), pos, chars_.size() - 1);
            ids.push_back(it->second);
            pos += static_cast<size_t>(c.length);
        }
        return ids;
    }

    std::string decode(std::span<const int32_t> ids) const override {
        std::string out;
        out.reserve(ids.size());
        const auto n = static_cast<int64_t>(chars_.size());
        for (size_t i = 0; i < ids.size(); ++i) {
            if (ids[i] < 0 || ids[i] >= n) fail_out_of_range(ids[i], i, n, "char");
            out += chars_[static_cast<size_t>(ids[i])];
        }
        return out;
    }
    int64_t vocab_size() const override { return static_cast<int64_t>(chars_.size()); }
    std::string name() const override { return "char"; }

  private:
    std::vector<std::string> chars_;  // id -> the character's UTF-8 bytes
    std::unordered_map<char32_t, int32_t> ids_;
    std::array<int32_t, 128> ascii_{};  // fast path: ASCII character -> id (0: not in alphabet)
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() {
    return std::make_unique<ByteTokenizer>();
}

std::unique_ptr<Tokenizer> make_char_tokenizer(std::string_view alphabet) {
    return std::make_unique<CharTokenizer>(alphabet);
}

}  // namespace goose::text
