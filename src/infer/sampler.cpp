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

// Radix selection on the float bits of probabilities (for p >= 0 the bit pattern grows with p):
// three levels of histograms over bits 30..21, 20..11 and 10..0 narrow the candidates to one
// exact value. Walking the buckets from the top, it finds the value v at which the running
// total of w(p) (a count for top-k, the mass for top-p) first reaches `target`; `above` gets the
// total over the values > v. Returns false when the whole total stays below target (rounding).
// Every level is one pass over its candidates: O(V), however flat the distribution.
struct RadixLevel {
    int shift, bits;
};
constexpr RadixLevel kLevels[3] = {{21, 10}, {11, 10}, {0, 11}};

inline uint32_t bits_of(float p) { return std::bit_cast<uint32_t>(p) & 0x7fffffffu; }

template <class T, class W>
bool radix_select(std::span<const float> probs, W w, T target, float& value, T& above,
                  std::vector<int32_t>& cand) {
    std::array<T, 2048> hist;
    uint32_t prefix = 0;
    above = 0;
    for (int level = 0; level < 3; ++level) {
        const auto [shift, bits] = kLevels[level];
        const uint32_t mask = (1u << bits) - 1;
        hist.fill(T(0));
        auto key = [&](float p) { return (bits_of(p) >> shift) & mask; };
        if (level == 0) {
            // Four interleaved tables: independent updates pipeline better than a chain of
            // increments to one popular bucket.
            std::array<std::array<T, 1024>, 3> more{};
            const size_t n = probs.size();
            size_t i = 0;
            for (; i + 4 <= n; i += 4) {
                hist[key(probs[i])] += w(probs[i]);
                more[0][key(probs[i + 1])] += w(probs[i + 1]);
                more[1][key(probs[i + 2])] += w(probs[i + 2]);
                more[2][key(probs[i + 3])] += w(probs[i + 3]);
            }
            for (; i < n; ++i) hist[key(probs[i])] += w(probs[i]);
            for (int b = 0; b < 1024; ++b) hist[b] += more[0][b] + more[1][b] + more[2][b];
        } else {
            for (int32_t id : cand) hist[key(probs[id])] += w(probs[id]);
        }
        int b = static_cast<int>(mask);
        for (; b >= 0 && above + hist[b] < target; --b) above += hist[b];
        if (b < 0) return false;
        prefix |= static_cast<uint32_t>(b) << shift;
        if (level == 2) break;
        // The candidates of the next level: the tokens whose bits so far match the prefix.
        const uint32_t keep_mask = ~((1u << shift) - 1);
        // (Branch-free compaction: a flat distribution puts many tokens in one bucket.)
        size_t n = 0;
        if (level == 0) {
            cand.resize(probs.size());
            for (size_t i = 0; i < probs.size(); ++i) {
                cand[n] = static_cast<int32_t>(i);
                n += (bits_of(probs[i]) & keep_mask) == prefix;
            }
        } else {
            for (int32_t id : cand) {
                cand[n] = id;
                n += (bits_of(probs[id]) & keep_mask) == prefix;
            }
        }
        cand.resize(n);
    }
    value = std::bit_cast<float>(prefix);
    return true;
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
    float v = 0;
    int64_t above = 0;
    const bool found = radix_select<int64_t>(probs, [](float) { return int64_t(1); }, k, v, above,
                                             scratch);
    GOOSE_ASSERT(found, "top-k: {} < V tokens not found", k);
    // Everything above v stays; of the tokens equal to v, the lowest ids until k.
    int64_t ties = k - above;
    for (size_t i = 0; i < probs.size(); ++i) {
        const bool tie = probs[i] == v;
        keep[i] &= static_cast<uint8_t>(probs[i] > v || (tie && ties > 0));
        ties -= tie;
    }
}

void filter_top_p(std::span<const float> probs, double top_p, double top_p_x,
                  std::span<uint8_t> keep, std::vector<int32_t>& scratch) {
    if (top_p >= 1) return;
    float cutoff = 0;
    double above = 0;
    if (!radix_select<double>(probs, [](float p) { return static_cast<double>(p); }, top_p, cutoff,
                              above, scratch))
        return;  // the total is below top_p only through rounding: keep everything
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
        size_t n_kept = 0;
        for (size_t i = 0; i < v; ++i) n_kept += keep_[i];
        if (n_kept * 16 <= v) {
            // Few survivors (the usual case): the same formulas on them alone.
            sparse_ = true;
            kept_.clear();
            for (size_t i = 0; i < v; ++i)
                if (keep_[i]) kept_.push_back(static_cast<int32_t>(i));
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
        if (cfg_.temperature == 1) {  // p^(1/T) is p: renormalise the survivors
            for (size_t i = 0; i < v; ++i) dist_[i] = keep_[i] ? probs_[i] : 0.f;
            const float inv = 1.f / ops::cpu_rows::sum(dist_.data(), static_cast<int64_t>(v));
            for (float& p : dist_) p *= inv;
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
