// goose generate / goose chat end to end on a small random RWKV-7 (vocabulary 257, byte
// tokenizer): reproducible output, greedy = the model's argmax, state files continue a run
// exactly, chat keeps and restores its state, bad input is a clear error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/run_cli.h"
#include "goose/io/atomic_file.h"
#include "goose/models/rwkv7_checkpoint.h"
#include "goose/models/rwkv7_state_io.h"

namespace goose {
namespace {

using Result = test::CliResult;

bool allowed_byte(int b) { return b == '\n' || (b >= 32 && b <= 126); }

// A random model whose head favours printable ASCII and '\n' by ~15 nats over every other id
// (token 0 included): ln_out's bias is a constant vector the other rows point away from.
void write_model(const std::string& path, int64_t n_layer, uint64_t seed) {
    models::Rwkv7 m(models::Rwkv7Config::with_defaults(257, n_layer, 64, 32));
    Rng rng(seed);
    m.init_official(rng);
    for (auto& [n, p] : m.named_parameters())
        p.value_mut().copy_(Tensor::randn(p.shape(), rng, DType::f32, 0, 0.1));
    m.ln_out->bias.value_mut().copy_(Tensor::full(Shape{64}, 1.0));
    Tensor& head = m.head->weight.value_mut();  // (257, 64)
    const Tensor rows = Tensor::randn(Shape{257, 64}, rng, DType::f32, 0, 0.3);
    float* h = head.data<float>();
    const float* r = rows.data<float>();
    for (int64_t id = 0; id < 257; ++id)
        for (int64_t c = 0; c < 64; ++c)
            h[id * 64 + c] = id >= 1 && allowed_byte(static_cast<int>(id - 1)) ? r[id * 64 + c]
                                                                               : -0.25f;
    models::save_rwkv7(m, path, DType::f32);
}

std::string ids_of(const std::string& bytes) {  // byte tokenizer: id = byte + 1
    std::string out;
    for (unsigned char b : bytes) {
        if (!out.empty()) out += ' ';
        out += std::to_string(b + 1);
    }
    return out;
}

class GenerateCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = std::filesystem::temp_directory_path() / ("goose_gen_" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        write_model(path("m.pth"), 2, 5);
        write_model(path("other.pth"), 1, 6);
        // The zero state of each model.
        for (auto [layers, name] : {std::pair{2, "zero.bin"}, std::pair{1, "other.bin"}}) {
            const auto cfg = models::Rwkv7Config::with_defaults(257, layers, 64, 32);
            models::save_rwkv7_state(path(name), models::Rwkv7State::zeros(cfg, 1), cfg);
        }
    }
    static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
    static std::string path(const std::string& n) { return (dir_ / n).string(); }

    struct Split {
        int code;
        std::string out, err;
    };
    // Runs goose with stdout and stderr apart (the summary line has timings).
    static Split run_split(const std::string& args) {
        const char* bin = std::getenv("GOOSE_BIN");
        const std::string o = path("stdout.txt"), e = path("stderr.txt");
        const std::string cmd =
            std::string(bin ? bin : "./goose") + " " + args + " >" + o + " 2>" + e;
        const int status = std::system(cmd.c_str());
        return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, io::read_file(o), io::read_file(e)};
    }
    static Split generate(const std::string& args) {
        return run_split("generate --model " + path("m.pth") + " " + args);
    }
    static std::filesystem::path dir_;
};
std::filesystem::path GenerateCli::dir_;

TEST_F(GenerateCli, SameSeedSameBytes) {
    const std::string args = "--prompt \"Once upon\" --max-tokens 40 --top-p 0.9 --top-k 50";
    const Split a = generate(args + " --seed 7"), b = generate(args + " --seed 7");
    ASSERT_EQ(a.code, 0) << a.err;
    ASSERT_EQ(b.code, 0) << b.err;
    EXPECT_EQ(a.out.size(), 40u) << a.out;  // every token is one printable byte here
    EXPECT_EQ(a.out, b.out);
    EXPECT_NE(a.err.find("40 generated"), std::string::npos) << a.err;
    EXPECT_NE(a.err.find("finish: length"), std::string::npos) << a.err;
    const Split c = generate(args + " --seed 8");
    ASSERT_EQ(c.code, 0) << c.err;
    EXPECT_NE(a.out, c.out);
    // Quiet: nothing on stderr; the weights option is accepted.
    const Split q = generate(args + " --seed 7 --quiet --weights f32");
    EXPECT_EQ(q.out, a.out);
    EXPECT_EQ(q.err, "");
}

