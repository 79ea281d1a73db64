// Token sampling: penalties, the filters (top-k, top-p / top-p-x, top-a), temperature, the draw.
#include "goose/infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "goose/core/error.h"

namespace goose::infer {

namespace {

// Finite and >= lo, else a goose::Error naming the field.
void check_at_least(const char* field, double v, double lo, const char* what) {
    if (!std::isfinite(v) || v < lo) fail("sampler: {} must be {}, got {}", field, what, v);
}

void check_range(const char* field, double v, double lo, double hi, bool lo_open, const char* what) {
    const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
    if (!ok) fail("sampler: {} must be {}, got {}", field, what, v);
}

// Total order "more probable first, then lower id".
struct MoreProbable {
    std::span<const double> p;
    bool operator()(int32_t a, int32_t b) const { return p[a] != p[b] ? p[a] > p[b] : a < b; }
};

}  // namespace

void SamplerConfig::validate() const {
    check_at_least("temperature", temperature, 0, "a finite number >= 0 (0 = greedy)");
    if (top_k < 0) fail("sampler: top_k must be >= 0 (0 = off), got {}", top_k);
    check_range("top_p", top_p, 0, 1, true, "in (0, 1] (1 = off)");
    check_at_least("top_a", top_a, 0, "a finite number >= 0 (0 = off)");
    check_range("top_p_x", top_p_x, 0, 1, false, "in [0, 1] (0 = off)");
    if (!std::isfinite(presence_penalty))
        fail("sampler: presence_penalty must be a finite number, got {}", presence_penalty);
    if (!std::isfinite(frequency_penalty))
        fail("sampler: frequency_penalty must be a finite number, got {}", frequency_penalty);
    check_range("penalty_decay", penalty_decay, 0, 1, false, "in [0, 1]");
}

namespace sampling {

void apply_penalties(std::span<float> logits, std::span<const float> counts, double presence,
                     double frequency) {
    GOOSE_ASSERT(logits.size() == counts.size(), "{} logits, {} counts", logits.size(),
                 counts.size());
    for (size_t i = 0; i < logits.size(); ++i) {
        if (counts[i] <= 0) continue;
        logits[i] -= static_cast<float>(presence + frequency * counts[i]);
    }
}

void softmax(std::span<const float> logits, std::span<double> probs) {
    GOOSE_ASSERT(logits.size() == probs.size());
    const float mx = *std::max_element(logits.begin(), logits.end());
    double total = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
        probs[i] = logits[i] == -std::numeric_limits<float>::infinity()
                       ? 0.0
                       : std::exp(static_cast<double>(logits[i]) - mx);
        total += probs[i];
    }
    for (double& p : probs) p /= total;
}

void filter_top_k(std::span<const double> probs, int64_t k, std::span<uint8_t> keep,
                  std::vector<int32_t>& scratch) {
    const int64_t v = static_cast<int64_t>(probs.size());
    if (k <= 0 || k >= v) return;
    scratch.resize(probs.size());
    std::iota(scratch.begin(), scratch.end(), 0);
    std::nth_element(scratch.begin(), scratch.begin() + k, scratch.end(), MoreProbable{probs});
    for (auto it = scratch.begin() + k; it != scratch.end(); ++it) keep[*it] = 0;
}

void filter_top_p(std::span<const double> probs, double top_p, double top_p_x,
                  std::span<uint8_t> keep, std::vector<int32_t>& scratch) {
    if (top_p >= 1) return;
    scratch.clear();
    for (size_t i = 0; i < probs.size(); ++i)
        if (probs[i] > 0) scratch.push_back(static_cast<int32_t>(i));
    const size_t n = scratch.size();
    // Sort only as many of the most probable tokens as needed to reach top_p (usually few).
    double cutoff = -1;
    for (size_t m = std::min<size_t>(64, n);; m = std::min(4 * m, n)) {
        std::nth_element(scratch.begin(), scratch.begin() + static_cast<ptrdiff_t>(m) - 1,
                         scratch.end(), MoreProbable{probs});
        std::sort(scratch.begin(), scratch.begin() + static_cast<ptrdiff_t>(m),
                  MoreProbable{probs});
        double cum = 0;
        for (size_t j = 0; j < m && cutoff < 0; ++j) {
            cum += probs[scratch[j]];
            if (cum >= top_p) cutoff = probs[scratch[j]];
        }
        if (cutoff >= 0 || m == n) break;
    }
    if (cutoff < 0) return;  // the whole mass is below top_p only through rounding: keep all
    for (size_t i = 0; i < probs.size(); ++i)
        if (probs[i] < cutoff && !(top_p_x > 0 && probs[i] > top_p_x)) keep[i] = 0;
}

void filter_top_a(std::span<const double> probs, double top_a, std::span<uint8_t> keep) {
    if (top_a <= 0) return;
    const double pmax = *std::max_element(probs.begin(), probs.end());
    const double limit = std::min(pmax, top_a * pmax * pmax);
    for (size_t i = 0; i < probs.size(); ++i)
        if (probs[i] < limit) keep[i] = 0;
}

void tempered(std::span<const float> logits, std::span<const uint8_t> keep, double temperature,
              std::span<double> out) {
    GOOSE_ASSERT(temperature > 0 && logits.size() == keep.size() && out.size() == keep.size());
    double mx = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < logits.size(); ++i)
        if (keep[i]) mx = std::max(mx, static_cast<double>(logits[i]));
    GOOSE_ASSERT(std::isfinite(mx), "no token kept");
    double total = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
        out[i] = keep[i] ? std::exp((static_cast<double>(logits[i]) - mx) / temperature) : 0.0;
        total += out[i];
    }
    for (double& p : out) p /= total;
}

