// goose tokenize: files in, ids or bytes out (written atomically).
#include "goose/text/tokenize_command.h"

#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "goose/core/error.h"
#include "goose/core/tensor.h"
#include "goose/io/atomic_file.h"
#include "goose/io/npy.h"

namespace goose::text {

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void write_stdout(std::string_view bytes) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() ||
        std::fflush(stdout) != 0)
        fail("cannot write to standard output");
}

std::string ids_as_text(const std::vector<int32_t>& ids) {
    fmt::memory_buffer buf;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i) buf.push_back(' ');
        fmt::format_to(std::back_inserter(buf), "{}", ids[i]);
    }
    buf.push_back('\n');
    return fmt::to_string(buf);
}

}  // namespace

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, const std::string& vocab,
                                          const std::string& model) {
    if (kind == "world") return load_world_tokenizer(find_world_vocab(vocab, model));
    if (kind == "byte") return make_byte_tokenizer();
    fail("unknown tokenizer '{}' (choices: world, byte)", kind);
}

std::vector<int32_t> read_token_ids(const std::string& path) {
    std::vector<int32_t> ids;
    if (ends_with(path, ".npy")) {
        const Tensor t = io::load_npy(path);
        if (t.dtype() != DType::i32 && t.dtype() != DType::i64 && t.dtype() != DType::u16 &&
            t.dtype() != DType::u8)
            fail("'{}': token ids must be integers (int32, int64, uint16 or uint8), not {}", path,
                 t.desc());
        const Tensor flat = t.to(DType::i64).contiguous();
        const int64_t* v = flat.data<int64_t>();
        ids.reserve(static_cast<size_t>(flat.numel()));
        for (int64_t i = 0; i < flat.numel(); ++i) {
            if (v[i] < INT32_MIN || v[i] > INT32_MAX)
                fail("'{}': token id {} at position {} does not fit in int32", path, v[i], i);
            ids.push_back(static_cast<int32_t>(v[i]));
        }
        return ids;
    }
    const std::string text = io::read_file(path);
    for (size_t pos = 0; pos < text.size();) {
        const char c = text[pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') {
            ++pos;
            continue;
        }
        size_t end = pos;
        while (end < text.size() && !std::strchr(" \t\n\r,", text[end])) ++end;
        const std::string_view word(text.data() + pos, end - pos);
        int32_t id = 0;
        const auto [stop, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
        if (ec != std::errc() || stop != word.data() + word.size())
            fail(
                "'{}': '{}' at byte offset {} is not a token id (expected integers separated by "
                "spaces, newlines or commas)",
                path, word.substr(0, 40), pos);
        ids.push_back(id);
        pos = end;
    }
    return ids;
}

void run_tokenize(const TokenizeConfig& cfg) {
    const auto tok = make_tokenizer(cfg.tokenizer, cfg.vocab, cfg.model);
    if (cfg.decode) {
        const std::vector<int32_t> ids = read_token_ids(cfg.in);
        const std::string bytes = tok->decode(ids);
        if (cfg.out.empty()) return write_stdout(bytes);
        io::write_file_atomic(cfg.out, bytes);
        std::printf("tokenize --decode: %zu tokens -> %zu bytes (%s tokenizer), written to %s\n",
                    ids.size(), bytes.size(), tok->name().c_str(), cfg.out.c_str());
        return;
    }
    const std::string text = io::read_file(cfg.in);
    const std::vector<int32_t> ids = tok->encode(text);
    if (cfg.out.empty()) return write_stdout(ids_as_text(ids));
    if (ends_with(cfg.out, ".npy")) {
        Tensor t = Tensor::empty(Shape{static_cast<int64_t>(ids.size())}, DType::i32);
        if (!ids.empty()) std::memcpy(t.data<int32_t>(), ids.data(), ids.size() * sizeof(int32_t));
        io::save_npy(cfg.out, t);
    } else {
        io::write_file_atomic(cfg.out, ids_as_text(ids));
    }
    std::printf(
        "tokenize: %zu bytes -> %zu tokens (%.2f bytes/token, %s tokenizer, %lld ids), "
        "written to %s\n",
        text.size(), ids.size(), ids.empty() ? 0.0 : double(text.size()) / ids.size(),
        tok->name().c_str(), static_cast<long long>(tok->vocab_size()), cfg.out.c_str());
}

}  // namespace goose::text
