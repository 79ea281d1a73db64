// Token sampling: penalties, the filters (top-k, top-p / top-p-x, top-a), temperature, the draw.
#include "goose/infer/sampler.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>

#include "goose/core/error.h"
#include "ops/cpu/rows.h"

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

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Total order "more probable first, then lower id".
struct MoreProbable {
    std::span<const float> p;
    bool operator()(int32_t a, int32_t b) const { return p[a] != p[b] ? p[a] > p[b] : a < b; }
};

// Histogram bucket of a probability: its float bits without the low 20 mantissa bits (8 buckets
// per octave). For p >= 0 the bits grow with p, so a higher bucket means a higher probability;
// p <= 1 gives buckets <= 1016.
constexpr int kBuckets = 1024;
// (Clamped, so that values outside [0, 1] cannot index outside the table.)
inline int bucket_of(float p) {
    return static_cast<int>(std::min<uint32_t>(std::bit_cast<uint32_t>(p) >> 20, kBuckets - 1));
}

// Per-bucket sums of w(i) over the tokens, four interleaved tables (independent updates
// pipeline better than a chain of increments to one popular bucket).
template <class T, class W>
std::array<T, kBuckets> histogram(std::span<const float> probs, W w) {
    std::array<std::array<T, kBuckets>, 4> part{};
    const size_t n = probs.size();
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (size_t j = 0; j < 4; ++j) part[j][bucket_of(probs[i + j])] += w(probs[i + j]);
    for (; i < n; ++i) part[0][bucket_of(probs[i])] += w(probs[i]);
    for (int b = 0; b < kBuckets; ++b) part[0][b] += part[1][b] + part[2][b] + part[3][b];
    return part[0];
}

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
    const float pres = static_cast<float>(presence), freq = static_cast<float>(frequency);
    for (size_t i = 0; i < logits.size(); ++i)
        logits[i] -= counts[i] > 0 ? pres + freq * counts[i] : 0.f;
}

void softmax(std::span<const float> logits, std::span<float> probs) {
    GOOSE_ASSERT(logits.size() == probs.size() && !logits.empty());
    const int64_t n = static_cast<int64_t>(logits.size());
    const float mx = ops::cpu_rows::max_of(logits.data(), n);
    GOOSE_ASSERT(std::isfinite(mx), "softmax: the largest logit is {}", mx);
    ops::cpu_rows::exp_sub(logits.data(), mx, probs.data(), n);
    for (size_t i = 0; i < probs.size(); ++i) probs[i] = logits[i] == kNegInf ? 0.f : probs[i];
    const float inv = 1.f / ops::cpu_rows::sum(probs.data(), n);
    for (float& p : probs) p *= inv;
}

void filter_top_k(std::span<const float> probs, int64_t k, std::span<uint8_t> keep,
                  std::vector<int32_t>& scratch) {
    if (k <= 0 || k >= static_cast<int64_t>(probs.size())) return;
    const auto count = histogram<int32_t>(probs, [](float) { return 1; });
    // The bucket b where the count from the top reaches k: all above it stay, part of b.
    int64_t above = 0;
    int b = kBuckets - 1;
    for (; b > 0 && above + count[b] < k; --b) above += count[b];
    scratch.clear();
    for (size_t i = 0; i < probs.size(); ++i) {
        const int bi = bucket_of(probs[i]);
        if (bi < b) keep[i] = 0;
        else if (bi == b) scratch.push_back(static_cast<int32_t>(i));
    }
    const int64_t need = k - above;  // 1 <= need <= scratch.size()
    std::nth_element(scratch.begin(), scratch.begin() + need, scratch.end(), MoreProbable{probs});
    for (auto it = scratch.begin() + need; it != scratch.end(); ++it) keep[*it] = 0;
}