TEST_F(GenerateCli, GreedyIsTheArgmaxOfTheModel) {
    auto model = models::load_rwkv7(path("m.pth"));
    models::Rwkv7State s = model->zero_state(1);
    std::string expected;
    Tensor logits;
    for (unsigned char b : std::string("Hello"))
        logits = model->step(Tensor::from(Shape{1}, {double(b + 1)}, DType::i64), s);
    for (int i = 0; i < 24; ++i) {
        const auto v = logits.to_vector();
        const int64_t best = std::max_element(v.begin(), v.end()) - v.begin();
        ASSERT_GT(best, 0);
        expected += static_cast<char>(best - 1);
        logits = model->step(Tensor::from(Shape{1}, {double(best)}, DType::i64), s);
    }
    const Split g = generate("--prompt Hello --temperature 0 --max-tokens 24 --quiet");
    ASSERT_EQ(g.code, 0) << g.err;
    EXPECT_EQ(g.out, expected);
    // Stop strings cut the text before them (the greedy text's 3rd..5th bytes as the stop).
    const std::string stop = expected.substr(3, 3);
    if (stop.find('"') == std::string::npos && stop.find('\\') == std::string::npos &&
        stop.find('$') == std::string::npos && stop.find('`') == std::string::npos) {
        const Split st = generate("--prompt Hello --temperature 0 --max-tokens 24 --stop \"" +
                                  stop + "\"");
        ASSERT_EQ(st.code, 0) << st.err;
        EXPECT_EQ(st.out, expected.substr(0, expected.find(stop))) << "stop '" << stop << "'";
        EXPECT_NE(st.err.find("finish: stop"), std::string::npos) << st.err;
    }
}

TEST_F(GenerateCli, StateOutThenInContinuesOneLongRun) {
    const Split a = generate("--prompt \"The cat\" --temperature 0 --max-tokens 10 --state-out " +
                             path("s.bin"));
    ASSERT_EQ(a.code, 0) << a.err;
    ASSERT_EQ(a.out.size(), 10u);
    EXPECT_NE(a.err.find("state saved to"), std::string::npos) << a.err;
    const std::string sampling = " --max-tokens 16 --temperature 0.8 --seed 3 --quiet";
    const Split b = generate("--state-in " + path("s.bin") + " --prompt \" and\"" + sampling);
    ASSERT_EQ(b.code, 0) << b.err;
    const Split whole =
        generate("--prompt-tokens \"" + ids_of("The cat" + a.out + " and") + "\"" + sampling);
    ASSERT_EQ(whole.code, 0) << whole.err;
    EXPECT_EQ(b.out.size(), 16u);
    EXPECT_EQ(b.out, whole.out);
    // --max-tokens 0 only runs the prompt: its state continues the same way.
    const Split p = generate("--prompt \"The cat\" --max-tokens 0 --quiet --state-out " +
                             path("p.bin"));
    ASSERT_EQ(p.code, 0) << p.err;
    EXPECT_EQ(p.out, "");
    const Split c = generate("--state-in " + path("p.bin") + " --prompt-tokens \"" +
                             ids_of(a.out + " and") + "\"" + sampling);
    ASSERT_EQ(c.code, 0) << c.err;
    EXPECT_EQ(c.out, whole.out);
}

