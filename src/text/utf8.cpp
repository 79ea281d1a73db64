// UTF-8 decoding and encoding helpers, and Utf8Stream (valid UTF-8 out of a byte stream).
#include "text/utf8.h"

#include <fmt/format.h>

#include "goose/text/tokenizer.h"

namespace goose::text {

namespace {
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
}

Utf8Char decode_utf8_char(std::string_view s, size_t pos) {
    const auto b0 = static_cast<unsigned char>(s[pos]);
    if (b0 < 0x80) return {Utf8Status::ok, 1, b0};
    int need = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    char32_t code = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1, code = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2, code = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
        if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3, code = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;  // no overlong forms
        if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return {Utf8Status::invalid, 1, 0};
    }
    for (int k = 1; k <= need; ++k) {
        if (pos + k >= s.size()) return {Utf8Status::truncated, k, 0};
        const auto c = static_cast<unsigned char>(s[pos + k]);
        const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
        if (c < min || c > max) return {Utf8Status::invalid, k, 0};
        code = (code << 6) | (c & 0x3F);
    }
    return {Utf8Status::ok, need + 1, code};
}

void append_utf8(std::string& out, char32_t code) {
    if (code < 0x80) {
        out += static_cast<char>(code);
    } else if (code < 0x800) {
        out += static_cast<char>(0xC0 | (code >> 6));
        out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
        out += static_cast<char>(0xE0 | (code >> 12));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (code >> 18));
        out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
    }
}

size_t find_invalid_utf8(std::string_view s) {
    for (size_t pos = 0; pos < s.size();) {
        const Utf8Char c = decode_utf8_char(s, pos);
        if (c.status != Utf8Status::ok) return pos;
        pos += static_cast<size_t>(c.length);
    }
    return std::string_view::npos;
}

std::string describe_char(char32_t code) {
    if (code < 0x20 || code == 0x7F || (code >= 0x80 && code < 0xA0))
        return fmt::format("U+{:04X}", static_cast<uint32_t>(code));
    std::string s = "'";
    append_utf8(s, code);
    return s + fmt::format("' (U+{:04X})", static_cast<uint32_t>(code));
}

std::string Utf8Stream::push(std::string_view bytes) {
    pending_.append(bytes);
    std::string out;
    out.reserve(pending_.size());
    size_t pos = 0;
    while (pos < pending_.size()) {
        const Utf8Char c = decode_utf8_char(pending_, pos);
        if (c.status == Utf8Status::truncated) break;  // wait for the rest of the character
        if (c.status == Utf8Status::ok)
            out.append(pending_, pos, static_cast<size_t>(c.length));
        else
            out += kReplacement;
        pos += static_cast<size_t>(c.length);
    }
    pending_.erase(0, pos);
    return out;
}

std::string Utf8Stream::flush() {
    std::string out;
    if (!pending_.empty()) out = kReplacement;  // one incomplete character: one U+FFFD
    pending_.clear();
    return out;
}

}  // namespace goose::text
