// Tokenizers: text <-> token ids. The RWKV World tokenizer (spec rwkv7 §11: a vocabulary of
// byte strings, greedy longest match through a byte trie, token 0 = end of document), and
// byte-level and char-level tokenizers for small models.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace goose::text {

// Immutable after construction: encode/decode may be called from several threads at once.
class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    // Any bytes (invalid UTF-8 included) encode; decode(encode(s)) == s byte for byte.
    virtual std::vector<int32_t> encode(std::string_view text) const = 0;
    // The tokens' bytes concatenated (a token may end inside a UTF-8 character: see Utf8Stream).
    // goose::Error naming the id for ids outside [0, vocab_size()).
    virtual std::string decode(std::span<const int32_t> ids) const = 0;
    // ids are in [0, vocab_size()): World = largest id in the file + 1 (65530 for
    // rwkv_vocab_v20230424.txt; models pad their embedding to 65536), byte 257, char alphabet + 1.
    virtual int64_t vocab_size() const = 0;
    virtual std::string name() const = 0;    // "world", "byte", "char"
};

// Parses an rwkv_vocab_v20230424.txt-style file (LF or CRLF). goose::Error naming the file and
// line for malformed lines (bad literal, length column that disagrees, duplicate id or bytes), or
// naming the byte when one of the 256 single bytes has no token.
std::unique_ptr<Tokenizer> load_world_tokenizer(const std::string& vocab_path);
// Byte-level: id = byte value + 1 (256 + 1 ids, 0 = end of document).
std::unique_ptr<Tokenizer> make_byte_tokenizer();
// Char-level over the UTF-8 characters of `alphabet` (ids 1.., 0 = end of document); encoding a
// character outside it is a goose::Error naming the character.
std::unique_ptr<Tokenizer> make_char_tokenizer(std::string_view alphabet);

// The World vocabulary's path: `explicit_path` if not empty, else $GOOSE_VOCAB, else
// rwkv_vocab_v20230424.txt in the model file's folder. goose::Error listing the places tried.
std::string find_world_vocab(const std::string& explicit_path, const std::string& model_path);

// Streams decoded bytes as valid UTF-8: push() returns the longest complete prefix and keeps an
// incomplete trailing character for the next call; invalid sequences become U+FFFD.
class Utf8Stream {
public:
    std::string push(std::string_view bytes);
    std::string flush();  // what is held back, incomplete characters as U+FFFD

private:
    std::string pending_;
};

}  // namespace goose::text
