// The RWKV-7 inference engine against models::Rwkv7 (f32 logits and states, prefill and
// decode), its own consistency (prefill + decode == prefill, batched == separate decodes),
// bf16/int8 tolerances, the GEMV kernels against a naive reference, and its errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/expect_error.h"
#include "goose/autograd.h"
#include "goose/infer/engine.h"
#include "goose/models/rwkv7_checkpoint.h"
#include "goose/models/rwkv7_state_io.h"
#include "alloc_counter.h"
#include "infer/engine_kernels.h"
#include "rwkv7_test_util.h"

namespace goose::infer {
namespace {

using models::Rwkv7;
using models::Rwkv7Config;
using models::Rwkv7State;

std::unique_ptr<Rwkv7> small_model(const Rwkv7Config& cfg, uint64_t seed) {
    auto m = std::make_unique<Rwkv7>(cfg);
    Rng rng(seed, "engine");
    m->init_official(rng);
    models::testing::randomise_zero_parts(*m, rng);
    return m;
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
    Rng rng(seed, "tokens");
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = static_cast<int32_t>(rng.randint(0, vocab));
    return t;
}

// (T, V) logits of the model's parallel forward from a zero state; the final state in *state.
Tensor model_logits(const Rwkv7& m, const std::vector<int32_t>& tokens, Rwkv7State* state) {
    ag::NoGradGuard no_grad;
    const auto t = static_cast<int64_t>(tokens.size());
    Tensor ids = Tensor::empty(Shape{1, t}, DType::i64);
    for (int64_t i = 0; i < t; ++i) ids.data<int64_t>()[i] = tokens[static_cast<size_t>(i)];
    return m.forward(ids, state).value().reshape(Shape{t, m.config().vocab}).contiguous();
}

double max_abs(std::span<const float> a) {
    double m = 0;
    for (float x : a) m = std::max(m, static_cast<double>(std::fabs(x)));
    return m;
}
double max_diff(std::span<const float> a, std::span<const float> b) {
    EXPECT_EQ(a.size(), b.size());
    double m = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
    return m;
}
std::span<const float> row(const Tensor& t, int64_t r) {
    return {t.data<float>() + r * t.size(1), static_cast<size_t>(t.size(1))};
}
double state_diff(const Rwkv7State& a, const Rwkv7State& b) {
    double m = 0;
    for (size_t l = 0; l < a.wkv.size(); ++l)
        for (auto [x, y] : {std::pair{&a.att_shift[l], &b.att_shift[l]},
                            std::pair{&a.wkv[l], &b.wkv[l]},
                            std::pair{&a.ffn_shift[l], &b.ffn_shift[l]}}) {
            const auto vx = x->to_vector(), vy = y->to_vector();
            for (size_t i = 0; i < vx.size(); ++i) m = std::max(m, std::fabs(vx[i] - vy[i]));
        }
    return m;
}

// Token-by-token decode of `tokens` from a zero state: (T, V).
std::vector<float> decode_all(Rwkv7Engine& e, const std::vector<int32_t>& tokens,
                              Rwkv7State* state_out = nullptr) {
    const int64_t v = e.config().vocab;
    Rwkv7State s = e.new_state();
    std::vector<float> out(tokens.size() * static_cast<size_t>(v));
    for (size_t t = 0; t < tokens.size(); ++t) {
        Rwkv7State* ps[1] = {&s};
        e.decode(std::span(&tokens[t], 1), ps, std::span(out).subspan(t * v, v));
    }
    if (state_out) *state_out = s;
    return out;
}

// Engine f32 == model (parallel forward) for prefill and for token-by-token decode, logits and
// states. Tolerance: 1e-4 of the logits' scale (different summation orders and exp kernels).
void expect_f32_matches_model(const Rwkv7Config& cfg, int64_t t) {
    const auto m = small_model(cfg, 5);
    const auto tokens = random_tokens(t, cfg.vocab, 6);
    Rwkv7State ms = m->zero_state(1);
    const Tensor want = model_logits(*m, tokens, &ms);
    const double tol = 1e-4 * std::max(1.0, max_abs(row(want, t - 1)));
    Rwkv7Engine e(*m, {});
    const int64_t v = cfg.vocab;

    std::vector<float> logits(static_cast<size_t>(v));
    Rwkv7State s = e.new_state();
    e.prefill(tokens, s, logits);
    EXPECT_LE(max_diff(logits, row(want, t - 1)), tol);
    EXPECT_LE(state_diff(s, ms), 1e-4);
    // a few shorter prefixes (rows below and above the GEMV/sgemm switch)
    for (int64_t k : {int64_t(1), int64_t(2), t / 2}) {
        Rwkv7State sk = e.new_state();
        e.prefill(std::span(tokens).first(static_cast<size_t>(k)), sk, logits);
        EXPECT_LE(max_diff(logits, row(want, k - 1)), tol) << "prefix " << k;
    }
    Rwkv7State sd;
    const auto dec = decode_all(e, tokens, &sd);
    for (int64_t i = 0; i < t; ++i)
        EXPECT_LE(max_diff(std::span(dec).subspan(i * v, v), row(want, i)), tol) << "token " << i;
    EXPECT_LE(state_diff(sd, ms), 1e-4);
}

TEST(Rwkv7Engine, F32MatchesModelPrefillAndDecode) {
    expect_f32_matches_model(Rwkv7Config::with_defaults(97, 3, 64, 16), 40);
}

TEST(Rwkv7Engine, F32MatchesModelWithHeadSizeNotAMultipleOfTheSimdWidth) {
    expect_f32_matches_model(Rwkv7Config::with_defaults(61, 2, 36, 12), 30);
}

// Prompts longer than the engine's prefill piece (512 tokens) continue across pieces.
TEST(Rwkv7Engine, LongPrefillMatchesModel) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(50, 2, 32, 16);
    const auto m = small_model(cfg, 7);
    const auto tokens = random_tokens(600, cfg.vocab, 8);
    Rwkv7State ms = m->zero_state(1);
    const Tensor want = model_logits(*m, tokens, &ms);
    Rwkv7Engine e(*m, {});
    std::vector<float> logits(static_cast<size_t>(cfg.vocab));
    Rwkv7State s = e.new_state();
    e.prefill(tokens, s, logits);
    EXPECT_LE(max_diff(logits, row(want, 599)), 1e-4 * std::max(1.0, max_abs(logits)));
    EXPECT_LE(state_diff(s, ms), 1e-4);
}

TEST(Rwkv7Engine, PrefillThenDecodeEqualsFullPrefill) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(80, 2, 64, 16);
    const auto m = small_model(cfg, 9);
    for (WeightFormat f : {WeightFormat::f32, WeightFormat::int8}) {
        Rwkv7Engine e(*m, {.matrices = f, .head = f, .emb = f});
        const auto tokens = random_tokens(35, cfg.vocab, 10);
        const size_t split = 30;  // prefill 30 (sgemm path), then decode 5
        std::vector<float> full(static_cast<size_t>(cfg.vocab)), part(full.size());
        Rwkv7State s_full = e.new_state(), s = e.new_state();
        e.prefill(tokens, s_full, full);
        e.prefill(std::span(tokens).first(split), s, part);
        for (size_t t = split; t < tokens.size(); ++t) {
            Rwkv7State* ps[1] = {&s};
            e.decode(std::span(&tokens[t], 1), ps, part);
        }
        EXPECT_LE(max_diff(part, full), 1e-4 * std::max(1.0, max_abs(full))) << weight_format_name(f);
        EXPECT_LE(state_diff(s, s_full), 1e-4);
    }
}

