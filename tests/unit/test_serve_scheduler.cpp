// The continuous-batching scheduler on a scripted fake model: outputs equal a request run alone,
// concurrent requests share decode steps, budgets / stop strings / end of document, cancellation
// frees the slot, a full queue is a 503, a failing model fails only its requests.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "goose/text/tokenizer.h"
#include "serve/scheduler.h"

namespace goose::serve {
namespace {

using namespace std::chrono_literals;

// Byte-level (V = 257) model whose greedy continuation is a fixed script: after n tokens (prompt
// included) the most likely next token is script[n % size] (byte + 1, or 0 for '\0').
class ScriptModel : public BatchModel {
public:
    ScriptModel(std::string script, int slots, std::chrono::microseconds step_time = 0us)
        : script_(std::move(script)), seen_(static_cast<size_t>(slots), 0), step_time_(step_time) {}
    int64_t vocab() const override { return 257; }
    int slots() const override { return static_cast<int>(seen_.size()); }
    void reset(int slot) override { seen_[static_cast<size_t>(slot)] = 0; }
    void prefill(int slot, std::span<const int32_t> tokens, std::span<float> logits) override {
        prefill_calls++;
        seen_[static_cast<size_t>(slot)] += static_cast<int64_t>(tokens.size());
        fill(slot, logits);
    }
    void decode(std::span<const int> slots, std::span<const int32_t> tokens,
                std::span<float> logits) override {
        if (fail_decode) throw std::runtime_error("the fake model failed");
        if (step_time_ > 0us) std::this_thread::sleep_for(step_time_);
        max_batch = std::max<int>(max_batch, static_cast<int>(slots.size()));
        for (size_t i = 0; i < slots.size(); ++i) {
            ++seen_[static_cast<size_t>(slots[i])];
            fill(slots[i], logits.subspan(i * 257, 257));
        }
    }
    std::atomic<int> max_batch{0}, prefill_calls{0};
    std::atomic<bool> fail_decode{false};

private:
    void fill(int slot, std::span<float> logits) {
        const unsigned char c = static_cast<unsigned char>(
            script_[static_cast<size_t>(seen_[static_cast<size_t>(slot)]) % script_.size()]);
        for (size_t i = 0; i < logits.size(); ++i) logits[i] = 0.f;
        logits[c == 0 ? 0 : c + 1u] = 10.f;
    }
    std::string script_;
    std::vector<int64_t> seen_;
    std::chrono::microseconds step_time_;
};

struct Outcome {
    std::string text;
    JobEvent last;
    int pieces = 0;
};

Outcome collect(Job& job) {
    Outcome o;
    std::vector<JobEvent> events;
    for (int i = 0; i < 2000; ++i) {
        events.clear();
        job.take(events, 10ms);
        for (JobEvent& ev : events) {
            if (ev.kind == JobEvent::Kind::text) {
                o.text += ev.text;
                ++o.pieces;
            } else {
                o.last = ev;
                return o;
            }
        }
    }
    ADD_FAILURE() << "the job never finished";
    return o;
}

JobSpec greedy(const std::string& prompt, int64_t max_tokens) {
    JobSpec s;
    for (unsigned char c : prompt) s.prompt.push_back(c + 1);
    s.sampler.temperature = 0;
    s.max_tokens = max_tokens;
    return s;
}

class SchedulerTest : public ::testing::Test {
protected:
    std::unique_ptr<text::Tokenizer> tok_ = text::make_byte_tokenizer();
};

TEST_F(SchedulerTest, GreedyOutputBudgetAndUsage) {
    ScriptModel model("abcdefghij", 2);
    Scheduler sched(model, *tok_);
    // Prompt of 3 tokens: the continuation starts at script[3].
    Outcome o = collect(*sched.submit(greedy("xyz", 5)));
    EXPECT_EQ(o.text, "defgh");
    EXPECT_EQ(o.last.kind, JobEvent::Kind::done);
    EXPECT_EQ(o.last.finish_reason, "length");
    EXPECT_EQ(o.last.prompt_tokens, 3);
    EXPECT_EQ(o.last.completion_tokens, 5);
    EXPECT_EQ(o.pieces, 5);  // streamed token by token
    const SchedulerStats s = sched.stats();
    EXPECT_EQ(s.completed, 1);
    EXPECT_EQ(s.slots_active, 0);
    EXPECT_EQ(s.completion_tokens, 5);
    EXPECT_EQ(s.prompt_tokens, 3);
    EXPECT_EQ(s.steps, 4);  // the first token comes from the prefill
}

TEST_F(SchedulerTest, StopStringsAndEndOfDocument) {
    ScriptModel model("abcdefghij", 1);
    Scheduler sched(model, *tok_);
    JobSpec spec = greedy("x", 20);
    spec.stop = {"ef"};
    Outcome o = collect(*sched.submit(spec));
    EXPECT_EQ(o.text, "bcd");
    EXPECT_EQ(o.last.finish_reason, "stop");
    EXPECT_EQ(o.last.completion_tokens, 5);  // b c d e f

    ScriptModel eos(std::string("hello\0", 6), 1);
    Scheduler sched2(eos, *tok_);
    o = collect(*sched2.submit(greedy("h", 20)));
    EXPECT_EQ(o.text, "ello");
    EXPECT_EQ(o.last.finish_reason, "stop");
    EXPECT_EQ(o.last.completion_tokens, 5);  // e l l o <end of document>
}

TEST_F(SchedulerTest, HeldBackTextIsFlushedAtTheEnd) {
    // "e" may start the stop string "ef": held back, then emitted when the budget ends there.
    ScriptModel model("abcdefghij", 1);
    Scheduler sched(model, *tok_);
    JobSpec spec = greedy("x", 4);
    spec.stop = {"ef"};
    Outcome o = collect(*sched.submit(spec));
    EXPECT_EQ(o.text, "bcde");
    EXPECT_EQ(o.last.finish_reason, "length");
}

TEST_F(SchedulerTest, MultiByteCharactersArriveWhole) {
    ScriptModel model("_\xC3\xA9\xE2\x82\xAC!", 1);  // "_é€!"
    Scheduler sched(model, *tok_);
    const Outcome o = collect(*sched.submit(greedy("_", 6)));
    EXPECT_EQ(o.text, "\xC3\xA9\xE2\x82\xAC!");
    EXPECT_EQ(o.pieces, 3);  // é, €, ! (one piece per complete character)
}

TEST_F(SchedulerTest, ChatRepliesLoseTheirLeadingSpaces) {
    ScriptModel model("   hi", 1);
    Scheduler sched(model, *tok_);
    JobSpec spec = greedy("_", 4);  // continuation "  hi"
    spec.trim_leading_space = true;
    EXPECT_EQ(collect(*sched.submit(spec)).text, "hi");
}

TEST_F(SchedulerTest, ConcurrentRequestsShareDecodeSteps) {
    ScriptModel model("0123456789", 4, 200us);
    Scheduler sched(model, *tok_);
    std::vector<std::shared_ptr<Job>> jobs;
    const std::vector<std::string> prompts = {"a", "bb", "ccc", "dddd", "eeeee", "f"};
    for (const auto& p : prompts) jobs.push_back(sched.submit(greedy(p, 30)));
    for (size_t i = 0; i < jobs.size(); ++i) {
        Outcome o = collect(*jobs[i]);
        // What the request gives alone: the script from its prompt length on.
        std::string expect;
        for (size_t k = 0; k < 30; ++k) expect += "0123456789"[(prompts[i].size() + k) % 10];
        EXPECT_EQ(o.text, expect) << "request " << i;
        EXPECT_EQ(o.last.completion_tokens, 30);
    }
    EXPECT_EQ(model.max_batch.load(), 4);  // never more rows than slots, and all of them used
    const SchedulerStats s = sched.stats();
    EXPECT_EQ(s.completed, 6);
    EXPECT_EQ(s.decoded_rows, 6 * 29);
    EXPECT_GT(static_cast<double>(s.decoded_rows) / s.steps, 2.0);
}

TEST_F(SchedulerTest, LongPromptsArePrefilledInChunks) {
    ScriptModel model("abc", 1);
    Scheduler sched(model, *tok_, SchedulerOptions{/*prefill_chunk=*/4, 8});
    Outcome o = collect(*sched.submit(greedy("0123456789", 2)));  // 10 tokens: 4 + 4 + 2
    EXPECT_EQ(model.prefill_calls.load(), 3);
    EXPECT_EQ(o.text, "bc");  // 10 % 3 = 1
}

TEST_F(SchedulerTest, CancelFreesTheSlotAndOthersGoOn) {
    ScriptModel model("abcdefghij", 2, 500us);
    Scheduler sched(model, *tok_);
    auto doomed = sched.submit(greedy("x", 100000));
    auto other = sched.submit(greedy("x", 50));
    std::vector<JobEvent> events;
    while (events.size() < 3) doomed->take(events, 100ms);  // it is generating
    doomed->cancel();
    const Outcome o = collect(*doomed);
    EXPECT_EQ(o.last.finish_reason, "cancelled");
    EXPECT_EQ(collect(*other).last.completion_tokens, 50);
    EXPECT_TRUE(sched.wait_idle(std::chrono::steady_clock::now() + 5s));
    const SchedulerStats s = sched.stats();
    EXPECT_EQ(s.slots_active, 0);
    EXPECT_EQ(s.cancelled, 1);
    EXPECT_EQ(s.completed, 1);
    // The freed slot serves again.
    EXPECT_EQ(collect(*sched.submit(greedy("x", 3))).text, "bcd");
}

TEST_F(SchedulerTest, FullQueueIsA503AndCancelAllEndsEverything) {
    ScriptModel model("ab", 1, 1000us);
    Scheduler sched(model, *tok_, SchedulerOptions{512, /*max_queue=*/1});
    auto running = sched.submit(greedy("x", 100000));
    std::vector<JobEvent> events;
    while (events.empty()) running->take(events, 100ms);  // admitted: the queue is empty again
    auto queued = sched.submit(greedy("x", 5));
    try {
        sched.submit(greedy("x", 5));
        ADD_FAILURE() << "a third request fit";
    } catch (const ApiException& e) {
        EXPECT_EQ(e.error().status, 503);
        EXPECT_EQ(e.error().code, "queue_full");
    }
    sched.cancel_all("going down");
    for (auto* job : {running.get(), queued.get()}) {
        const Outcome o = collect(*job);
        EXPECT_EQ(o.last.kind, JobEvent::Kind::error);
        EXPECT_EQ(o.last.error.status, 503);
        EXPECT_EQ(o.last.error.message, "going down");
    }
    EXPECT_TRUE(sched.wait_idle(std::chrono::steady_clock::now() + 5s));
    sched.close();
    EXPECT_THROW(sched.submit(greedy("x", 5)), ApiException);
}

TEST_F(SchedulerTest, AFailingModelFailsItsRequestsOnly) {
    ScriptModel model("abcdef", 2);
    Scheduler sched(model, *tok_);
    model.fail_decode = true;
    const Outcome o = collect(*sched.submit(greedy("x", 10)));
    EXPECT_EQ(o.last.kind, JobEvent::Kind::error);
    EXPECT_EQ(o.last.error.status, 500);
    EXPECT_NE(o.last.error.message.find("the fake model failed"), std::string::npos);
    model.fail_decode = false;
    EXPECT_EQ(collect(*sched.submit(greedy("x", 3))).text, "bcd");
    EXPECT_EQ(sched.stats().slots_active, 0);
}

TEST_F(SchedulerTest, SameSeedSameSample) {
    ScriptModel model("abcdefghij", 2);
    Scheduler sched(model, *tok_);
    JobSpec spec = greedy("x", 40);
    spec.sampler.temperature = 5;  // the script's peak no longer dominates
    spec.sampler.seed = 7;
    auto a = sched.submit(spec), b = sched.submit(spec);
    const std::string ta = collect(*a).text, tb = collect(*b).text;
    EXPECT_EQ(ta, tb);
    spec.sampler.seed = 8;
    EXPECT_NE(collect(*sched.submit(spec)).text, ta);
}

}  // namespace
}  // namespace goose::serve