void filter_top_p(std::span<const float> probs, double top_p, double top_p_x,
                  std::span<uint8_t> keep, std::vector<int32_t>& scratch) {
    if (top_p >= 1) return;
    const auto mass = histogram<double>(probs, [](float p) { return static_cast<double>(p); });
    // The bucket where the mass from the top reaches top_p; then, inside it, the token.
    double cum = 0;
    int b = kBuckets - 1;
    for (; b >= 0 && cum + mass[b] < top_p; --b) cum += mass[b];
    if (b < 0) return;  // the total is below top_p only through rounding: keep everything
    scratch.clear();
    for (size_t i = 0; i < probs.size(); ++i)
        if (bucket_of(probs[i]) == b) scratch.push_back(static_cast<int32_t>(i));
    std::sort(scratch.begin(), scratch.end(), MoreProbable{probs});
    float cutoff = probs[scratch.back()];  // (if rounding keeps the sum below top_p: all of b)
    for (int32_t i : scratch) {
        cum += probs[i];
        if (cum >= top_p) {
            cutoff = probs[i];
            break;
        }
    }
    // Branch-free so that it vectorises: keep p >= cutoff, and p > x for top-p-x.
    const float x = top_p_x > 0 ? static_cast<float>(top_p_x) : 2.f;
    for (size_t i = 0; i < probs.size(); ++i)
        keep[i] &= static_cast<uint8_t>((probs[i] >= cutoff) | (probs[i] > x));
}

void filter_top_a(std::span<const float> probs, double top_a, std::span<uint8_t> keep) {
    if (top_a <= 0) return;
    const double pmax = ops::cpu_rows::max_of(probs.data(), static_cast<int64_t>(probs.size()));
    const float limit = static_cast<float>(std::min(pmax, top_a * pmax * pmax));
    for (size_t i = 0; i < probs.size(); ++i) keep[i] &= static_cast<uint8_t>(probs[i] >= limit);
}

void tempered(std::span<const float> logits, std::span<const uint8_t> keep, double temperature,
              std::span<float> out) {
    GOOSE_ASSERT(temperature > 0 && logits.size() == keep.size() && out.size() == keep.size());
    float mx = kNegInf;
    for (size_t i = 0; i < logits.size(); ++i) mx = std::max(mx, keep[i] ? logits[i] : kNegInf);
    GOOSE_ASSERT(std::isfinite(mx), "no token kept");
    const double inv_t = 1 / temperature;
    if (inv_t > 1e30) {  // colder than float can scale: the largest kept logits, equally
        for (size_t i = 0; i < logits.size(); ++i) out[i] = keep[i] && logits[i] == mx ? 1.f : 0.f;
    } else {
        const float s = static_cast<float>(inv_t);
        for (size_t i = 0; i < logits.size(); ++i) out[i] = (logits[i] - mx) * s;
        ops::cpu_rows::exp_sub(out.data(), 0.f, out.data(), static_cast<int64_t>(out.size()));
        for (size_t i = 0; i < out.size(); ++i) out[i] = keep[i] ? out[i] : 0.f;
    }
    const float inv = 1.f / ops::cpu_rows::sum(out.data(), static_cast<int64_t>(out.size()));
    for (float& p : out) p *= inv;
}

int32_t argmax(std::span<const float> logits) {
    const float mx = ops::cpu_rows::max_of(logits.data(), static_cast<int64_t>(logits.size()));
    return static_cast<int32_t>(std::find(logits.begin(), logits.end(), mx) - logits.begin());
}

