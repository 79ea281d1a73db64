// World tokenizer throughput beside the Python reference, with an id-for-id agreement check.
#include "goose/bench/tokenizer_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "goose/bench/timer.h"
#include "goose/core/error.h"
#include "goose/io/atomic_file.h"
#include "goose/text/tokenizer.h"

namespace goose::bench {

namespace fs = std::filesystem;

namespace {

constexpr const char* kRefScript = "tests/reference/world_tokenizer_ref.py";

// The source tree this binary was built from (empty when it has no reference script, e.g. an
// installed binary run elsewhere).
fs::path source_tree() {
    std::error_code ec;
    const fs::path src = GOOSE_SOURCE_DIR;
    return fs::exists(src / kRefScript, ec) ? src : fs::path();
}

std::string shared_data(const fs::path& src, const char* name) {
    if (src.empty()) return {};
    const fs::path p = src.parent_path() / "shared" / "data" / name;
    return fs::exists(p) ? p.string() : std::string();
}

std::string load_text(const std::string& path, int64_t& pieces) {
    const std::string raw = io::read_file(path);
    if (path.size() < 6 || path.compare(path.size() - 6, 6, ".jsonl") != 0) {
        pieces = 1;
        return raw;
    }
    std::string text;
    pieces = 0;
    int64_t line_no = 0;
    for (size_t start = 0; start < raw.size();) {
        size_t end = raw.find('\n', start);
        if (end == std::string::npos) end = raw.size();
        const std::string_view line(raw.data() + start, end - start);
        start = end + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
            fail("{}:{}: expected a JSON object with a string field \"text\"", path, line_no);
        if (pieces++) text += '\n';
        text += j["text"].get<std::string>();
    }
    return text;
}

double seconds_since(std::chrono::steady_clock::time_point a) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

struct PeerResult {
    double encode_mbps = -1, decode_mbps = -1;
    std::vector<int32_t> ids;
    std::string why;  // set when the peer did not run
};

PeerResult run_peer(const std::string& script, const std::string& vocab, const std::string& text,
                    int reps) {
    PeerResult r;
    if (!fs::exists(script)) {
        r.why = script + " not found";
        return r;
    }
    if (!fs::exists("/usr/bin/python3")) {
        r.why = "/usr/bin/python3 not found";
        return r;
    }
    const fs::path dir = fs::temp_directory_path() / fmt::format("goose_tok_bench_{}", ::getpid());
    fs::create_directories(dir);
    const std::string in = (dir / "text.txt").string(), out = (dir / "ids.bin").string();
    io::write_file_atomic(in, text);
    const std::string cmd = fmt::format(
        "/usr/bin/python3 '{}' --vocab '{}' --in '{}' --out '{}' "
        "--reps {} 2>&1",
        script, vocab, in, out, reps);
    std::string log;
    if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[4096];
        while (size_t n = fread(buf, 1, sizeof buf, p)) log.append(buf, n);
        const int rc = pclose(p);
        std::smatch me, md;
        if (rc == 0 && std::regex_search(log, me, std::regex("ref_encode_mb_per_s ([0-9.]+)")) &&
            std::regex_search(log, md, std::regex("ref_decode_mb_per_s ([0-9.]+)"))) {
            r.encode_mbps = std::stod(me[1]);
            r.decode_mbps = std::stod(md[1]);
            const std::string bytes = io::read_file(out);
            r.ids.resize(bytes.size() / 4);
            std::memcpy(r.ids.data(), bytes.data(), r.ids.size() * 4);  // little-endian int32
        } else {
            r.why = "the reference failed: " + log.substr(0, 400);
        }
    } else {
        r.why = "could not start /usr/bin/python3";
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    return r;
}

}  // namespace

void run_tokenizer_bench(const TokenizerBenchConfig& cfg) {
    const fs::path src = source_tree();
    std::string vocab;
    if (!cfg.vocab.empty() || std::getenv("GOOSE_VOCAB")) {
        vocab = text::find_world_vocab(cfg.vocab, "");
    } else {
        vocab = shared_data(src, "rwkv_vocab_v20230424.txt");
        if (vocab.empty())
            fail(
                "bench tokenize: no World vocabulary: pass --vocab PATH/rwkv_vocab_v20230424.txt "
                "or set GOOSE_VOCAB");
    }
    const std::string in = cfg.in.empty() ? shared_data(src, "lambada_test.jsonl") : cfg.in;
    if (in.empty())
        fail("bench tokenize: no input text: pass --in FILE (.jsonl with \"text\" or raw)");
    int64_t pieces = 0;
    const std::string text = load_text(in, pieces);
    if (text.empty()) fail("bench tokenize: '{}' has no text", in);
    const double mb = static_cast<double>(text.size()) / 1e6;

    std::printf("goose bench tokenize: %s\n", machine_summary().c_str());
    std::printf("input %s: %lld passages, %.3f MB (MB = 10^6 bytes), one thread\n", in.c_str(),
                static_cast<long long>(pieces), mb);
    auto t0 = std::chrono::steady_clock::now();
    const auto tok = text::load_world_tokenizer(vocab);
    std::printf("vocabulary %s: %lld ids, loaded in %.1f ms\n", vocab.c_str(),
                static_cast<long long>(tok->vocab_size()), 1e3 * seconds_since(t0));

    std::vector<int32_t> ids;
    const Timing enc = time_fn([&] { ids = tok->encode(text); }, 1, 5, 1.0);
    std::string back;
    const Timing dec = time_fn([&] { back = tok->decode(ids); }, 1, 5, 1.0);
    if (back != text) fail("bench tokenize: decode(encode(text)) differs from the text");
    const double enc_mbps = mb / enc.median_s, dec_mbps = mb / dec.median_s;
    std::printf("  goose: %zu tokens (%.2f bytes/token), round trip exact\n", ids.size(),
                static_cast<double>(text.size()) / static_cast<double>(ids.size()));
    std::printf("  goose encode: median %.2f ms (min %.2f, max %.2f, %d reps)\n",
                1e3 * enc.median_s, 1e3 * enc.min_s, 1e3 * enc.max_s, enc.reps);
    std::printf("  goose decode: median %.2f ms (min %.2f, max %.2f, %d reps)\n",
                1e3 * dec.median_s, 1e3 * dec.min_s, 1e3 * dec.max_s, dec.reps);

    PeerResult peer;
    if (cfg.no_peer) {
        peer.why = "--no-peer";
    } else {
        const std::string script = cfg.peer_script.empty()
                                       ? (src.empty() ? std::string() : (src / kRefScript).string())
                                       : cfg.peer_script;
        std::printf("  running the Python reference (%s) ...\n", script.c_str());
        std::fflush(stdout);
        peer = run_peer(script, vocab, text, std::max(1, cfg.peer_reps));
    }
    std::printf("\n%-22s %14s %14s\n", "", "encode MB/s", "decode MB/s");
    std::printf("%-22s %14.2f %14.2f\n", "goose (C++)", enc_mbps, dec_mbps);
    if (peer.encode_mbps < 0) {
        std::printf("%-22s %14s %14s   (skipped: %s)\n", "python reference", "-", "-",
                    peer.why.c_str());
        return;
    }
    std::printf("%-22s %14.2f %14.2f\n", "python reference", peer.encode_mbps, peer.decode_mbps);
    std::printf("%-22s %13.1fx %13.1fx\n", "ratio goose / ref", enc_mbps / peer.encode_mbps,
                dec_mbps / peer.decode_mbps);
    if (peer.ids != ids) {
        size_t k = 0;
        while (k < ids.size() && k < peer.ids.size() && ids[k] == peer.ids[k]) ++k;
        fail(
            "bench tokenize: goose and the Python reference disagree at token {} of {} / {} "
            "(goose {}, reference {})",
            k, ids.size(), peer.ids.size(), k < ids.size() ? ids[k] : -1,
            k < peer.ids.size() ? peer.ids[k] : -1);
    }
    std::printf("ids: identical (%zu tokens)\n", ids.size());
}

}  // namespace goose::bench