// B sequences with different histories in one decode call == each decoded alone (batch sizes
// around the register block of 4 and past the GEMV/sgemm switch).
TEST(Rwkv7Engine, BatchedDecodeEqualsSeparateDecodes) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(70, 2, 64, 16);
    const auto m = small_model(cfg, 11);
    const int64_t v = cfg.vocab;
    for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8}) {
        Rwkv7Engine e(*m, {.matrices = f, .head = f, .emb = f});
        for (int64_t b : {int64_t(5), int64_t(detail::kGemvMaxRows + 2)}) {
            std::vector<Rwkv7State> batch, alone;
            std::vector<float> scratch(static_cast<size_t>(v));
            for (int64_t i = 0; i < b; ++i) {  // different prompts of different lengths
                const auto p = random_tokens(1 + i % 4, v, 100 + static_cast<uint64_t>(i));
                Rwkv7State s = e.new_state();
                e.prefill(p, s, scratch);
                alone.push_back(s.clone());
                batch.push_back(std::move(s));
            }
            std::vector<Rwkv7State*> ptrs;
            for (auto& s : batch) ptrs.push_back(&s);
            for (int step = 0; step < 3; ++step) {
                const auto toks = random_tokens(b, v, 200 + static_cast<uint64_t>(step));
                std::vector<float> got(static_cast<size_t>(b * v));
                e.decode(toks, ptrs, got);
                for (int64_t i = 0; i < b; ++i) {
                    Rwkv7State* one[1] = {&alone[static_cast<size_t>(i)]};
                    e.decode(std::span(&toks[static_cast<size_t>(i)], 1), one, scratch);
                    const auto gi = std::span<const float>(got).subspan(i * v, v);
                    EXPECT_LE(max_diff(gi, scratch), 1e-4 * std::max(1.0, max_abs(scratch)))
                        << weight_format_name(f) << " B " << b << " seq " << i << " step " << step;
                }
            }
            for (int64_t i = 0; i < b; ++i)
                EXPECT_LE(state_diff(batch[static_cast<size_t>(i)], alone[static_cast<size_t>(i)]),
                          1e-4);
        }
    }
}