int32_t draw(std::span<const float> dist, Rng& rng) {
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
    int bad = 0, finite = 0;
    for (float x : logits) {
        bad |= (x != x) | (x == -kNegInf);
        finite |= x != kNegInf;
    }
    if (bad)
        for (size_t i = 0; i < logits.size(); ++i)
            if (std::isnan(logits[i]) || logits[i] == -kNegInf)
                fail("sampler: the logit of token {} is {} (the model produced a non-finite "
                     "value)", i, logits[i]);
    if (!finite) fail("sampler: every logit is -inf: no token can be sampled");
    std::copy(logits.begin(), logits.end(), work_.begin());
    // The penalties of apply_penalties(), on the seen tokens only.
    const float pres = static_cast<float>(cfg_.presence_penalty);
    const float freq = static_cast<float>(cfg_.frequency_penalty);
    for (int32_t id : seen_) work_[id] -= counts_[id] > 0 ? pres + freq * counts_[id] : 0.f;
    sparse_ = false;
    if (cfg_.temperature == 0) return sampling::argmax(work_);

    const size_t v = work_.size();
    for (size_t i = 0; i < v; ++i) keep_[i] = work_[i] != kNegInf;
    if (cfg_.top_k > 0 || cfg_.top_p < 1 || cfg_.top_a > 0) {
        sampling::softmax(work_, probs_);
        sampling::filter_top_k(probs_, cfg_.top_k, keep_, scratch_);
        sampling::filter_top_p(probs_, cfg_.top_p, cfg_.top_p_x, keep_, scratch_);
        sampling::filter_top_a(probs_, cfg_.top_a, keep_);
        kept_.clear();
        for (size_t i = 0; i < v; ++i)
            if (keep_[i]) kept_.push_back(static_cast<int32_t>(i));
        if (kept_.size() * 16 <= v) {
            // Few survivors (the usual case): the same formulas on them alone.
            sparse_ = true;
            std::fill(dist_.begin(), dist_.end(), 0.f);
            if (cfg_.temperature == 1) {  // p^(1/T) is p: renormalise
                double total = 0;
                for (int32_t id : kept_) total += probs_[id];
                for (int32_t id : kept_) dist_[id] = static_cast<float>(probs_[id] / total);
            } else {
                float mx = kNegInf;
                for (int32_t id : kept_) mx = std::max(mx, work_[id]);
                const double inv_t = 1 / cfg_.temperature;
                double total = 0;
                for (int32_t id : kept_) {
                    dist_[id] = static_cast<float>(std::exp((work_[id] - mx) * inv_t));
                    total += dist_[id];
                }
                for (int32_t id : kept_) dist_[id] = static_cast<float>(dist_[id] / total);
            }
            return -1;
        }
    }
    sampling::tempered(work_, keep_, cfg_.temperature, dist_);
    return -1;
}

int32_t Sampler::sample(std::span<const float> logits) {
    const int32_t greedy = prepare(logits);
    if (greedy >= 0) return greedy;
    if (!sparse_) return sampling::draw(dist_, rng_);
    // draw() over the survivors only: the same uniform, the same walk in id order.
    const double u = rng_.uniform();
    double cum = 0;
    int32_t last = -1;
    for (int32_t id : kept_) {
        if (dist_[id] <= 0) continue;
        cum += dist_[id];
        last = id;
        if (u < cum) return id;
    }
    GOOSE_ASSERT(last >= 0, "empty distribution");
    return last;
}

std::span<const float> Sampler::distribution(std::span<const float> logits) {
    const int32_t greedy = prepare(logits);
    if (greedy >= 0) {
        std::fill(dist_.begin(), dist_.end(), 0.f);
        dist_[static_cast<size_t>(greedy)] = 1.f;
    }
    return dist_;
}

void Sampler::accept(int32_t token) {
    if (token < 0 || static_cast<size_t>(token) >= counts_.size())
        fail("sampler: token id {} is out of range [0, {})", token, counts_.size());
    const float d = static_cast<float>(cfg_.penalty_decay);
    for (int32_t id : seen_) counts_[id] *= d;
    if (counts_[token] == 0 && std::find(seen_.begin(), seen_.end(), token) == seen_.end())
        seen_.push_back(token);
    counts_[token] += 1.f;
}

void Sampler::reset_penalties() {
    for (int32_t id : seen_) counts_[id] = 0.f;
    seen_.clear();
}

}  // namespace goose::infer
