// goose bench tokenize: World tokenizer encode and decode MB/s over the LAMBADA text, beside the
// independent Python reference (tests/reference/world_tokenizer_ref.py) on the same text, which
// must produce the same ids.
#pragma once
#include <string>

namespace goose::bench {

struct TokenizerBenchConfig {
    std::string vocab;        // empty: $GOOSE_VOCAB, else ../shared/data/ of the source tree
    std::string in;           // *.jsonl (the "text" of each line, joined by "\n") or raw text;
                              // empty: ../shared/data/lambada_test.jsonl of the source tree
    std::string peer_script;  // empty: tests/reference/world_tokenizer_ref.py of the source tree
    bool no_peer = false;
    int peer_reps = 1;  // the reference's encode repetitions (best taken)
};

void run_tokenizer_bench(const TokenizerBenchConfig& cfg);

}  // namespace goose::bench
