// Sampler: every step on hand-made logits (exact kept sets, penalties with decay, temperature,
// greedy), reproducibility, empirical frequencies against the renormalised distribution, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

#include "common/expect_error.h"
#include "goose/core/error.h"
#include "goose/infer/sampler.h"

namespace goose::infer {
namespace {

using test::expect_error;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Logits whose softmax is exactly-ish `p` (up to float rounding of the logs).
std::vector<float> logits_of(const std::vector<double>& p) {
    std::vector<float> l;
    for (double x : p) l.push_back(x > 0 ? static_cast<float>(std::log(x)) : kNegInf);
    return l;
}

const std::vector<double> kP = {0.5, 0.2, 0.15, 0.1, 0.05};

// The token ids with nonzero probability in the sampler's distribution.
std::set<int> support(Sampler& s, const std::vector<float>& logits) {
    std::set<int> out;
    const auto d = s.distribution(logits);
    for (size_t i = 0; i < d.size(); ++i)
        if (d[i] > 0) out.insert(static_cast<int>(i));
    return out;
}

std::set<int> kept_by(const SamplerConfig& cfg, const std::vector<double>& p) {
    Sampler s(cfg, static_cast<int64_t>(p.size()));
    return support(s, logits_of(p));
}

SamplerConfig cfg_with(auto&& edit) {
    SamplerConfig c;
    edit(c);
    return c;
}

TEST(Sampler, GreedyAtZeroTemperature) {
    Sampler s(cfg_with([](auto& c) { c.temperature = 0; }), 5);
    const std::vector<float> l = {0.1f, 2.f, -1.f, 2.f, 1.9f};
    for (int i = 0; i < 10; ++i) EXPECT_EQ(s.sample(l), 1);  // tie 1/3: the lower id
    const auto d = s.distribution(l);
    EXPECT_EQ(std::vector<double>(d.begin(), d.end()), (std::vector<double>{0, 1, 0, 0, 0}));
}

TEST(Sampler, NoFilterKeepsEverythingWithTheSoftmax) {
    Sampler s(SamplerConfig{}, 5);
    const auto d = s.distribution(logits_of(kP));
    for (size_t i = 0; i < kP.size(); ++i) EXPECT_NEAR(d[i], kP[i], 1e-6);
}

TEST(Sampler, TopKKeepsTheKMostProbable) {
    EXPECT_EQ(kept_by(cfg_with([](auto& c) { c.top_k = 2; }), kP), (std::set<int>{0, 1}));
    EXPECT_EQ(kept_by(cfg_with([](auto& c) { c.top_k = 1; }), kP), (std::set<int>{0}));
    EXPECT_EQ(kept_by(cfg_with([](auto& c) { c.top_k = 5; }), kP), (std::set<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(kept_by(cfg_with([](auto& c) { c.top_k = 99; }), kP), (std::set<int>{0, 1, 2, 3, 4}));
    // Ties at the boundary: exactly k, the lower ids first.
    const std::vector<double> tied = {0.1, 0.3, 0.2, 0.2, 0.2};
    EXPECT_EQ(kept_by(cfg_with([](auto& c) { c.top_k = 2; }), tied), (std::set<int>{1, 2}));
    // The kept tokens keep their relative probabilities.
    Sampler s(cfg_with([](auto& c) { c.top_k = 2; }), 5);
    const auto d = s.distribution(logits_of(kP));
    EXPECT_NEAR(d[0], 0.5 / 0.7, 1e-6);
    EXPECT_NEAR(d[1], 0.2 / 0.7, 1e-6);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
    auto top_p = [](double p) { return cfg_with([p](auto& c) { c.top_p = p; }); };
    EXPECT_EQ(kept_by(top_p(0.1), kP), (std::set<int>{0}));
    EXPECT_EQ(kept_by(top_p(0.45), kP), (std::set<int>{0}));
    EXPECT_EQ(kept_by(top_p(0.6), kP), (std::set<int>{0, 1}));
    EXPECT_EQ(kept_by(top_p(0.8), kP), (std::set<int>{0, 1, 2}));
    EXPECT_EQ(kept_by(top_p(0.9), kP), (std::set<int>{0, 1, 2, 3}));
    EXPECT_EQ(kept_by(top_p(0.99), kP), (std::set<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(kept_by(top_p(1.0), kP), (std::set<int>{0, 1, 2, 3, 4}));
    // Tokens tied with the cutoff are kept (the official `probs < cutoff -> 0`).
    EXPECT_EQ(kept_by(top_p(0.5), {0.4, 0.2, 0.2, 0.2}), (std::set<int>{0, 1, 2, 3}));
    EXPECT_EQ(kept_by(top_p(0.5), {0.4, 0.3, 0.2, 0.1}), (std::set<int>{0, 1}));
}

TEST(Sampler, TopPXAddsEveryTokenAboveX) {
    auto cfg = [](double p, double x) {
        return cfg_with([=](auto& c) {
            c.top_p = p;
            c.top_p_x = x;
        });
    };
    EXPECT_EQ(kept_by(cfg(0.6, 0.12), kP), (std::set<int>{0, 1, 2}));
    EXPECT_EQ(kept_by(cfg(0.6, 0.07), kP), (std::set<int>{0, 1, 2, 3}));
    EXPECT_EQ(kept_by(cfg(0.6, 0.01), kP), (std::set<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(kept_by(cfg(0.6, 0.3), kP), (std::set<int>{0, 1}));  // x adds nothing
    EXPECT_EQ(kept_by(cfg(0.1, 0.16), kP), (std::set<int>{0, 1}));
}

TEST(Sampler, TopAKeepsTokensAboveAPmaxSquared) {
    auto top_a = [](double a) { return cfg_with([a](auto& c) { c.top_a = a; }); };
    // p_max = 0.5: limits 0.125, 0.075, 0.025.
    EXPECT_EQ(kept_by(top_a(0.5), kP), (std::set<int>{0, 1, 2}));
    EXPECT_EQ(kept_by(top_a(0.3), kP), (std::set<int>{0, 1, 2, 3}));
    EXPECT_EQ(kept_by(top_a(0.1), kP), (std::set<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(kept_by(top_a(100), kP), (std::set<int>{0}));  // never removes the best token
    // The seed's examples: p_max 0.9 removes every alternative at a = 0.2 (limit 0.162).
    EXPECT_EQ(kept_by(top_a(0.2), {0.9, 0.06, 0.04}), (std::set<int>{0}));
    // p_max 0.1: limit 0.002 keeps a 0.0025 token.
    std::vector<double> flat(9, 0.1);
    flat.push_back(0.0975);
    flat.push_back(0.0025);
    EXPECT_EQ(kept_by(top_a(0.2), flat).size(), 11u);
}

TEST(Sampler, FiltersIntersectAndCommute) {
    const std::vector<double> p = {0.05, 0.3, 0.1, 0.25, 0.2, 0.1};
    SamplerConfig c;
    c.top_k = 3;      // {1, 3, 4}
    c.top_p = 0.5;    // {1, 3}
    c.top_p_x = 0.15; // + {4}
    c.top_a = 1.5;    // limit 0.135: {1, 3, 4}
    EXPECT_EQ(kept_by(c, p), (std::set<int>{1, 3, 4}));
    c.top_k = 2;
    EXPECT_EQ(kept_by(c, p), (std::set<int>{1, 3}));
    // The steps alone in two orders give the same mask.
    std::vector<float> probs(p.size());
    const auto l = logits_of(p);
    sampling::softmax(l, probs);
    std::vector<int32_t> scratch;
    std::vector<uint8_t> a(p.size(), 1), b(p.size(), 1);
    sampling::filter_top_k(probs, 3, a, scratch);
    sampling::filter_top_p(probs, 0.5, 0, a, scratch);
    sampling::filter_top_a(probs, 2.0, a);
    sampling::filter_top_a(probs, 2.0, b);
    sampling::filter_top_p(probs, 0.5, 0, b, scratch);
    sampling::filter_top_k(probs, 3, b, scratch);
    EXPECT_EQ(a, b);
    EXPECT_EQ(a, (std::vector<uint8_t>{0, 1, 0, 1, 0, 0}));
}

// The O(V) radix-select filters against a full sort, on 65536 logits: spread out, with many
// ties, and nearly flat (most tokens in one top-level bucket).
TEST(Sampler, TopKAndTopPOnALargeVocabularyMatchAFullSort) {
    const int64_t v = 65536;
    for (int kind : {0, 1, 2}) {
        const bool ties = kind == 1;
        Rng rng(11 + kind);
        std::vector<float> l(v);
        for (auto& x : l) {
            x = static_cast<float>((kind == 2 ? 0.05 : 3) * rng.normal());
            if (ties) x = std::round(x * 4) / 4;  // ~100 distinct values
        }
        std::vector<float> probs(v);
        sampling::softmax(l, probs);
        std::vector<int32_t> order(v), scratch;
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int a, int b) { return probs[a] > probs[b]; });  // ties: lower id
        for (double top_p : {0.01, 0.3, 0.9, 0.999}) {
            // Reference: prefix until the total reaches top_p, plus ties with the cutoff.
            double cum = 0;
            float cutoff = 0;
            for (int32_t i : order) {
                cum += probs[i];
                if (cum >= top_p) {
                    cutoff = probs[i];
                    break;
                }
            }
            std::vector<uint8_t> keep(v, 1);
            sampling::filter_top_p(probs, top_p, 0, keep, scratch);
            int64_t wrong = 0, n = 0;
            for (int64_t i = 0; i < v; ++i) {
                wrong += keep[i] != (probs[i] >= cutoff ? 1 : 0);
                n += keep[i];
            }
            EXPECT_EQ(wrong, 0) << "top_p " << top_p << " kind " << kind;
            EXPECT_GT(n, 0);
        }
        for (int64_t k : {1, 40, 1000, 65535}) {
            std::vector<uint8_t> keep(v, 1), want(v, 0);
            for (int64_t j = 0; j < k; ++j) want[order[j]] = 1;
            sampling::filter_top_k(probs, k, keep, scratch);
            EXPECT_EQ(keep, want) << "top_k " << k << " kind " << kind;
        }
    }
}

TEST(Sampler, TemperatureRaisesProbabilitiesToOneOverT) {
    for (double t : {0.5, 2.0}) {
        Sampler s(cfg_with([t](auto& c) { c.temperature = t; }), 5);
        const auto d = s.distribution(logits_of(kP));
        double z = 0;
        for (double p : kP) z += std::pow(p, 1 / t);
        for (size_t i = 0; i < kP.size(); ++i) EXPECT_NEAR(d[i], std::pow(kP[i], 1 / t) / z, 1e-6);
    }
    // Temperature applies after the filters: top-k 2 at T = 0.5 gives 0.25 : 0.04.
    Sampler s(cfg_with([](auto& c) {
                  c.temperature = 0.5;
                  c.top_k = 2;
              }),
              5);
    const auto d = s.distribution(logits_of(kP));
    EXPECT_NEAR(d[0], 0.25 / 0.29, 1e-6);
    EXPECT_NEAR(d[1], 0.04 / 0.29, 1e-6);
    EXPECT_EQ(d[2], 0.0);
    // A tiny temperature is greedy without overflow.
    for (double t : {1e-30, 1e-300}) {
        Sampler cold(cfg_with([t](auto& c) { c.temperature = t; }), 5);
        EXPECT_NEAR(cold.distribution(logits_of(kP))[0], 1.0, 1e-12) << t;
    }
}

TEST(Sampler, PenaltiesWithDecay) {
    SamplerConfig c;
    c.presence_penalty = 0.5;
    c.frequency_penalty = 0.3;
    c.penalty_decay = 0.5;
    Sampler s(c, 5);
    const std::vector<float> l = {1.f, 1.f, 1.f, 1.f, kNegInf};
    s.accept(1);
    s.accept(1);  // count(1) = 1 * 0.5 + 1 = 1.5
    s.accept(2);  // count(1) = 0.75, count(2) = 1
    const std::vector<double> pen = {0, 0.5 + 0.3 * 0.75, 0.5 + 0.3 * 1.0, 0, 0};
    double z = 0;
    for (int i = 0; i < 4; ++i) z += std::exp(1 - pen[i]);
    auto d = s.distribution(l);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(d[i], std::exp(1 - pen[i]) / z, 1e-6) << i;
    EXPECT_EQ(d[4], 0.0);  // -inf stays impossible
    // Greedy sees the penalised logits.
    SamplerConfig g = c;
    g.temperature = 0;
    Sampler sg(g, 3);
    EXPECT_EQ(sg.sample(std::vector<float>{2.f, 1.9f, 0.f}), 0);
    sg.accept(0);
    EXPECT_EQ(sg.sample(std::vector<float>{2.f, 1.9f, 0.f}), 1);
    sg.reset_penalties();
    EXPECT_EQ(sg.sample(std::vector<float>{2.f, 1.9f, 0.f}), 0);
    // The step alone.
    std::vector<float> x = {1, 2, 3};
    sampling::apply_penalties(x, std::vector<float>{0, 2, 0.5f}, 1.0, 0.25);
    EXPECT_FLOAT_EQ(x[0], 1.f);
    EXPECT_FLOAT_EQ(x[1], 2 - 1.5f);
    EXPECT_FLOAT_EQ(x[2], 3 - 1.125f);
}

TEST(Sampler, SameSeedSameDraws) {
    const auto l = logits_of({0.3, 0.3, 0.2, 0.1, 0.1});
    auto run = [&](uint64_t seed) {
        SamplerConfig c;
        c.seed = seed;
        c.presence_penalty = 0.2;
        Sampler s(c, 5);
        std::vector<int32_t> out;
        for (int i = 0; i < 200; ++i) {
            out.push_back(s.sample(l));
            s.accept(out.back());
        }
        return out;
    };
    EXPECT_EQ(run(7), run(7));
    EXPECT_NE(run(7), run(8));
}

TEST(Sampler, EmpiricalFrequenciesMatchTheDistribution) {
    // 200k draws; each frequency within 5 standard errors sqrt(p(1-p)/n) of its probability,
    // removed tokens never drawn.
    SamplerConfig c;
    c.top_k = 4;
    c.temperature = 0.7;
    c.seed = 3;
    const std::vector<double> p = {0.02, 0.3, 0.1, 0.25, 0.2, 0.13};
    Sampler s(c, 6);
    const auto l = logits_of(p);
    const auto d = s.distribution(l);
    const std::vector<double> want(d.begin(), d.end());
    const int n = 200000;
    std::vector<int> hits(6, 0);
    for (int i = 0; i < n; ++i) ++hits[s.sample(l)];
    for (int i = 0; i < 6; ++i) {
        const double f = static_cast<double>(hits[i]) / n;
        const double se = std::sqrt(want[i] * (1 - want[i]) / n);
        if (want[i] == 0)
            EXPECT_EQ(hits[i], 0) << "token " << i;
        else
            EXPECT_NEAR(f, want[i], 5 * se) << "token " << i;
    }
    EXPECT_EQ(hits[0], 0);  // outside the top 4
    EXPECT_EQ(hits[2], 0);
}

// Few survivors take a sparse path inside Sampler: it must give the steps' distribution and
// the draws of draw() on it.
TEST(Sampler, SparsePathMatchesTheSteps) {
    const int64_t v = 1000;
    Rng rng(21);
    std::vector<float> l(v);
    for (auto& x : l) x = static_cast<float>(2 * rng.normal());
    for (double t : {1.0, 0.7}) {
        for (int which = 0; which < 3; ++which) {
            SamplerConfig c;
            c.temperature = t;
            c.seed = 9;
            if (which == 0) c.top_k = 5;
            if (which == 1) c.top_p = 0.2;
            if (which == 2) c.top_a = 0.9;
            std::vector<float> probs(v), dist(v);
            std::vector<uint8_t> keep(v, 1);
            std::vector<int32_t> scratch;
            sampling::softmax(l, probs);
            sampling::filter_top_k(probs, c.top_k, keep, scratch);
            sampling::filter_top_p(probs, c.top_p, 0, keep, scratch);
            sampling::filter_top_a(probs, c.top_a, keep);
            const int64_t kept = std::count(keep.begin(), keep.end(), 1);
            ASSERT_LE(kept * 16, v) << which;  // the sparse path
            ASSERT_GE(kept, 2) << which;
            sampling::tempered(l, keep, t, dist);
            Sampler s(c, v);
            const auto d = s.distribution(l);
            for (int64_t i = 0; i < v; ++i) ASSERT_NEAR(d[i], dist[i], 1e-6) << i;
            Rng ref(9, "sampler");
            for (int i = 0; i < 200; ++i) ASSERT_EQ(s.sample(l), sampling::draw(dist, ref)) << i;
        }
    }
}

TEST(Sampler, BadInputIsAClearError) {
    const double nan = std::nan("");
    auto bad = [](auto edit, const char* field) {
        SamplerConfig c;
        edit(c);
        expect_error([&] { c.validate(); }, field);
        expect_error([&] { (void)Sampler(c, 5); }, field);
    };
    bad([&](auto& c) { c.temperature = nan; }, "temperature");
    bad([](auto& c) { c.temperature = -0.5; }, "temperature");
    bad([](auto& c) { c.top_k = -1; }, "top_k");
    bad([](auto& c) { c.top_p = -0.1; }, "top_p");
    bad([](auto& c) { c.top_p = 0; }, "top_p");
    bad([](auto& c) { c.top_p = 1.5; }, "top_p");
    bad([&](auto& c) { c.top_a = nan; }, "top_a");
    bad([](auto& c) { c.top_a = -1; }, "top_a");
    bad([](auto& c) { c.top_p_x = 2; }, "top_p_x");
    bad([](auto& c) { c.presence_penalty = std::numeric_limits<double>::infinity(); },
        "presence_penalty");
    bad([&](auto& c) { c.frequency_penalty = nan; }, "frequency_penalty");
    bad([](auto& c) { c.penalty_decay = 1.5; }, "penalty_decay");
    expect_error([] { (void)Sampler(SamplerConfig{}, 0); }, "vocabulary size");

    Sampler s(SamplerConfig{}, 3);
    expect_error([&] { s.sample(std::vector<float>{1, 2}); }, "2 logits for a vocabulary of 3");
    expect_error([&] { s.sample(std::vector<float>{1, std::nanf(""), 0}); }, "token 1");
    expect_error([&] { s.sample(std::vector<float>(3, kNegInf)); }, "every logit is -inf");
    expect_error([&] { s.accept(3); }, "token id 3 is out of range [0, 3)");
    expect_error([&] { s.accept(-1); }, "token id -1");
}

}  // namespace
}  // namespace goose::infer