// bf16 and int8 weights against f32 over 24 decoded tokens: the largest logit difference as a
// fraction of the largest logit (measured 0.3% bf16, 0.5-1.1% int8), and how often the
// arg-max agrees (measured 100% / 96%).
TEST(Rwkv7Engine, Bf16AndInt8StayCloseToF32) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(300, 3, 128, 32);
    const auto m = small_model(cfg, 13);
    const auto tokens = random_tokens(24, cfg.vocab, 14);
    Rwkv7Engine ref(*m, {});
    const auto want = decode_all(ref, tokens);
    const double scale = max_abs(want);
    ASSERT_GT(scale, 0.5);
    auto argmax_agree = [&](const std::vector<float>& got) {
        const auto v = static_cast<size_t>(cfg.vocab);
        int same = 0;
        for (size_t t = 0; t < tokens.size(); ++t) {
            auto a = want.begin() + static_cast<ptrdiff_t>(t * v), b = got.begin() + static_cast<ptrdiff_t>(t * v);
            same += std::max_element(a, a + static_cast<ptrdiff_t>(v)) - a ==
                    std::max_element(b, b + static_cast<ptrdiff_t>(v)) - b;
        }
        return static_cast<double>(same) / static_cast<double>(tokens.size());
    };
    struct Case {
        EngineOptions opt;
        double rel_tol, min_agree;
    };
    const Case cases[] = {
        {{WeightFormat::bf16, WeightFormat::bf16, WeightFormat::bf16}, 0.01, 0.95},
        {{WeightFormat::int8, WeightFormat::int8, WeightFormat::int8}, 0.03, 0.9},
        {{WeightFormat::int8, WeightFormat::f32, WeightFormat::f32}, 0.03, 0.9},
        {{WeightFormat::f32, WeightFormat::int8, WeightFormat::bf16}, 0.03, 0.9},
    };
    for (const Case& c : cases) {
        Rwkv7Engine e(*m, c.opt);
        const auto got = decode_all(e, tokens);
        const double rel = max_diff(got, want) / scale;
        const std::string name = std::string(weight_format_name(c.opt.matrices)) + "/" +
                                 weight_format_name(c.opt.head) + "/" +
                                 weight_format_name(c.opt.emb);
        std::printf("  %-14s max|dlogit| / max|logit| = %.4f, arg-max agreement %.2f\n",
                    name.c_str(), rel, argmax_agree(got));
        EXPECT_LE(rel, c.rel_tol) << name;
        EXPECT_GT(rel, 0.0) << name;  // the formats really differ
        EXPECT_GE(argmax_agree(got), c.min_agree) << name;
    }
    // the byte counts follow the formats
    Rwkv7Engine bf(*m, {WeightFormat::bf16, WeightFormat::bf16, WeightFormat::bf16});
    Rwkv7Engine i8(*m, {WeightFormat::int8, WeightFormat::int8, WeightFormat::int8});
    EXPECT_LT(bf.weight_bytes(), ref.weight_bytes() * 0.55);
    EXPECT_LT(i8.weight_bytes(), bf.weight_bytes() * 0.6);
}

