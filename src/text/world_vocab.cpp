// World vocabulary parsing: Python str/bytes literals and the line format `<id> <literal> <len>`.
#include "text/world_vocab.h"

#include <charconv>
#include <unordered_map>

#include "goose/core/error.h"
#include "text/utf8.h"

namespace goose::text {

namespace {

constexpr int64_t kMaxId = (1 << 24) - 1;

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Reads exactly `digits` hex digits at lit[pos...].
uint32_t read_hex(std::string_view lit, size_t pos, int digits, char escape) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
        const int h = pos + k < lit.size() ? hex_value(lit[pos + k]) : -1;
        if (h < 0) fail("escape \\{} needs {} hex digits", escape, digits);
        v = v * 16 + static_cast<uint32_t>(h);
    }
    return v;
}

void append_code_point(std::string& out, uint32_t code, char escape) {
    if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        fail("escape \\{} gives U+{:X}, which is not a Unicode scalar value", escape, code);
    append_utf8(out, code);
}

// The character of a one-letter escape (\\ \' \" \n \r \t \a \b \f \v), or -1.
// clang-format off
int simple_escape(char e) {
    switch (e) {
        case '\\': return '\\';
        case '\'': return '\'';
        case '"': return '"';
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case 'a': return '\a';
        case 'b': return '\b';
        case 'f': return '\f';
        case 'v': return '\v';
        default: return -1;
    }
}
// clang-format on

bool parse_int(std::string_view s, int64_t& v) {
    if (s.empty() || s.size() > 18) return false;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && end == s.data() + s.size() && s[0] != '-' && s[0] != '+';
}

}  // namespace

std::string parse_python_literal(std::string_view lit) {
    size_t pos = 0;
    const bool is_bytes = !lit.empty() && (lit[0] == 'b' || lit[0] == 'B');
    if (is_bytes) pos = 1;
    if (pos >= lit.size() || (lit[pos] != '\'' && lit[pos] != '"'))
        fail("expected a Python literal ('...', \"...\" or b'...')");
    const char quote = lit[pos++];
    std::string out;
    for (;;) {
        if (pos >= lit.size()) fail("no closing {} quote", quote);
        const char c = lit[pos];
        if (c == quote) {
            ++pos;
            break;
        }
        if (c != '\\') {
            if (is_bytes && static_cast<unsigned char>(c) >= 0x80)
                fail("non-ASCII byte 0x{:02X} in a bytes literal", static_cast<unsigned char>(c));
            out += c;
            ++pos;
            continue;
        }
        if (pos + 1 >= lit.size()) fail("no closing {} quote", quote);
        const char e = lit[pos + 1];
        pos += 2;
        if (const int simple = simple_escape(e); simple >= 0) {
            out += static_cast<char>(simple);
            continue;
        }
        switch (e) {
            case 'x': {
                const uint32_t v = read_hex(lit, pos, 2, 'x');
                pos += 2;
                if (is_bytes)
                    out += static_cast<char>(v);  // a raw byte
                else
                    append_utf8(out, v);  // a code point: '\x80' is C2 80
                break;
            }
            case 'u':
            case 'U': {
                if (is_bytes) fail("\\{} is not an escape in a bytes literal", e);
                const int digits = e == 'u' ? 4 : 8;
                append_code_point(out, read_hex(lit, pos, digits, e), e);
                pos += static_cast<size_t>(digits);
                break;
            }
            default:
                if (e >= '0' && e <= '7') {  // octal, up to 3 digits
                    uint32_t v = static_cast<uint32_t>(e - '0');
                    for (int k = 0; k < 2 && pos < lit.size() && lit[pos] >= '0' && lit[pos] <= '7';
                         ++k)
                        v = v * 8 + static_cast<uint32_t>(lit[pos++] - '0');
                    if (is_bytes) {
                        if (v > 0xFF)
                            fail("octal escape \\{:o} is above \\377 in a bytes literal", v);
                        out += static_cast<char>(v);
                    } else {
                        append_utf8(out, v);
                    }
                    break;
                }
                fail("unsupported escape \\{}", e);
        }
    }
    if (pos != lit.size()) fail("text after the closing quote: '{}'", lit.substr(pos));
    if (!is_bytes) {
        const size_t bad = find_invalid_utf8(out);
        if (bad != std::string::npos)
            fail("invalid UTF-8 (byte 0x{:02X}) in a str literal",
                 static_cast<unsigned char>(out[bad]));
    }
    return out;
}

std::vector<VocabEntry> parse_world_vocab(std::string_view text, const std::string& path) {
    std::vector<VocabEntry> entries;
    entries.reserve(text.size() / 16);
    std::unordered_map<int32_t, int64_t> line_of_id;
    std::unordered_map<std::string_view, size_t> entry_of_bytes;  // views into `entries`
    line_of_id.reserve(text.size() / 16);
    int64_t line_no = 0;
    for (size_t start = 0; start < text.size();) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(start, end - start);
        start = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        try {
            const size_t first = line.find(' '), last = line.rfind(' ');
            if (first == std::string_view::npos || first == last)
                fail("expected '<id> <python literal> <byte length>'");
            const std::string_view id_text = line.substr(0, first);
            const std::string_view len_text = line.substr(last + 1);
            int64_t id = 0, length = 0;
            if (!parse_int(id_text, id) || id < 1 || id > kMaxId)
                fail("id '{}' is not an integer in [1, {}] (0 is end of document)", id_text,
                     kMaxId);
            if (!parse_int(len_text, length))
                fail("byte length '{}' is not a non-negative integer", len_text);
            std::string bytes = parse_python_literal(line.substr(first + 1, last - first - 1));
            if (bytes.empty()) fail("empty token");
            if (static_cast<int64_t>(bytes.size()) != length)
                fail("the length column says {} but the literal has {} bytes", length,
                     bytes.size());
            const auto [it, fresh] = line_of_id.emplace(static_cast<int32_t>(id), line_no);
            if (!fresh) fail("duplicate id {} (first on line {})", id, it->second);
            entries.push_back({static_cast<int32_t>(id), std::move(bytes), line_no});
        } catch (const Error& e) {
            fail("{}:{}: {}", path, line_no, e.what());
        }
    }
    // Same bytes under two ids would make greedy matching ambiguous.
    entry_of_bytes.reserve(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto [it, fresh] = entry_of_bytes.emplace(entries[i].bytes, i);
        if (!fresh)
            fail("{}:{}: id {} repeats the bytes of id {} (line {})", path, entries[i].line,
                 entries[i].id, entries[it->second].id, entries[it->second].line);
    }
    if (entries.empty()) fail("{}: no vocabulary entries", path);
    return entries;
}

}  // namespace goose::text
