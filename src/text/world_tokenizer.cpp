// The RWKV World tokenizer: greedy longest match through a double-array byte trie (spec §11).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "goose/core/error.h"
#include "goose/io/atomic_file.h"
#include "goose/text/tokenizer.h"
#include "text/byte_trie.h"
#include "text/world_vocab.h"

namespace goose::text {

namespace {

constexpr const char* kWorldVocabName = "rwkv_vocab_v20230424.txt";
constexpr uint32_t kCopySlack = 16;

std::vector<std::pair<std::string, int32_t>> trie_keys(const std::vector<VocabEntry>& entries) {
    std::vector<std::pair<std::string, int32_t>> keys;
    keys.reserve(entries.size());
    for (const auto& e : entries) keys.emplace_back(e.bytes, e.id);
    return keys;
}

class WorldTokenizer final : public Tokenizer {
  public:
    WorldTokenizer(const std::vector<VocabEntry>& entries, const std::string& path)
        : trie_(trie_keys(entries)) {
        int32_t max_id = 0;
        for (const auto& e : entries) max_id = std::max(max_id, e.id);
        offsets_.assign(static_cast<size_t>(max_id) + 2, 0);
        for (const auto& e : entries) offsets_[e.id + 1] = static_cast<uint32_t>(e.bytes.size());
        for (size_t i = 1; i < offsets_.size(); ++i) offsets_[i] += offsets_[i - 1];
        bytes_.resize(offsets_.back() + kCopySlack);  // slack: decode copies 16 bytes at once
        for (const auto& e : entries) bytes_.replace(offsets_[e.id], e.bytes.size(), e.bytes);
        // Every single byte must be a token, so that any input encodes.
        for (int b = 0; b < 256; ++b) {
            const char c = static_cast<char>(b);
            if (trie_.longest_prefix(std::string_view(&c, 1), 0).second != 1)
                fail(
                    "{}: the vocabulary has no token for the single byte 0x{:02X}; every byte "
                    "needs one so that any input can be encoded",
                    path, b);
        }
    }

    std::vector<int32_t> encode(std::string_view text) const override {
        std::vector<int32_t> ids;
        ids.reserve(text.size() / 3 + 16);
        for (size_t pos = 0; pos < text.size();) {
            const auto [id, length] = trie_.longest_prefix(text, pos);
            ids.push_back(id);  // length >= 1: every byte is a token
            pos += length;
        }
        return ids;
    }

    std::string decode(std::span<const int32_t> ids) const override {
        size_t total = 0;
        const auto n_ids = static_cast<int64_t>(offsets_.size()) - 1;
        for (size_t i = 0; i < ids.size(); ++i) {
            const int32_t id = ids[i];
            if (id < 0 || id >= n_ids)
                fail("token id {} at position {} is outside [0, {}) of the world tokenizer", id, i,
                     n_ids);
            const uint32_t length = offsets_[id + 1] - offsets_[id];
            if (length == 0 && id != 0)
                fail("token id {} at position {} is not in the world vocabulary", id, i);
            total += length;
        }
        std::string out(total + kCopySlack, '\0');
        char* dst = out.data();
        for (const int32_t id : ids) {
            const uint32_t a = offsets_[id], length = offsets_[id + 1] - a;
            if (length <= kCopySlack)
                std::memcpy(dst, bytes_.data() + a, kCopySlack);  // fixed size: no library call
            else
                std::memcpy(dst, bytes_.data() + a, length);
            dst += length;
        }
        out.resize(total);
        return out;
    }

    int64_t vocab_size() const override { return static_cast<int64_t>(offsets_.size()) - 1; }
    std::string name() const override { return "world"; }

  private:
    ByteTrie trie_;
    std::vector<uint32_t> offsets_;  // token id's bytes are bytes_[offsets_[id], offsets_[id+1])
    std::string bytes_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_world_tokenizer(const std::string& vocab_path) {
    const std::string text = io::read_file(vocab_path);
    return std::make_unique<WorldTokenizer>(parse_world_vocab(text, vocab_path), vocab_path);
}

std::string find_world_vocab(const std::string& explicit_path, const std::string& model_path) {
    namespace fs = std::filesystem;
    if (!explicit_path.empty()) {
        if (!fs::is_regular_file(explicit_path))
            fail("the vocabulary '{}' (--vocab) does not exist or is not a file", explicit_path);
        return explicit_path;
    }
    const char* env = std::getenv("GOOSE_VOCAB");
    if (env && *env) {
        if (!fs::is_regular_file(env))
            fail("the vocabulary GOOSE_VOCAB='{}' does not exist or is not a file", env);
        return env;
    }
    std::string beside = "(no model given)";
    if (!model_path.empty()) {
        const fs::path p = fs::path(model_path).parent_path() / kWorldVocabName;
        if (fs::is_regular_file(p)) return p.string();
        beside = p.string() + " (not found)";
    }
    fail(
        "no World vocabulary found; tried: --vocab (not given), $GOOSE_VOCAB (not set), beside "
        "the model: {}. Pass --vocab PATH/{} or set GOOSE_VOCAB",
        beside, kWorldVocabName);
}

}  // namespace goose::text