// int8: scale = max|row| / 127; a row of integer multiples of its scale comes back exactly,
// any other row within half a step.
TEST(Rwkv7Engine, Int8QuantisationRoundTripsAKnownRow) {
    const double s = 1.0 / 32;  // a power of two: every k s is exact in f32
    std::vector<double> vals;
    for (int i = -127; i <= 127; i += 7) vals.push_back(i * s);
    vals.push_back(127 * s);
    const auto n = static_cast<int64_t>(vals.size());
    std::vector<double> two(vals);
    for (double x : vals) two.push_back(0.3 * x);  // second row: its own scale 0.3 s
    const Tensor w = Tensor::from(Shape{2, n}, two, DType::f32);
    const detail::QMatrix q = detail::make_matrix(w, WeightFormat::int8);
    ASSERT_EQ(q.scale.size(), 2u);
    EXPECT_EQ(q.scale[0], static_cast<float>(s));
    EXPECT_NEAR(q.scale[1], 0.3 * s, 1e-6 * s);
    EXPECT_EQ(q.i8()[0], -127);
    EXPECT_EQ(q.i8()[1], -120);
    EXPECT_EQ(q.i8()[n - 1], 127);
    std::vector<float> back(static_cast<size_t>(2 * n));
    q.rows_to_f32(0, 2, back.data());
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(back[static_cast<size_t>(i)], w.data<float>()[i]) << i;
    for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(back[static_cast<size_t>(n + i)], w.data<float>()[n + i], 0.5001 * q.scale[1]);
    EXPECT_EQ(q.bytes(), 2 * n + 8);
}

