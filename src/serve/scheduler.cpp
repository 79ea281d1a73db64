// The continuous-batching scheduler: slots, the worker loop, per-slot sampling and streaming.
#include "serve/scheduler.h"

#include <algorithm>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "goose/core/error.h"
#include "goose/infer/stop.h"

namespace goose::serve {

// ---- Job --------------------------------------------------------------------------------------

bool Job::take(std::vector<JobEvent>& out, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
    while (!events_.empty()) {
        out.push_back(std::move(events_.front()));
        events_.pop_front();
    }
    return true;
}

void Job::push(JobEvent ev) {
    {
        std::lock_guard lock(mu_);
        if (finished_.load()) return;  // nothing follows the last event
        if (ev.kind != JobEvent::Kind::text) finished_.store(true);
        events_.push_back(std::move(ev));
    }
    cv_.notify_all();
}

namespace {

JobEvent error_event(int status, const std::string& message, const std::string& type) {
    JobEvent ev;
    ev.kind = JobEvent::Kind::error;
    ev.error = ApiError{status, message, type, "", ""};
    return ev;
}

}  // namespace

// ---- the scheduler ----------------------------------------------------------------------------

struct Scheduler::Slot {
    int index = 0;
    std::shared_ptr<Job> job;  // null: free
    size_t prefilled = 0;      // prompt tokens already in the state
    int32_t pending = -1;      // sampled, to be decoded next step (-1: still prefilling)
    int64_t generated = 0;
    bool trimming = false;
    std::optional<infer::Sampler> sampler;
    std::optional<infer::StopMatcher> stops;
    text::Utf8Stream utf8;
    std::optional<JobEvent> error;  // set while processing logits in parallel
};

Scheduler::Scheduler(BatchModel& model, const text::Tokenizer& tokenizer, SchedulerOptions opt)
    : model_(model), tokenizer_(tokenizer), opt_(opt) {
    GOOSE_ASSERT(model_.slots() >= 1 && opt_.prefill_chunk >= 1, "bad scheduler options");
    decodable_ = std::min(model_.vocab(), tokenizer_.vocab_size());
    for (int i = 0; i < model_.slots(); ++i) {
        slots_.push_back(std::make_unique<Slot>());
        slots_.back()->index = i;
    }
    stats_.slots_total = model_.slots();
    logits_.resize(static_cast<size_t>(model_.slots() * model_.vocab()));
    worker_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { stop(); }

std::shared_ptr<Job> Scheduler::submit(JobSpec spec) {
    GOOSE_ASSERT(!spec.prompt.empty() && spec.max_tokens >= 1, "job spec not validated");
    auto job = std::make_shared<Job>(std::move(spec));
    {
        std::lock_guard lock(mu_);
        if (closed_ || stopping_)
            throw ApiException(
                ApiError{503, "the server is shutting down", "server_error", "", "shutting_down"});
        if (static_cast<int64_t>(queue_.size()) >= opt_.max_queue)
            throw ApiException(ApiError{
                503,
                fmt::format("the server is busy: {} requests are waiting for one of {} slots; "
                            "retry later",
                            queue_.size(), slots_.size()),
                "server_error", "", "queue_full"});
        queue_.push_back(job);
        stats_.queued = static_cast<int64_t>(queue_.size());
    }
    cv_.notify_all();
    return job;
}

void Scheduler::close() {
    std::lock_guard lock(mu_);
    closed_ = true;
}

void Scheduler::cancel_all(const std::string& why) {
    std::lock_guard lock(mu_);
    for (auto& job : queue_) {
        job->push(error_event(503, why, "server_error"));
        ++stats_.failed;
    }
    queue_.clear();
    stats_.queued = 0;
    // Active jobs: the worker sees the cancel at its next step; the error event goes out now.
    for (auto& s : slots_)
        if (s->job) {
            s->job->push(error_event(503, why, "server_error"));
            s->job->cancel();
        }
    cv_.notify_all();
}

void Scheduler::stop() {
    std::lock_guard stop_lock(stop_mu_);
    if (!worker_.joinable()) return;
    {
        std::lock_guard lock(mu_);
        closed_ = true;
    }
    cancel_all("the server is shutting down");
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
}

bool Scheduler::idle() const {
    std::lock_guard lock(mu_);
    return queue_.empty() && stats_.slots_active == 0;
}

bool Scheduler::wait_idle(std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline,
                          [&] { return queue_.empty() && stats_.slots_active == 0; });
}

SchedulerStats Scheduler::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

void Scheduler::run() {
    while (true) {
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || stats_.slots_active > 0; });
            if (stopping_) break;
        }
        admit();
        drop_cancelled();
        prefill_step();
        decode_step();
        drop_cancelled();
    }
    // Whatever is left ends now (stop() already sent the error events).
    std::lock_guard lock(mu_);
    for (auto& s : slots_) s->job.reset();
    stats_.slots_active = 0;
    cv_.notify_all();
}

