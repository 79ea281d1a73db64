// `goose tokenize`: encode a file to token ids (printed, text or .npy int32) or decode ids (.npy
// or text) back to bytes, with the World or byte-level tokenizer.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "goose/text/tokenizer.h"

namespace goose::text {

struct TokenizeConfig {
    std::string in;   // the text to encode, or the ids to decode
    std::string out;  // empty: stdout; *.npy: int32 array; else text ids / bytes
    bool decode = false;
    std::string tokenizer = "world";  // world | byte
    std::string vocab;                // World vocabulary (else $GOOSE_VOCAB, else beside model)
    std::string model;                // only used to find the vocabulary beside it
};

// The tokenizer a command asked for: "world" (through find_world_vocab) or "byte".
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, const std::string& vocab,
                                          const std::string& model);

// Token ids from a .npy (integer dtype, any shape, flattened) or a text file of integers
// separated by whitespace or commas. goose::Error naming the file and the bad entry.
std::vector<int32_t> read_token_ids(const std::string& path);

void run_tokenize(const TokenizeConfig& cfg);

}  // namespace goose::text