// The GEMV kernel (every format, row counts around the register block, widths with a scalar
// tail, every epilogue) and the sgemm path against a naive double-precision reference on the
// dequantised weights; error relative to 1 + |value|.
TEST(Rwkv7Engine, GemvKernelsMatchANaiveReference) {
    Rng rng(17, "gemv");
    std::vector<detail::GemvTile> tiles;
    std::vector<detail::Scratch> widen;
    const detail::BlasOneThread one_blas_thread;
    for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8}) {
        for (int64_t cols : {int64_t(37), int64_t(64), int64_t(203)}) {
            const int64_t out = 151;  // odd: the pair kernel leaves one row
            const detail::QMatrix q =
                detail::make_matrix(Tensor::randn(Shape{out, cols}, rng), f);
            std::vector<float> wf(static_cast<size_t>(out * cols));
            q.rows_to_f32(0, out, wf.data());
            for (int64_t rows : {int64_t(1), int64_t(3), int64_t(4), int64_t(6), int64_t(30)}) {
                const Tensor x = Tensor::randn(Shape{rows, cols}, rng);
                for (auto ep : {detail::Epilogue::store, detail::Epilogue::add,
                                detail::Epilogue::relu2}) {
                    const Tensor y0 = Tensor::randn(Shape{rows, out + 3}, rng);  // ld = out + 3
                    Tensor y = y0.clone();
                    const detail::GemvJob job{&q, x.data<float>(), cols, y.data<float>(),
                                              out + 3, ep};
                    if (rows < detail::kGemvMaxRows)
                        detail::gemv(std::span(&job, 1), rows, tiles);
                    else
                        detail::linear_rows(std::span(&job, 1), rows, tiles, widen);
                    double err = 0;
                    for (int64_t r = 0; r < rows; ++r)
                        for (int64_t o = 0; o < out + 3; ++o) {
                            const double old = y0.data<float>()[r * (out + 3) + o];
                            double want = old;
                            if (o < out) {
                                double d = 0;
                                for (int64_t i = 0; i < cols; ++i)
                                    d += static_cast<double>(wf[static_cast<size_t>(o * cols + i)]) *
                                         x.data<float>()[r * cols + i];
                                want = ep == detail::Epilogue::store ? d
                                       : ep == detail::Epilogue::add ? old + d
                                                                      : std::pow(std::max(d, 0.0), 2);
                            }
                            const double got = y.data<float>()[r * (out + 3) + o];
                            err = std::max(err, std::fabs(got - want) / (1 + std::fabs(want)));
                        }
                    EXPECT_LE(err, 2e-5) << weight_format_name(f) << " cols " << cols << " rows "
                                         << rows << " ep " << static_cast<int>(ep);
                }
            }
        }
    }
}

TEST(Rwkv7Engine, StateRoundTripsThroughStateFiles) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(60, 2, 32, 16);
    const auto m = small_model(cfg, 19);
    Rwkv7Engine e(*m, {});
    const auto tokens = random_tokens(12, cfg.vocab, 20);
    std::vector<float> a(static_cast<size_t>(cfg.vocab)), b(a.size());
    Rwkv7State s = e.new_state();
    e.prefill(std::span(tokens).first(8), s, a);
    const auto path = std::filesystem::temp_directory_path() /
                      ("goose_engine_state_" + std::to_string(::getpid()) + ".bin");
    models::save_rwkv7_state(path.string(), s, cfg);
    Rwkv7State loaded = models::load_rwkv7_state(path.string(), cfg);
    std::filesystem::remove(path);
    EXPECT_EQ(state_diff(s, loaded), 0.0);
    e.prefill(std::span(tokens).subspan(8), s, a);
    e.prefill(std::span(tokens).subspan(8), loaded, b);
    EXPECT_EQ(max_diff(a, b), 0.0);
}

// After the first call of a batch size, decode steps allocate nothing (every format, B = 1
// and a batch past the register block).
TEST(Rwkv7Engine, DecodeAllocatesNothingPerToken) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(64, 2, 64, 16);
    const auto m = small_model(cfg, 25);
    const int64_t start = test::allocation_count();
    (void)m->zero_state(1);
    ASSERT_GT(test::allocation_count(), start);  // the counter sees allocations
    for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8}) {
        Rwkv7Engine e(*m, {f, f, f});
        for (int64_t b : {int64_t(1), int64_t(6)}) {
            std::vector<Rwkv7State> states;
            std::vector<Rwkv7State*> ptrs;
            for (int64_t i = 0; i < b; ++i) states.push_back(e.new_state());
            for (auto& s : states) ptrs.push_back(&s);
            std::vector<int32_t> toks(static_cast<size_t>(b), 3);
            std::vector<float> logits(static_cast<size_t>(b * cfg.vocab));
            e.decode(toks, ptrs, logits);  // grows the buffers for this batch
            const int64_t before = test::allocation_count();
            for (int step = 0; step < 5; ++step) e.decode(toks, ptrs, logits);
            EXPECT_EQ(test::allocation_count() - before, 0) << weight_format_name(f) << " B " << b;
        }
    }
}

