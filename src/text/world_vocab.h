// Parser of the World vocabulary file (spec rwkv7 §11.1): `<id> <python literal> <byte length>`
// per line, str literals (UTF-8; `\xNN` is a code point) and bytes literals (`\xNN` is a byte).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace goose::text {

struct VocabEntry {
    int32_t id;
    std::string bytes;
    int64_t line;  // 1-based line in the file, for messages
};

// Every entry of the file, in file order. goose::Error "<path>:<line>: ..." for a malformed line,
// a length column that disagrees with the literal, an id outside [1, 2^24), a duplicate id or a
// duplicate byte string. LF or CRLF line endings; empty lines are skipped.
std::vector<VocabEntry> parse_world_vocab(std::string_view text, const std::string& path);

// The bytes of one Python str or bytes literal, e.g. `'\x80'` -> C2 80, `b'\x80'` -> 80.
// goose::Error (without file or line) describing what is wrong.
std::string parse_python_literal(std::string_view literal);

}  // namespace goose::text
