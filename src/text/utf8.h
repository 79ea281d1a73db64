// UTF-8 helpers shared by the tokenizers: decode one character (with the Unicode "maximal
// subpart" rule for ill-formed input), append a code point, describe a character for messages.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace goose::text {

enum class Utf8Status { ok, truncated, invalid };

struct Utf8Char {
    Utf8Status status;
    int length;     // ok: the character's bytes; truncated: bytes present; invalid: bytes to skip
    char32_t code;  // the code point when ok
};

// The character starting at s[pos] (pos < s.size()). `invalid` covers the maximal ill-formed
// subpart (replace it by one U+FFFD); `truncated` means s ends inside a well-formed prefix.
Utf8Char decode_utf8_char(std::string_view s, size_t pos);

// Appends the UTF-8 encoding of `code` (<= 0x10FFFF, not a surrogate).
void append_utf8(std::string& out, char32_t code);

// Offset of the first byte that is not part of well-formed UTF-8, or npos when all is valid.
size_t find_invalid_utf8(std::string_view s);

// "'é' (U+00E9)" for printable characters, "U+000A" for control characters.
std::string describe_char(char32_t code);

}  // namespace goose::text
