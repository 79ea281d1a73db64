// goose tokenize: text -> token ids (or ids -> text with --decode), World or byte tokenizer.
#include "commands.h"
#include "goose/text/tokenize_command.h"

namespace goose::cli {

void add_tokenize(CLI::App& app) {
    auto cfg = std::make_shared<text::TokenizeConfig>();
    auto* cmd = app.add_subcommand(
        "tokenize",
        "encode a file to token ids (printed, or --out ids.npy / ids.txt); --decode: ids to bytes");
    cmd->add_option("--in", cfg->in, "the text to encode, or with --decode the ids (.npy or text)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--out", cfg->out, "output file (default: stdout); *.npy: int32 ids");
    cmd->add_flag("--decode", cfg->decode, "read ids, write the bytes they stand for");
    cmd->add_option("--tokenizer", cfg->tokenizer, "world (default) or byte")
        ->check(CLI::IsMember({"world", "byte"}));
    cmd->add_option(
        "--vocab", cfg->vocab,
        "World vocabulary (default: $GOOSE_VOCAB, else rwkv_vocab_v20230424.txt beside --model)");
    cmd->add_option("--model", cfg->model, "model file, to find the vocabulary beside it");
    cmd->callback([cfg] { text::run_tokenize(*cfg); });
}

}  // namespace goose::cli
