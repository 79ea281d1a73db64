// goose bench ...: benchmarks that print our figure beside a peer or the hardware limit.
#include "commands.h"
#include "goose/bench/decode_bench.h"
#include "goose/bench/icl_bench.h"
#include "goose/bench/ops_bench.h"
#include "goose/bench/train_bench.h"
#include "goose/bench/tokenizer_bench.h"

namespace goose::cli {

void add_bench(CLI::App& app) {
    auto* bench = app.add_subcommand("bench", "benchmarks (our figure, the peer or hardware limit, the ratio)");
    bench->require_subcommand(1);
    auto cfg = std::make_shared<bench::OpsBenchConfig>();
    auto* ops = bench->add_subcommand("ops", "GFLOP/s of the models' matmul shapes vs the measured peak");
    ops->add_option("--threads", cfg->threads, "threads (default: all)")->check(CLI::Range(0, 1024));
    ops->add_flag("--quick", cfg->quick, "fewer repetitions");
    ops->add_option("--json", cfg->json_out, "also write the results as JSON");
    ops->callback([cfg] { bench::run_ops_bench(*cfg); });

    auto tr = std::make_shared<bench::TrainBenchConfig>();
    auto* train = bench->add_subcommand(
        "train", "RWKV-7 training tokens/s: CPU vs the PyTorch twin, or CUDA (tokens/s, MFU, peak "
                 "memory) vs the official trainer's H100 figures");
    train->alias("rwkv7-train");
    train->add_option("--model", tr->model, "model family (rwkv7)");
    train->add_option("--layers", tr->layers)->check(CLI::Range(1, 64));
    train->add_option("--dim", tr->dim)->check(CLI::Range(1, 8192));
    train->add_option("--head", tr->head, "head size")->check(CLI::Range(1, 256));
    train->add_option("--vocab", tr->vocab)->check(CLI::Range(2, 1 << 20));
    train->add_option("--ctx", tr->ctx)->check(CLI::Range(1, 1 << 16));
    train->add_option("--batch", tr->batch)->check(CLI::Range(1, 4096));
    train->add_option("--steps", tr->steps, "timed steps (after warm-up)")->check(CLI::Range(1, 1000));
    train->add_option("--device", tr->device, "cpu or cuda");
    train->add_option("--dtype", tr->dtype, "f32 or bf16 (default: f32 on cpu, bf16 on cuda)");
    train->add_option("--peer-script", tr->peer_script, "the CPU twin's timing script");
    train->add_flag("--no-peer", tr->no_peer, "time Goose only");
    train->add_flag("--checkpoint", tr->checkpoint,
                    "CUDA: activation checkpointing (blocks recomputed in the backward)");
    train->add_flag("--no-lean", tr->no_lean,
                    "CUDA: keep the time mix's token mixes for the backward instead of rebuilding "
                    "them (faster, more memory)");
    train->add_flag("--no-graph", tr->no_graph,
                    "CUDA: time eager steps instead of the default (the whole step captured in a "
                    "CUDA graph and replayed)");
    train->add_flag("--compare-eager", tr->compare_eager,
                    "CUDA: time eager steps too (graph / eager ratio) and the AdamW step alone");
    train->add_flag("--gemm-tune", tr->gemm_tune,
                    "CUDA: time several cuBLASLt algorithms per GEMM shape in the warm-up steps "
                    "and keep the fastest (GOOSE_GEMM_TUNE=0/1 overrides)");
    train->add_option("--grad-clip", tr->grad_clip,
                      "CUDA: clip the gradients to this global L2 norm before AdamW, as the "
                      "official recipe's grad_clip 1.0 (0: off)")
        ->check(kFinite)
        ->check(CLI::Range(0.0, 1e30));
    train->callback([tr] { bench::run_train_bench(*tr); });

    auto dc = std::make_shared<bench::DecodeBenchConfig>();
    auto* decode = bench->add_subcommand(
        "decode", "inference engine: decode and prefill tokens/s per weight format, effective "
                  "bandwidth vs copy bandwidth, logits vs f32");
    decode->add_option("--model", dc->model, "checkpoint (default: random weights of the shape below)");
    decode->add_option("--layers", dc->layers)->check(CLI::Range(1, 256));
    decode->add_option("--dim", dc->dim)->check(CLI::Range(1, 16384));
    decode->add_option("--head", dc->head, "head size")->check(CLI::Range(1, 256));
    decode->add_option("--vocab", dc->vocab)->check(CLI::Range(2, 1 << 22));
    decode->add_option("--formats", dc->formats, "weight formats of the matrices: f32,bf16,int8")
        ->delimiter(',');
    decode->add_option("--head-format", dc->head_format, "format of the head (default: as the matrices)");
    decode->add_option("--emb-format", dc->emb_format, "format of the embedding (default: as the matrices)");
    decode->add_option("--prompt-lengths", dc->prompt_lengths, "prefill lengths, e.g. 16,128,512")
        ->delimiter(',');
    decode->add_option("--batch", dc->batches, "decode batch sizes, e.g. 1,4")->delimiter(',');
    decode->add_option("--tokens", dc->tokens, "timed decode steps")->check(CLI::Range(1, 100000));
    decode->add_option("--accuracy-tokens", dc->accuracy_tokens, "fixed prompt length for the logit comparison")
        ->check(CLI::Range(1, 100000));
    decode->add_option("--threads", dc->threads, "threads (default: all)")->check(CLI::Range(0, 1024));
    decode->callback([dc] { bench::run_decode_bench(*dc); });

    auto tk = std::make_shared<bench::TokenizerBenchConfig>();
    auto* tokenize = bench->add_subcommand("tokenize", "World tokenizer encode/decode MB/s vs the Python reference");
    tokenize->add_option("--vocab", tk->vocab, "World vocabulary (default: $GOOSE_VOCAB, else ../shared/data/)");
    tokenize->add_option("--in", tk->in, "text: .jsonl (\"text\" fields) or raw (default: LAMBADA test)")
        ->check(CLI::ExistingFile);
    tokenize->add_option("--peer-script", tk->peer_script, "the Python reference tokenizer");
    tokenize->add_option("--peer-reps", tk->peer_reps, "the reference's encode repetitions")
        ->check(CLI::Range(1, 100));
    tokenize->add_flag("--no-peer", tk->no_peer, "time Goose only");
    tokenize->callback([tk] { bench::run_tokenizer_bench(*tk); });

    auto ic = std::make_shared<bench::IclTrainBenchConfig>();
    auto* icl = bench->add_subcommand(
        "icl-train", "ICL training steps/s of the default configuration vs the PyTorch twin");
    icl->add_option("--family", ic->family, "rwkv7, transformer, lstm or all")
        ->check(CLI::IsMember({"rwkv7", "transformer", "lstm", "all"}));
    icl->add_option("--steps", ic->steps, "timed steps per side")->check(CLI::Range(1, 100000));
    icl->add_option("--warmup", ic->warmup, "untimed steps per side")->check(CLI::Range(0, 1000));
    icl->add_option("--threads", ic->threads, "threads on both sides (default: all)")
        ->check(CLI::Range(0, 1024));
    icl->add_option("--peer-script", ic->peer_script, "the twin's timing script");
    icl->add_flag("--no-peer", ic->no_peer, "time Goose only");
    icl->callback([ic] { (void)bench::run_icl_train_bench(*ic); });
}

}  // namespace goose::cli
