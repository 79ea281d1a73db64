// goose bench ...: benchmarks that print our figure beside a peer or the hardware limit.
#include "commands.h"
#include "goose/bench/icl_bench.h"
#include "goose/bench/ops_bench.h"
#include "goose/bench/rwkv7_bench.h"

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

    auto tr = std::make_shared<bench::Rwkv7TrainBenchConfig>();
    auto* train = bench->add_subcommand("rwkv7-train", "RWKV-7 CPU training tokens/s vs the PyTorch twin");
    train->add_option("--layers", tr->layers)->check(CLI::Range(1, 64));
    train->add_option("--dim", tr->dim)->check(CLI::Range(1, 8192));
    train->add_option("--head", tr->head)->check(CLI::Range(1, 256));
    train->add_option("--vocab", tr->vocab)->check(CLI::Range(2, 1 << 20));
    train->add_option("--ctx", tr->ctx)->check(CLI::Range(1, 1 << 16));
    train->add_option("--batch", tr->batch)->check(CLI::Range(1, 4096));
    train->add_option("--steps", tr->steps)->check(CLI::Range(1, 1000));
    train->add_option("--peer-script", tr->peer_script, "the twin's timing script");
    train->add_flag("--no-peer", tr->no_peer, "time Goose only");
    train->callback([tr] { bench::run_rwkv7_train_bench(*tr); });

    auto dc = std::make_shared<bench::Rwkv7DecodeBenchConfig>();
    auto* decode = bench->add_subcommand("rwkv7-decode", "RWKV-7 decode tokens/s and bandwidth vs copy bandwidth");
    decode->add_option("--layers", dc->layers)->check(CLI::Range(1, 64));
    decode->add_option("--dim", dc->dim)->check(CLI::Range(1, 8192));
    decode->add_option("--head", dc->head)->check(CLI::Range(1, 256));
    decode->add_option("--vocab", dc->vocab)->check(CLI::Range(2, 1 << 20));
    decode->add_option("--tokens", dc->tokens, "timed tokens")->check(CLI::Range(1, 100000));
    decode->callback([dc] { bench::run_rwkv7_decode_bench(*dc); });

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
