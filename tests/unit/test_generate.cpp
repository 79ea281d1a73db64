// generate() over a small random RWKV-7 engine: streamed pieces are valid UTF-8 and make the text,
// the state covers every sampled token, cancellation (callback, flag, chat's SIGINT path),
// end of document, errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <thread>

#include "common/expect_error.h"
#include "goose/infer/generate.h"
#include "goose/infer/generate_cli.h"
#include "goose/models/rwkv7_checkpoint.h"

namespace goose::infer {
namespace {

using test::expect_error;

// Random weights; `head_row(id)` > 0 gives that id's head row the constant value (ln_out's bias is
// 1, so such rows get a large logit when positive, a very negative one when negative).
std::unique_ptr<models::Rwkv7> random_model(uint64_t seed, float (*head_row)(int64_t) = nullptr) {
    auto m = std::make_unique<models::Rwkv7>(models::Rwkv7Config::with_defaults(257, 2, 64, 32));
    Rng rng(seed);
    m->init_official(rng);
    for (auto& [n, p] : m->named_parameters())
        p.value_mut().copy_(Tensor::randn(p.shape(), rng, DType::f32, 0, 0.1));
    if (head_row) {
        m->ln_out->bias.value_mut().copy_(Tensor::full(Shape{64}, 1.0));
        float* h = m->head->weight.value_mut().data<float>();
        for (int64_t id = 0; id < 257; ++id) {
            const float v = head_row(id);
            if (v != 0)
                for (int64_t c = 0; c < 64; ++c) h[id * 64 + c] = v;
        }
    }
    return m;
}

bool valid_utf8(const std::string& s) {
    text::Utf8Stream u;
    return u.push(s) + u.flush() == s;
}

double max_diff(const models::Rwkv7State& a, const models::Rwkv7State& b) {
    double worst = 0;
    auto cmp = [&](const std::vector<Tensor>& x, const std::vector<Tensor>& y) {
        for (size_t l = 0; l < x.size(); ++l) {
            const auto u = x[l].to_vector(), v = y[l].to_vector();
            for (size_t i = 0; i < u.size(); ++i) worst = std::max(worst, std::abs(u[i] - v[i]));
        }
    };
    cmp(a.att_shift, b.att_shift);
    cmp(a.wkv, b.wkv);
    cmp(a.ffn_shift, b.ffn_shift);
    return worst;
}

class Generate : public ::testing::Test {
protected:
    void SetUp() override {
        model_ = random_model(1);
        engine_ = std::make_unique<Rwkv7Engine>(*model_, EngineOptions{});
        tok_ = text::make_byte_tokenizer();
    }
    std::unique_ptr<models::Rwkv7> model_;
    std::unique_ptr<Rwkv7Engine> engine_;
    std::unique_ptr<text::Tokenizer> tok_;
};

TEST_F(Generate, PiecesAreValidUtf8AndMakeTheText) {
    // An unbiased byte model emits many invalid sequences: they must arrive as U+FFFD.
    GenerateOptions opt;
    opt.max_tokens = 60;
    opt.sampler.seed = 2;
    opt.stop_at_end_of_doc = false;
    auto state = engine_->new_state();
    std::vector<std::string> pieces;
    const GenerateResult r = generate(*engine_, *tok_, state, "ab", opt, [&](std::string_view p) {
        pieces.emplace_back(p);
        return true;
    });
    EXPECT_EQ(r.finish, FinishReason::length);
    EXPECT_EQ(r.prompt_tokens, 2);
    EXPECT_EQ(r.completion_tokens, 60);
    ASSERT_EQ(r.tokens.size(), 60u);
    std::string joined;
    for (const auto& p : pieces) {
        EXPECT_FALSE(p.empty());
        EXPECT_TRUE(valid_utf8(p)) << p;
        joined += p;
    }
    EXPECT_EQ(joined, r.text);
    text::Utf8Stream u;
    EXPECT_EQ(u.push(tok_->decode(r.tokens)) + u.flush(), r.text);
    // Same seed, fresh state: the same tokens.
    auto state2 = engine_->new_state();
    EXPECT_EQ(generate(*engine_, *tok_, state2, "ab", opt).tokens, r.tokens);
}

TEST_F(Generate, TheStateCoversEverySampledToken) {
    GenerateOptions opt;
    opt.max_tokens = 12;
    opt.sampler.seed = 4;
    opt.stop_at_end_of_doc = false;
    const std::vector<int32_t> prompt = {5, 6, 7};
    for (bool absorb : {true, false}) {
        opt.absorb_last_token = absorb;
        auto state = engine_->new_state();
        const GenerateResult r = generate(*engine_, *tok_, state, prompt, opt);
        std::vector<int32_t> all = prompt;
        all.insert(all.end(), r.tokens.begin(), r.tokens.end() - (absorb ? 0 : 1));
        auto ref = engine_->new_state();
        std::vector<float> logits(257);
        engine_->prefill(all, ref, logits);
        EXPECT_LT(max_diff(state, ref), 1e-4) << "absorb " << absorb;
    }
    // max_tokens 0: only the prompt.
    opt.max_tokens = 0;
    auto state = engine_->new_state(), ref = engine_->new_state();
    const GenerateResult r = generate(*engine_, *tok_, state, prompt, opt);
    EXPECT_TRUE(r.tokens.empty());
    std::vector<float> logits(257);
    engine_->prefill(prompt, ref, logits);
    EXPECT_LT(max_diff(state, ref), 1e-6);
}

TEST_F(Generate, CancellingStopsAtOnce) {
    GenerateOptions opt;
    opt.max_tokens = 200;
    opt.stop_at_end_of_doc = false;
    opt.sampler.temperature = 0.5;
    auto state = engine_->new_state();
    int calls = 0;
    GenerateResult r = generate(*engine_, *tok_, state, "x", opt, [&](std::string_view) {
        return ++calls < 2;
    });
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(r.finish, FinishReason::cancelled);
    EXPECT_LT(r.completion_tokens, 200);
    std::atomic<bool> cancel{true};
    opt.cancel = &cancel;
    r = generate(*engine_, *tok_, state, "x", opt);
    EXPECT_EQ(r.finish, FinishReason::cancelled);
    EXPECT_EQ(r.completion_tokens, 0);
    EXPECT_STREQ(finish_reason_name(r.finish), "cancelled");
}

TEST_F(Generate, EndOfDocumentAndStopStrings) {
    // Token 0 dominates: the text ends at once with "stop".
    auto eod = random_model(3, [](int64_t id) { return id == 0 ? 0.5f : 0.f; });
    Rwkv7Engine e(*eod, EngineOptions{});
    auto state = e.new_state();
    GenerateOptions opt;
    GenerateResult r = generate(e, *tok_, state, "hi", opt);
    EXPECT_EQ(r.finish, FinishReason::stop);
    EXPECT_EQ(r.tokens, std::vector<int32_t>{0});
    EXPECT_EQ(r.text, "");
    EXPECT_EQ(r.stop_sequence, "");
    EXPECT_STREQ(finish_reason_name(r.finish), "stop");
    // Only 'a' (id 98) and 'b' (id 99) possible: a stop string "ab" or "ba" comes soon.
    auto ab = random_model(4, [](int64_t id) { return id == 98 || id == 99 ? 0.f : -0.5f; });
    Rwkv7Engine e2(*ab, EngineOptions{});
    state = e2.new_state();
    opt.stop = {"ab", "ba"};
    opt.max_tokens = 100;
    r = generate(e2, *tok_, state, "hi", opt);
    ASSERT_EQ(r.finish, FinishReason::stop) << r.text;
    EXPECT_TRUE(r.stop_sequence == "ab" || r.stop_sequence == "ba");
    const std::string all = tok_->decode(r.tokens);
    EXPECT_EQ(all, r.text + r.stop_sequence);
    EXPECT_TRUE(r.text.find_first_not_of(r.text.empty() ? ' ' : r.text[0]) == std::string::npos);
}

TEST_F(Generate, BadInputIsAClearError) {
    auto state = engine_->new_state();
    GenerateOptions opt;
    expect_error([&] { generate(*engine_, *tok_, state, "", opt); }, "prompt is empty");
    expect_error([&] { generate(*engine_, *tok_, state, std::vector<int32_t>{1, 257}, opt); },
                 {"prompt token 1", "id 257", "[0, 257)"});
    opt.stop = {"\xff"};
    expect_error([&] { generate(*engine_, *tok_, state, "x", opt); }, "not valid UTF-8");
    opt.stop = {};
    opt.max_tokens = -1;
    expect_error([&] { generate(*engine_, *tok_, state, "x", opt); }, "max_tokens");
    opt.max_tokens = 3;
    opt.sampler.top_p = std::nan("");
    expect_error([&] { generate(*engine_, *tok_, state, "x", opt); }, "top_p");
    opt.sampler.top_p = 1;
    auto batch2 = models::Rwkv7State::zeros(model_->config(), 2);
    expect_error([&] { generate(*engine_, *tok_, batch2, "x", opt); }, "batch 1");
    expect_error([] { unescape("a\\q"); }, "unknown escape \\q");
    EXPECT_EQ(unescape("a\\n\\t\\x41\\\\"), "a\n\tA\\");
}

TEST(Chat, InterruptStopsTheReplyAndTheConversationGoesOn) {
    // Printable ASCII but no newline: a reply never ends by itself before max_tokens.
    auto m = random_model(7, [](int64_t id) { return id >= 33 && id <= 127 ? 0.f : -0.5f; });
    const auto dir = std::filesystem::temp_directory_path() / ("goose_chat_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "m.pth").string();
    models::save_rwkv7(*m, path, DType::f32);
    GenerateCliConfig cfg;
    cfg.model = path;
    cfg.max_tokens = 1000000;
    std::istringstream in("Hello\nAgain\n");
    std::ostringstream out, err;
    std::atomic<bool> interrupt{false}, replying{false}, done{false};
    std::thread ctrl_c([&] {
        while (!done) {
            if (replying && !interrupt) {
                std::this_thread::sleep_for(std::chrono::milliseconds(30));
                interrupt = true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    run_chat(cfg, in, out, err, false, {&interrupt, &replying});
    done = true;
    ctrl_c.join();
    std::filesystem::remove_all(dir);
    const std::string o = out.str(), e = err.str();
    size_t replies = 0;
    for (size_t at = o.find("Assistant:"); at != std::string::npos; at = o.find("Assistant:", at + 1))
        ++replies;
    EXPECT_EQ(replies, 2u) << o;
    size_t stopped = 0;
    for (size_t at = e.find("[reply stopped"); at != std::string::npos; at = e.find("[reply stopped", at + 1))
        ++stopped;
    EXPECT_EQ(stopped, 2u) << e;
}

}  // namespace
}  // namespace goose::infer