TEST_F(GenerateCli, BadInputIsAClearError) {
    auto bad = [](const std::string& args, const std::string& part) {
        const Result r = test::run_goose(args);
        EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
        EXPECT_NE(r.out.find(part), std::string::npos) << args << "\n" << r.out;
        EXPECT_EQ(r.out.find("Aborted"), std::string::npos) << r.out;
    };
    const std::string gen = "generate --model " + path("m.pth") + " --prompt hi ";
    bad(gen + "--temperature nan", "temperature");
    bad(gen + "--top-p=-0.5", "top_p");
    bad(gen + "--top-k=-1", "top_k");
    bad(gen + "--top-a=-2", "top_a");
    bad(gen + "--presence-penalty inf", "presence_penalty");
    bad(gen + "--penalty-decay 2", "penalty_decay");
    bad(gen + "--max-tokens=-3", "max-tokens");
    bad(gen + "--stop \"\"", "stop string 1 is empty");
    bad(gen + "--tokenizer klingon", "klingon");
    bad(gen + "--weights f13", "f13");
    bad("generate --model " + path("m.pth") + " --prompt-tokens \"1 300\"",
        "token id 300 is out of range [0, 257)");
    // A state file of another model (1 layer instead of 2), and a file that is no state.
    bad(gen + "--state-in " + path("other.bin"), "belongs to another model");
    io::write_file_atomic(path("junk.bin"), "not a state");
    bad(gen + "--state-in " + path("junk.bin"), "not a Goose RWKV-7 state file");
    bad(gen + "--state-in " + path("missing.bin"), "missing.bin");
    bad("generate --model " + path("m.pth") + " --state-in " + path("zero.bin") + " --prompt \"\"",
        "needs at least one token");
}

TEST_F(GenerateCli, ChatKeepsSavesAndLoadsTheConversation) {
    {
        std::ofstream in(path("chat.txt"));
        in << "Hello there\n/save " << path("c1.bin") << "\nHow are you?\n/load " << path("c1.bin")
           << "\nHow are you?\n/reset\nHello there\n/bogus\n/quit\nnever read\n";
    }
    const Split r = run_split("chat --model " + path("m.pth") + " --temperature 0 --max-tokens 16 <" +
                              path("chat.txt"));
    ASSERT_EQ(r.code, 0) << r.err;
    // stdout: "Assistant:" + reply + "\n" per turn.
    std::vector<std::string> replies;
    for (size_t at = r.out.find("Assistant:"); at != std::string::npos;) {
        const size_t next = r.out.find("Assistant:", at + 10);
        std::string chunk = r.out.substr(at + 10, next == std::string::npos ? std::string::npos
                                                                             : next - at - 10);
        ASSERT_FALSE(chunk.empty());
        chunk.pop_back();  // the newline after each reply
        replies.push_back(chunk);
        at = next;
    }
    ASSERT_EQ(replies.size(), 4u) << r.out;
    EXPECT_EQ(replies[2], replies[1]);  // /load restored the state saved after turn 1
    EXPECT_EQ(replies[3], replies[0]);  // /reset went back to the start
    EXPECT_NE(r.err.find("saved to"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("loaded from"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("unknown command '/bogus'"), std::string::npos) << r.err;
    // Turn 2 continues turn 1: the same as generating from the whole transcript (the chat's
    // default penalties, greedy).
    const std::string transcript = "User: Hello there\n\nAssistant:" + replies[0] +
                                   "\n\nUser: How are you?\n\nAssistant:";
    const Split g = generate("--prompt-tokens \"" + ids_of(transcript) +
                             "\" --temperature 0 --max-tokens 16 --presence-penalty 0.5 "
                             "--frequency-penalty 0.5 --stop \"\\n\\n\" --quiet");
    ASSERT_EQ(g.code, 0) << g.err;
    EXPECT_EQ(g.out, replies[1]);
    // A state from another model is an error message, and the chat goes on.
    std::ofstream(path("chat2.txt")) << "/load " << path("other.bin") << "\nHi\n";
    const Split r2 = run_split("chat --model " + path("m.pth") + " --max-tokens 4 <" +
                               path("chat2.txt"));
    EXPECT_EQ(r2.code, 0) << r2.err;
    EXPECT_NE(r2.err.find("belongs to another model"), std::string::npos) << r2.err;
    EXPECT_NE(r2.out.find("Assistant:"), std::string::npos) << r2.out;
}

}  // namespace
}  // namespace goose