int32_t argmax(std::span<const float> logits) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int32_t draw(std::span<const double> dist, Rng& rng) {
    const double u = rng.uniform();
    double cum = 0;
    int32_t last = -1;
    for (size_t i = 0; i < dist.size(); ++i) {
        if (dist[i] <= 0) continue;
        cum += dist[i];
        last = static_cast<int32_t>(i);
        if (u < cum) return last;
    }
    GOOSE_ASSERT(last >= 0, "empty distribution");
    return last;  // u beyond the rounded total
}

}  // namespace sampling

Sampler::Sampler(const SamplerConfig& cfg, int64_t vocab) : cfg_(cfg), rng_(cfg.seed, "sampler") {
    cfg_.validate();
    if (vocab < 1) fail("sampler: vocabulary size must be >= 1, got {}", vocab);
    const size_t v = static_cast<size_t>(vocab);
    counts_.assign(v, 0.f);
    work_.resize(v);
    probs_.resize(v);
    dist_.resize(v);
    keep_.resize(v);
}

int32_t Sampler::prepare(std::span<const float> logits) {
    if (logits.size() != counts_.size())
        fail("sampler: got {} logits for a vocabulary of {}", logits.size(), counts_.size());
    bool any_finite = false;
    for (size_t i = 0; i < logits.size(); ++i) {
        const float x = logits[i];
        if (std::isnan(x) || x == std::numeric_limits<float>::infinity())
            fail("sampler: the logit of token {} is {} (the model produced a non-finite value)", i,
                 x);
        any_finite |= x != -std::numeric_limits<float>::infinity();
    }
    if (!any_finite) fail("sampler: every logit is -inf: no token can be sampled");
    std::copy(logits.begin(), logits.end(), work_.begin());
    if (any_count_ && (cfg_.presence_penalty != 0 || cfg_.frequency_penalty != 0))
        sampling::apply_penalties(work_, counts_, cfg_.presence_penalty, cfg_.frequency_penalty);
    if (cfg_.temperature == 0) return sampling::argmax(work_);

    for (size_t i = 0; i < work_.size(); ++i)
        keep_[i] = work_[i] != -std::numeric_limits<float>::infinity();
    if (cfg_.top_k > 0 || cfg_.top_p < 1 || cfg_.top_a > 0) {
        sampling::softmax(work_, probs_);
        sampling::filter_top_k(probs_, cfg_.top_k, keep_, scratch_);
        sampling::filter_top_p(probs_, cfg_.top_p, cfg_.top_p_x, keep_, scratch_);
        sampling::filter_top_a(probs_, cfg_.top_a, keep_);
    }
    sampling::tempered(work_, keep_, cfg_.temperature, dist_);
    return -1;
}

int32_t Sampler::sample(std::span<const float> logits) {
    const int32_t greedy = prepare(logits);
    return greedy >= 0 ? greedy : sampling::draw(dist_, rng_);
}

std::span<const double> Sampler::distribution(std::span<const float> logits) {
    const int32_t greedy = prepare(logits);
    if (greedy >= 0) {
        std::fill(dist_.begin(), dist_.end(), 0.0);
        dist_[static_cast<size_t>(greedy)] = 1.0;
    }
    return dist_;
}

void Sampler::accept(int32_t token) {
    if (token < 0 || static_cast<size_t>(token) >= counts_.size())
        fail("sampler: token id {} is out of range [0, {})", token, counts_.size());
    if (cfg_.penalty_decay != 1) {
        const float d = static_cast<float>(cfg_.penalty_decay);
        for (float& c : counts_) c *= d;
    }
    counts_[static_cast<size_t>(token)] += 1.f;
    any_count_ = true;
}

void Sampler::reset_penalties() {
    std::fill(counts_.begin(), counts_.end(), 0.f);
    any_count_ = false;
}

}  // namespace goose::infer
