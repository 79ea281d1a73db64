// Continuous batching: one worker thread owns the model and serves requests in N slots. Each
// step it admits queued requests into free slots, prefills new slots (in chunks), then runs ONE
// batched decode over every slot that is generating; each slot has its own sampler, UTF-8 stream,
// stop matcher and token budget. Results flow to the requester through its Job's event queue,
// so the worker never waits for a client; a cancelled Job (client gone) frees its slot at the
// next step.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "goose/infer/sampler.h"
#include "goose/text/tokenizer.h"
#include "serve/api_error.h"

namespace goose::infer {
class Rwkv7Engine;
}

namespace goose::serve {

// What the scheduler needs from a model: per-slot recurrent state, a prefill into one slot, and
// a batched decode over several slots. Called from the worker thread only.
class BatchModel {
public:
    virtual ~BatchModel() = default;
    virtual int64_t vocab() const = 0;  // V: logits per row
    virtual int slots() const = 0;
    virtual void reset(int slot) = 0;   // the slot's state back to a sequence start
    // Advances the slot's state by `tokens` (>= 1); logits (V) of the last one.
    virtual void prefill(int slot, std::span<const int32_t> tokens, std::span<float> logits) = 0;
    // One step for each listed slot (distinct): tokens[i] advances slots[i]; logits (B, V).
    virtual void decode(std::span<const int> slots, std::span<const int32_t> tokens,
                        std::span<float> logits) = 0;
};

// The engine behind the BatchModel interface: one f32 state per slot.
std::unique_ptr<BatchModel> make_engine_model(infer::Rwkv7Engine& engine, int slots);

// One request as the scheduler runs it.
struct JobSpec {
    std::vector<int32_t> prompt;  // >= 1 token, ids in [0, V)
    infer::SamplerConfig sampler;
    int64_t max_tokens = 16;      // >= 1
    std::vector<std::string> stop;
    bool trim_leading_space = false;  // chat: drop the spaces that follow "Assistant:"
    bool ignore_eos = false;          // token 0 (end of document) is never sampled
};

struct JobEvent {
    enum class Kind { text, done, error };
    Kind kind = Kind::text;
    std::string text;           // text: a piece of valid UTF-8
    std::string finish_reason;  // done: "stop" | "length" | "cancelled"
    int64_t prompt_tokens = 0, completion_tokens = 0;  // done
    ApiError error;             // error
};

// A request in flight, shared by its HTTP handler (consumer) and the scheduler (producer).
class Job {
public:
    explicit Job(JobSpec spec) : spec_(std::move(spec)) {}
    const JobSpec& spec() const { return spec_; }

    // Moves every pending event into `out` (appended); waits up to `timeout` for the first.
    // False when none came.
    bool take(std::vector<JobEvent>& out, std::chrono::milliseconds timeout);
    // The client is gone or no longer interested: the scheduler drops the job at its next step.
    void cancel() { cancelled_.store(true); }
    bool cancelled() const { return cancelled_.load(); }
    // True once a done or error event was pushed.
    bool finished() const { return finished_.load(); }

    void push(JobEvent ev);  // scheduler side

private:
    JobSpec spec_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<JobEvent> events_;
    std::atomic<bool> cancelled_{false}, finished_{false};
};

struct SchedulerOptions {
    int64_t prefill_chunk = 512;  // prompt tokens prefilled per step (all slots together)
    int64_t max_queue = 64;       // requests waiting for a slot; more: 503
};

struct SchedulerStats {
    int slots_total = 0, slots_active = 0;
    int64_t queued = 0;
    int64_t completed = 0, cancelled = 0, failed = 0;
    int64_t prompt_tokens = 0, completion_tokens = 0;
    int64_t steps = 0, decoded_rows = 0;  // batched decode calls, rows over all of them
};

class Scheduler {
public:
    // Starts the worker. `model` and `tokenizer` must outlive the scheduler.
    Scheduler(BatchModel& model, const text::Tokenizer& tokenizer, SchedulerOptions opt = {});
    ~Scheduler();  // stop()
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Queues a request. ApiException 503 when the queue is full or the scheduler is closed.
    std::shared_ptr<Job> submit(JobSpec spec);
    // Refuses new requests from now on (draining before shutdown); queued and active ones go on.
    void close();
    // Ends every queued and active request with an error event (503, `why`).
    void cancel_all(const std::string& why);
    // cancel_all, then joins the worker. Idempotent.
    void stop();

    bool idle() const;  // nothing queued or active
    // Waits until idle() or the deadline; returns idle().
    bool wait_idle(std::chrono::steady_clock::time_point deadline) const;
    SchedulerStats stats() const;

private:
    struct Slot;
    void run();
    void admit();
    void drop_cancelled();
    void prefill_step();
    void decode_step();
    // Samples from the slot's logits, emits text, and finishes the job when it is done.
    void after_logits(Slot& s, std::span<float> logits);
    void finish(Slot& s, JobEvent ev);

    BatchModel& model_;
    const text::Tokenizer& tokenizer_;
    SchedulerOptions opt_;
    int64_t decodable_;  // ids >= this are never sampled (the tokenizer cannot decode them)

    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    std::mutex stop_mu_;  // one stop() at a time
    std::deque<std::shared_ptr<Job>> queue_;
    bool closed_ = false, stopping_ = false;
    SchedulerStats stats_;

    std::vector<std::unique_ptr<Slot>> slots_;  // worker-owned (slot.job read under mu_)
    size_t prefill_cursor_ = 0;                 // round-robin start among prefilling slots
    std::vector<float> logits_;                 // (slots, V)
    std::thread worker_;
};

}  // namespace goose::serve