void Scheduler::admit() {
    std::lock_guard lock(mu_);
    for (auto& s : slots_) {
        if (queue_.empty()) break;
        if (s->job) continue;
        std::shared_ptr<Job> job = std::move(queue_.front());
        queue_.pop_front();
        if (job->cancelled()) {  // gone before it got a slot
            JobEvent ev;
            ev.kind = JobEvent::Kind::done;
            ev.finish_reason = "cancelled";
            job->push(std::move(ev));
            ++stats_.cancelled;
            continue;
        }
        const JobSpec& spec = job->spec();
        try {
            s->sampler.emplace(spec.sampler, model_.vocab());
            s->stops.emplace(spec.stop);
            model_.reset(s->index);
        } catch (const std::exception& e) {
            job->push(error_event(400, e.what(), "invalid_request_error"));
            ++stats_.failed;
            continue;
        }
        s->job = std::move(job);
        s->prefilled = 0;
        s->pending = -1;
        s->generated = 0;
        s->trimming = spec.trim_leading_space;
        s->utf8 = text::Utf8Stream();
        s->error.reset();
        ++stats_.slots_active;
    }
    stats_.queued = static_cast<int64_t>(queue_.size());
    cv_.notify_all();
}

void Scheduler::finish(Slot& s, JobEvent ev) {
    std::lock_guard lock(mu_);
    if (!s.job) return;
    if (ev.kind == JobEvent::Kind::done) {
        ev.prompt_tokens = static_cast<int64_t>(s.job->spec().prompt.size());
        ev.completion_tokens = s.generated;
        if (ev.finish_reason == "cancelled")
            ++stats_.cancelled;
        else
            ++stats_.completed;
    } else {
        ++stats_.failed;
    }
    s.job->push(std::move(ev));
    s.job.reset();
    s.sampler.reset();
    s.stops.reset();
    --stats_.slots_active;
    cv_.notify_all();
}

void Scheduler::drop_cancelled() {
    for (auto& s : slots_) {
        if (!s->job || !s->job->cancelled()) continue;
        JobEvent ev;
        ev.kind = JobEvent::Kind::done;
        ev.finish_reason = "cancelled";
        finish(*s, std::move(ev));
    }
}

void Scheduler::prefill_step() {
    const size_t n = slots_.size();
    int64_t budget = opt_.prefill_chunk;
    const int64_t V = model_.vocab();
    for (size_t k = 0; k < n && budget > 0; ++k) {
        Slot& s = *slots_[(prefill_cursor_ + k) % n];
        if (!s.job || s.pending >= 0) continue;
        const std::vector<int32_t>& prompt = s.job->spec().prompt;
        const size_t take = std::min(prompt.size() - s.prefilled, static_cast<size_t>(budget));
        std::span<float> logits(logits_.data() + static_cast<size_t>(s.index) * V,
                                static_cast<size_t>(V));
        try {
            model_.prefill(s.index, std::span<const int32_t>(prompt).subspan(s.prefilled, take),
                           logits);
        } catch (const std::exception& e) {
            finish(s, error_event(500, fmt::format("prefill failed: {}", e.what()),
                                  "server_error"));
            continue;
        }
        {
            std::lock_guard lock(mu_);
            stats_.prompt_tokens += static_cast<int64_t>(take);
        }
        s.prefilled += take;
        budget -= static_cast<int64_t>(take);
        if (s.prefilled == prompt.size()) {
            after_logits(s, logits);
            if (s.error) finish(s, std::move(*s.error));
        } else {
            prefill_cursor_ = static_cast<size_t>(s.index);  // continue here next step
        }
    }
}