TEST(Rwkv7Engine, LoadsACheckpoint) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(45, 2, 32, 16);
    const auto m = small_model(cfg, 23);
    const auto path = std::filesystem::temp_directory_path() /
                      ("goose_engine_model_" + std::to_string(::getpid()) + ".pth");
    models::save_rwkv7(*m, path.string(), DType::f32);
    const auto loaded = Rwkv7Engine::load(path.string(), {.matrices = WeightFormat::bf16});
    std::filesystem::remove(path);
    Rwkv7Engine direct(*m, {.matrices = WeightFormat::bf16});
    EXPECT_EQ(loaded->config().n_layer, 2);
    EXPECT_EQ(loaded->options().matrices, WeightFormat::bf16);
    EXPECT_EQ(loaded->weight_bytes(), direct.weight_bytes());
    const auto tokens = random_tokens(6, cfg.vocab, 24);
    EXPECT_EQ(max_diff(decode_all(*loaded, tokens), decode_all(direct, tokens)), 0.0);
    test::expect_error([] { (void)Rwkv7Engine::load("/nonexistent/x.pth", {}); }, "/nonexistent/x.pth");
}

TEST(Rwkv7Engine, BadInputIsAClearError) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(40, 2, 32, 16);
    const auto m = small_model(cfg, 21);
    Rwkv7Engine e(*m, {});
    std::vector<float> logits(40), two(80);
    Rwkv7State s = e.new_state();
    const std::vector<int32_t> bad{3, 40}, neg{-1}, ok{1}, ok2{1, 2};
    test::expect_error([&] { e.prefill(bad, s, logits); }, {"token 40", "position 1", "[0, 40)"});
    test::expect_error([&] { e.prefill(neg, s, logits); }, "token -1");
    test::expect_error([&] { e.prefill({}, s, logits); }, "no tokens");
    test::expect_error([&] { e.prefill(ok, s, two); }, {"logits has 80", "40"});
    Rwkv7State* ps[1] = {&s};
    test::expect_error([&] { e.decode(bad, ps, two); }, "2 tokens but 1 states");
    test::expect_error([&] { e.decode(std::span(bad).subspan(1), ps, logits); }, "token 40");
    // states of another shape, dtype or batch
    Rwkv7State wide = Rwkv7State::zeros(Rwkv7Config::with_defaults(40, 2, 64, 16), 1);
    Rwkv7State* pw[1] = {&wide};
    test::expect_error([&] { e.decode(ok, pw, logits); }, {"state 0", "att_shift[0]", "f32[1, 32]"});
    Rwkv7State f64 = Rwkv7State::zeros(cfg, 1, DType::f64);
    test::expect_error([&] { e.prefill(ok, f64, logits); }, {"f32", "f64"});
    Rwkv7State batch2 = Rwkv7State::zeros(cfg, 2);
    test::expect_error([&] { e.prefill(ok, batch2, logits); }, "batch 1");
    Rwkv7State deep = Rwkv7State::zeros(Rwkv7Config::with_defaults(40, 3, 32, 16), 1);
    test::expect_error([&] { e.prefill(ok, deep, logits); }, {"3/3/3", "has 2"});
    // the same state twice in one batch, or two states sharing tensors
    Rwkv7State* twice[2] = {&s, &s};
    test::expect_error([&] { e.decode(ok2, twice, two); }, "share memory");
    Rwkv7State alias = s;  // shallow copy: same tensors
    Rwkv7State* aliased[2] = {&s, &alias};
    test::expect_error([&] { e.decode(ok2, aliased, two); }, "share memory");
    test::expect_error([] { (void)parse_weight_format("fp8"); }, {"fp8", "f32, bf16, int8"});
    EXPECT_EQ(parse_weight_format("int8"), WeightFormat::int8);
}

}  // namespace
}  // namespace goose::infer