void Scheduler::decode_step() {
    std::vector<int> rows;
    std::vector<int32_t> tokens;
    for (auto& s : slots_)
        if (s->job && s->pending >= 0) {
            rows.push_back(s->index);
            tokens.push_back(s->pending);
        }
    if (rows.empty()) return;
    const int64_t V = model_.vocab();
    std::span<float> logits(logits_.data(), rows.size() * static_cast<size_t>(V));
    try {
        model_.decode(rows, tokens, logits);
    } catch (const std::exception& e) {
        for (int r : rows)
            finish(*slots_[static_cast<size_t>(r)],
                   error_event(500, fmt::format("decode failed: {}", e.what()), "server_error"));
        return;
    }
    {
        std::lock_guard lock(mu_);
        ++stats_.steps;
        stats_.decoded_rows += static_cast<int64_t>(rows.size());
    }
    const int64_t B = static_cast<int64_t>(rows.size());
    // Each slot samples from its own row: independent, so large rows run in parallel (small ones
    // cost less than waking the threads).
    const bool parallel = B > 1 && V >= 4096;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
    for (int64_t b = 0; b < B; ++b)
        after_logits(*slots_[static_cast<size_t>(rows[static_cast<size_t>(b)])],
                     logits.subspan(static_cast<size_t>(b * V), static_cast<size_t>(V)));
    for (int r : rows) {
        Slot& s = *slots_[static_cast<size_t>(r)];
        if (s.error) finish(s, std::move(*s.error));
    }
}

// Runs on one slot only (in parallel with other slots): touches the slot, its job's event queue
// (locked) and, through finish(), the shared counters (locked).
void Scheduler::after_logits(Slot& s, std::span<float> logits) {
    try {
        for (int64_t id = decodable_; id < static_cast<int64_t>(logits.size()); ++id)
            logits[static_cast<size_t>(id)] = -std::numeric_limits<float>::infinity();
        if (s.job->spec().ignore_eos) logits[0] = -std::numeric_limits<float>::infinity();
        const int32_t token = s.sampler->sample(logits);
        s.sampler->accept(token);
        ++s.generated;
        {
            std::lock_guard lock(mu_);
            ++stats_.completion_tokens;
        }
        auto emit = [&](std::string piece) {
            if (s.trimming) {
                const size_t start = piece.find_first_not_of(' ');
                piece = start == std::string::npos ? "" : piece.substr(start);
                if (!piece.empty()) s.trimming = false;
            }
            if (piece.empty()) return;
            JobEvent ev;
            ev.text = std::move(piece);
            s.job->push(std::move(ev));
        };
        JobEvent done;
        done.kind = JobEvent::Kind::done;
        if (token != 0) {
            emit(s.stops->push(s.utf8.push(tokenizer_.decode(std::span<const int32_t>(&token, 1)))));
            if (s.stops->stopped()) {
                done.finish_reason = "stop";
                finish(s, std::move(done));
                return;
            }
            if (s.generated < s.job->spec().max_tokens) {
                s.pending = token;
                return;
            }
            done.finish_reason = "length";
        } else {
            done.finish_reason = "stop";  // end of document
        }
        // The end of the text: what was held back (an incomplete character, a possible start of
        // a stop string) is text after all, unless it completes a stop string.
        emit(s.stops->push(s.utf8.flush()));
        if (!s.stops->stopped()) emit(s.stops->flush());
        if (s.stops->stopped()) done.finish_reason = "stop";
        finish(s, std::move(done));
    } catch (const std::exception& e) {
        s.error = error_event(500, fmt::format("sampling failed: {}", e.what()), "server_error");
    }
}

}  // namespace goose::serve
