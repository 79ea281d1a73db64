// RWKV-7 model structure: configuration, official parameter names and shapes (spec §1, §7.1),
// initialisation (§9), checkpoint loading, errors and optimizer groups (§10.2).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "goose/autograd.h"
#include "goose/models/rwkv7.h"
#include "rwkv7_test_util.h"

namespace goose::models {
namespace {

using testing::params_by_name;

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "<no error>";
}

TEST(Rwkv7Config, DefaultLoraRanksFollowTheCurrentFormulas) {
    // spec §1 table "new w/a/v/g"; C = 1024 needs round-half-to-even (2.5 -> 2)
    const int64_t want[][5] = {{768, 64, 64, 32, 128},    {1024, 64, 64, 64, 160},
                               {2048, 128, 128, 64, 224}, {2560, 128, 128, 96, 256},
                               {4096, 160, 160, 96, 320}, {64, 32, 32, 32, 32}};
    for (const auto& w : want) {
        const Rwkv7Config c = Rwkv7Config::with_defaults(65536, 12, w[0]);
        EXPECT_EQ(c.d_decay, w[1]) << "C " << w[0];
        EXPECT_EQ(c.d_aaa, w[2]) << "C " << w[0];
        EXPECT_EQ(c.d_mv, w[3]) << "C " << w[0];
        EXPECT_EQ(c.d_gate, w[4]) << "C " << w[0];
        EXPECT_EQ(c.dim_ffn, 4 * w[0]);
        EXPECT_EQ(c.head_size, 64);
    }
    // "0.1B" L12-D768-V65536 (spec §1)
    EXPECT_EQ(Rwkv7Config::with_defaults(65536, 12, 768).num_parameters(), 191084544);
}

TEST(Rwkv7Config, ValidateNamesTheProblem) {
    Rwkv7Config c = Rwkv7Config::with_defaults(50, 2, 100, 64);
    std::string msg = error_of([&] { c.validate(); });
    EXPECT_NE(msg.find("n_embd 100"), std::string::npos) << msg;
    EXPECT_NE(msg.find("head_size 64"), std::string::npos) << msg;
    c = Rwkv7Config::with_defaults(50, 2, 64, 16);
    c.d_gate = 0;
    msg = error_of([&] { Rwkv7 m(c); });
    EXPECT_NE(msg.find("d_gate"), std::string::npos) << msg;
    c = Rwkv7Config::with_defaults(50, 2, 64, 16);
    msg = error_of([&] { Rwkv7 m(c, DType::bf16); });
    EXPECT_NE(msg.find("bf16"), std::string::npos) << msg;
}

TEST(Rwkv7, ParameterNamesAndShapesAreTheOfficialOnes) {
    const int64_t v = 50, c = 64, n = 16, h = c / n, nl = 2;
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(v, nl, c, n);
    const int64_t dw = cfg.d_decay, da = cfg.d_aaa, dv = cfg.d_mv, dg = cfg.d_gate, f = 4 * c;
    Rwkv7 m(cfg);
    // spec §7.1, in train.py's registration order
    std::vector<std::pair<std::string, Shape>> want = {{"emb.weight", {v, c}}};
    for (int64_t l = 0; l < nl; ++l) {
        const std::string p = "blocks." + std::to_string(l) + ".";
        want.push_back({p + "ln1.weight", {c}});
        want.push_back({p + "ln1.bias", {c}});
        want.push_back({p + "ln2.weight", {c}});
        want.push_back({p + "ln2.bias", {c}});
        if (l == 0) {
            want.push_back({p + "ln0.weight", {c}});
            want.push_back({p + "ln0.bias", {c}});
        }
        for (const char* x : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"})
            want.push_back({p + "att." + x, {1, 1, c}});
        want.push_back({p + "att.w1", {c, dw}});
        want.push_back({p + "att.w2", {dw, c}});
        want.push_back({p + "att.w0", {1, 1, c}});
        want.push_back({p + "att.a1", {c, da}});
        want.push_back({p + "att.a2", {da, c}});
        want.push_back({p + "att.a0", {1, 1, c}});
        want.push_back({p + "att.v1", {c, dv}});
        want.push_back({p + "att.v2", {dv, c}});
        want.push_back({p + "att.v0", {1, 1, c}});
        want.push_back({p + "att.g1", {c, dg}});
        want.push_back({p + "att.g2", {dg, c}});
        want.push_back({p + "att.k_k", {1, 1, c}});
        want.push_back({p + "att.k_a", {1, 1, c}});
        want.push_back({p + "att.r_k", {h, n}});
        for (const char* x : {"receptance", "key", "value", "output"})
            want.push_back({p + "att." + x + ".weight", {c, c}});
        want.push_back({p + "att.ln_x.weight", {c}});
        want.push_back({p + "att.ln_x.bias", {c}});
        want.push_back({p + "ffn.x_k", {1, 1, c}});
        want.push_back({p + "ffn.key.weight", {f, c}});
        want.push_back({p + "ffn.value.weight", {c, f}});
    }
    want.push_back({"ln_out.weight", {c}});
    want.push_back({"ln_out.bias", {c}});
    want.push_back({"head.weight", {v, c}});

    const auto got = m.named_parameters();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].first, want[i].first) << i;
        EXPECT_EQ(got[i].second.shape(), want[i].second) << want[i].first;
        EXPECT_EQ(got[i].second.dtype(), DType::f32) << want[i].first;
    }
    // spec §1: 2VC + L (12C² + 2C (Dw + Da + Dv + Dg) + 19C) + 4C
    const int64_t formula =
        2 * v * c + nl * (12 * c * c + 2 * c * (dw + da + dv + dg) + 19 * c) + 4 * c;
    EXPECT_EQ(m.num_parameters(), formula);
    EXPECT_EQ(cfg.num_parameters(), formula);
}

// ---- initialisation ---------------------------------------------------------------------------

class Rwkv7Init : public ::testing::Test {
  protected:
    // head size 64 so that the spec's zigzag constants (64, 31.5) apply literally
    Rwkv7Init() : cfg(Rwkv7Config::with_defaults(50, 3, 128, 64)), m(cfg) {
        Rng rng(7, "init");
        m.init_official(rng);
        p = params_by_name(m);
    }
    double at(const std::string& name, int64_t i) const {
        return p.at(name).value().to_vector()[static_cast<size_t>(i)];
    }
    Rwkv7Config cfg;
    Rwkv7 m;
    std::map<std::string, Var> p;
};

TEST_F(Rwkv7Init, VectorsFollowTheFormulas) {
    const double c = 128, nl = 3;
    for (int l = 0; l < 3; ++l) {
        const std::string a = "blocks." + std::to_string(l) + ".att.";
        const double r01 = l / (nl - 1), r1 = 1 - l / nl;
        for (int64_t n : {0, 1, 5, 63, 64, 100, 127}) {
            const double ddd = n / c, lin = n / (c - 1) - 0.5;
            double z = ((n % 64) - 31.5) / 31.5;
            z = z * std::fabs(z);
            const double www = -6 + 6 * std::pow(n / (c - 1), 1 + std::pow(r01, 0.3));
            const double tol = 2e-6;
            EXPECT_NEAR(at(a + "x_r", n), 1 - std::pow(ddd, 0.2 * r1), tol) << l << " " << n;
            EXPECT_NEAR(at(a + "x_w", n), 1 - std::pow(ddd, 0.9 * r1), tol) << l << " " << n;
            EXPECT_NEAR(at(a + "x_k", n), 1 - std::pow(ddd, 0.7 * r1), tol) << l << " " << n;
            EXPECT_NEAR(at(a + "x_g", n), 1 - std::pow(ddd, 0.2 * r1), tol) << l << " " << n;
            EXPECT_NEAR(at(a + "w0", n), www + 0.5 + 2.5 * z, 1e-5) << l << " " << n;
            EXPECT_NEAR(at(a + "a0", n), -0.19 + 0.3 * z + 0.4 * lin, tol) << l << " " << n;
            EXPECT_NEAR(at(a + "v0", n), 0.73 - 0.4 * lin, tol) << l << " " << n;
            EXPECT_NEAR(at(a + "k_k", n), 0.71 - 0.1 * lin, tol) << l << " " << n;
            EXPECT_NEAR(at(a + "k_a", n), 1.02, tol);
            EXPECT_NEAR(at("blocks." + std::to_string(l) + ".ffn.x_k", n),
                        1 - std::pow(ddd, std::pow(r1, 4)), tol);
        }
        for (int64_t i : {0, 77}) EXPECT_NEAR(at(a + "r_k", i), -0.04, 1e-7);
        EXPECT_NEAR(at(a + "ln_x.weight", 3), std::pow((l + 1) / nl, 0.7), 1e-6);
        EXPECT_EQ(at(a + "ln_x.bias", 3), 0.0);
    }
    // a few numbers by hand: w0 spans [-8, 3] (layer 0: channel 0 = -6 + 0.5 - 2.5, channel
    // C-1 = 0 + 0.5 + 2.5); x_r of layer 0 at channel 64 = 1 - 0.5^0.2
    EXPECT_NEAR(at("blocks.0.att.w0", 0), -8.0, 1e-6);
    EXPECT_NEAR(at("blocks.0.att.w0", 127), 3.0, 1e-6);
    EXPECT_NEAR(at("blocks.0.att.x_r", 64), 0.12944943670387588, 1e-6);
    EXPECT_NEAR(at("blocks.0.att.x_r", 0), 1.0, 0.0);
    EXPECT_NEAR(at("blocks.0.att.a0", 0), -0.19 - 0.3 - 0.2, 1e-6);
    EXPECT_NEAR(at("blocks.0.att.k_k", 127), 0.66, 1e-6);
    // norms
    for (const char* n : {"blocks.0.ln0.weight", "blocks.2.ln1.weight", "ln_out.weight"})
        EXPECT_EQ(at(n, 5), 1.0);
    EXPECT_EQ(at("blocks.1.ln2.bias", 5), 0.0);
}

// A (r, k) matrix times its transpose (or transpose times it when cols_gram) vs s * I.
double gram_error(const Tensor& w, double s, bool cols_gram) {
    const int64_t r = w.size(0), k = w.size(1);
    const auto v = w.to_vector();
    const int64_t n = cols_gram ? k : r, len = cols_gram ? r : k;
    double worst = 0;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
            double d = 0;
            for (int64_t t = 0; t < len; ++t)
                d += cols_gram ? v[t * k + i] * v[t * k + j] : v[i * k + t] * v[j * k + t];
            worst = std::max(worst, std::fabs(d - (i == j ? s : 0.0)));
        }
    return worst;
}

TEST_F(Rwkv7Init, MatricesAreOrthogonalWithTheGains) {
    const Tensor& wr = p.at("blocks.1.att.receptance.weight").value();
    EXPECT_LT(gram_error(wr, 1.0, false), 1e-5);  // W Wᵀ = I
    EXPECT_LT(gram_error(wr, 1.0, true), 1e-5);   // square: Wᵀ W = I too
    EXPECT_LT(gram_error(p.at("blocks.0.att.key.weight").value(), 0.01, false), 1e-6);
    EXPECT_LT(gram_error(p.at("blocks.2.att.value.weight").value(), 1.0, false), 1e-5);
    EXPECT_LT(gram_error(p.at("blocks.0.ffn.key.weight").value(), 1.0, true), 1e-5);  // (4C, C)
    EXPECT_LT(gram_error(p.at("blocks.1.att.w2").value(), 0.01, false), 1e-6);  // (D, C), D < C
    EXPECT_LT(gram_error(p.at("blocks.1.att.g2").value(), 0.01, false), 1e-6);
    EXPECT_LT(gram_error(p.at("head.weight").value(), 0.25, false), 1e-6);  // V < C: gain 0.5
    // different tensors and layers get different draws
    EXPECT_NE(at("blocks.0.att.receptance.weight", 0), at("blocks.1.att.receptance.weight", 0));
    EXPECT_NE(at("blocks.0.att.w2", 0), at("blocks.0.att.a2", 0));
}

TEST_F(Rwkv7Init, ZeroMatricesAndEmbedding) {
    for (const auto& [name, var] : p) {
        const bool zero = name.ends_with("att.w1") || name.ends_with("att.a1") ||
                          name.ends_with("att.v1") || name.ends_with("att.g1") ||
                          name.ends_with("att.output.weight") || name.ends_with("ffn.value.weight");
        if (!zero) continue;
        for (double x : var.value().to_vector()) ASSERT_EQ(x, 0.0) << name;
    }
    double lo = 1, hi = -1;
    for (double x : p.at("emb.weight").value().to_vector()) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    }
    EXPECT_GE(lo, -1e-4);
    EXPECT_LE(hi, 1e-4);
    EXPECT_LT(lo, -5e-5);  // spread over the range
    EXPECT_GT(hi, 5e-5);
}

TEST(Rwkv7InitMore, TallLoraAndHeadGains) {
    // C = 16 < D = 32: ortho_init multiplies the gain by sqrt(rows / cols); V > C: head gain
    // 0.5 sqrt(V / C)
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(64, 1, 16, 8);
    Rwkv7 m(cfg);
    Rng rng(3);
    m.init_official(rng);
    auto p = params_by_name(m);
    const Tensor& w2 = p.at("blocks.0.att.w2").value();  // (32, 16)
    EXPECT_LT(gram_error(w2, 0.01 * 2.0, true), 1e-6);   // Wᵀ W = (0.1 sqrt 2)² I
    EXPECT_LT(gram_error(p.at("head.weight").value(), 0.25 * 4.0, true), 1e-5);  // (64, 16)
}

TEST(Rwkv7InitMore, ReproducibleAndBf16Rounding) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(40, 2, 32, 16);
    Rwkv7 a(cfg), b(cfg), c(cfg);
    Rng r1(5), r2(5);
    a.init_official(r1);
    b.init_official(r2, /*bf16_round=*/true);
    Rng r3(6);
    c.init_official(r3);
    auto pa = params_by_name(a), pb = params_by_name(b), pc = params_by_name(c);
    bool any_rounded = false;
    for (const auto& [name, var] : pa) {
        const auto va = var.value().to_vector(), vb = pb.at(name).value().to_vector();
        for (size_t i = 0; i < va.size(); ++i) {
            const float want = bf16_to_float(float_to_bf16(static_cast<float>(va[i])));
            ASSERT_EQ(vb[i], want) << name << " " << i;
            any_rounded = any_rounded || vb[i] != va[i];
        }
    }
    EXPECT_TRUE(any_rounded);
    EXPECT_NE(pa.at("head.weight").value().to_vector(), pc.at("head.weight").value().to_vector());
}

// ---- checkpoints ------------------------------------------------------------------------------

Rwkv7Config odd_config() {
    Rwkv7Config c;
    c.vocab = 37;
    c.n_layer = 3;
    c.n_embd = 32;
    c.head_size = 16;
    c.d_decay = 8;
    c.d_aaa = 12;
    c.d_mv = 6;
    c.d_gate = 20;
    c.dim_ffn = 100;
    return c;
}

std::unique_ptr<Rwkv7> odd_model(uint64_t seed) {
    auto m = std::make_unique<Rwkv7>(odd_config());
    Rng rng(seed);
    m->init_official(rng);
    testing::randomise_zero_parts(*m, rng);
    return m;
}

std::vector<double> logits_of(const Rwkv7& m, const Tensor& ids) {
    ag::NoGradGuard ng;
    return m.forward(ids).value().to_vector();
}

TEST(Rwkv7Load, InferConfigRoundTrip) {
    auto m = odd_model(1);
    const Rwkv7Config got = Rwkv7::infer_config(m->state_dict());
    const Rwkv7Config want = odd_config();
    EXPECT_EQ(got.vocab, want.vocab);
    EXPECT_EQ(got.n_layer, want.n_layer);
    EXPECT_EQ(got.n_embd, want.n_embd);
    EXPECT_EQ(got.head_size, want.head_size);
    EXPECT_EQ(got.d_decay, want.d_decay);
    EXPECT_EQ(got.d_aaa, want.d_aaa);
    EXPECT_EQ(got.d_mv, want.d_mv);
    EXPECT_EQ(got.d_gate, want.d_gate);
    EXPECT_EQ(got.dim_ffn, want.dim_ffn);

    Rng rng(2);
    const Tensor ids = testing::random_ids(2, 6, 37, rng);
    auto copy = Rwkv7::from_state_dict(m->state_dict());
    EXPECT_EQ(logits_of(*copy, ids), logits_of(*m, ids));
    // bf16 tensors and the DeepSpeed prefix are accepted
    nn::StateDict sd;
    for (auto& [k, t] : m->state_dict()) sd.emplace("_forward_module." + k, t.to(DType::bf16));
    auto from_bf16 = Rwkv7::from_state_dict(sd, DType::f64);
    EXPECT_EQ(from_bf16->dtype(), DType::f64);
    auto q = params_by_name(*from_bf16);
    EXPECT_EQ(q.at("blocks.2.att.w0").value().to_vector()[3],
              bf16_to_float(float_to_bf16(static_cast<float>(
                  params_by_name(*m).at("blocks.2.att.w0").value().to_vector()[3]))));
}

TEST(Rwkv7Load, MissingLayer0ValueLoraIsFilled) {
    auto m = odd_model(3);
    nn::StateDict sd = m->state_dict();
    for (const char* k : {"blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2"}) sd.erase(k);
    EXPECT_EQ(Rwkv7::infer_config(sd).d_mv, 6);  // from layer 1
    Rwkv7 fresh(odd_config());
    fresh.load(sd);
    auto p = params_by_name(fresh);
    EXPECT_NEAR(p.at("blocks.0.att.v0").value().to_vector()[0], 0.73 + 0.2, 1e-6);  // init value
    for (double x : p.at("blocks.0.att.v1").value().to_vector()) ASSERT_EQ(x, 0.0);
    Rng rng(4);
    const Tensor ids = testing::random_ids(1, 5, 37, rng);
    EXPECT_EQ(logits_of(fresh, ids), logits_of(*m, ids));  // layer 0's v-LoRA is unused
}

TEST(Rwkv7Load, ErrorsNameTheKey) {
    auto m = odd_model(5);
    {
        nn::StateDict sd = m->state_dict();
        sd["blocks.1.att.w1"] = Tensor::zeros(Shape{32, 9});
        const std::string msg = error_of([&] { odd_model(6)->load(sd); });
        EXPECT_NE(msg.find("blocks.1.att.w1"), std::string::npos) << msg;
        EXPECT_NE(msg.find("[32, 9]"), std::string::npos) << msg;
    }
    {
        nn::StateDict sd = m->state_dict();
        sd["blocks.1.att.bogus"] = Tensor::zeros(Shape{3});
        const std::string msg = error_of([&] { odd_model(6)->load(sd); });
        EXPECT_NE(msg.find("blocks.1.att.bogus"), std::string::npos) << msg;
    }
    {
        nn::StateDict sd = m->state_dict();
        sd.erase("blocks.2.ffn.x_k");
        const std::string msg = error_of([&] { odd_model(6)->load(sd); });
        EXPECT_NE(msg.find("blocks.2.ffn.x_k"), std::string::npos) << msg;
    }
    {
        nn::StateDict sd = m->state_dict();
        sd.erase("emb.weight");
        sd.erase("blocks.0.att.g1");
        const std::string msg = error_of([&] { Rwkv7::infer_config(sd); });
        EXPECT_NE(msg.find("emb.weight"), std::string::npos) << msg;
        EXPECT_NE(msg.find("blocks.0.att.g1"), std::string::npos) << msg;
    }
    {
        // a failed load leaves the model unchanged
        auto target = odd_model(7);
        const auto before = target->state_dict().at("head.weight").to_vector();
        nn::StateDict sd = m->state_dict();
        sd["ln_out.bias"] = Tensor::zeros(Shape{31});
        EXPECT_THROW(target->load(sd), Error);
        EXPECT_EQ(target->state_dict().at("head.weight").to_vector(), before);
    }
}

TEST(Rwkv7Errors, BadIdsAndStates) {
    auto m = odd_model(8);
    Tensor ids = Tensor::from(Shape{1, 4}, {1, 2, 37, 0}, DType::i64);
    std::string msg = error_of([&] { m->forward(ids); });
    EXPECT_NE(msg.find("id 37"), std::string::npos) << msg;
    Rwkv7State s = m->zero_state(1);
    msg = error_of([&] { m->step(Tensor::from(Shape{1}, {-1}, DType::i32), s); });
    EXPECT_NE(msg.find("id -1"), std::string::npos) << msg;
    msg = error_of([&] { m->forward(Tensor::zeros(Shape{4}, DType::i64)); });
    EXPECT_NE(msg.find("(B, T)"), std::string::npos) << msg;
    msg = error_of([&] { m->forward(Tensor::zeros(Shape{1, 4}, DType::f32)); });
    EXPECT_NE(msg.find("i32 or i64"), std::string::npos) << msg;
    Rwkv7State s2 = m->zero_state(2);  // batch 2 state for batch 1 ids
    msg = error_of([&] { m->forward(Tensor::zeros(Shape{1, 3}, DType::i64), &s2); });
    EXPECT_NE(msg.find("att_shift[0]"), std::string::npos) << msg;
    Rwkv7State s3 = Rwkv7State::zeros(odd_config(), 1, DType::f64);  // f64 state, f32 model
    msg = error_of([&] { m->forward(Tensor::zeros(Shape{1, 3}, DType::i64), &s3); });
    EXPECT_NE(msg.find("f32"), std::string::npos) << msg;
}

TEST(Rwkv7State, ZerosAndClone) {
    const Rwkv7Config cfg = odd_config();
    Rwkv7State s = Rwkv7State::zeros(cfg, 3);
    ASSERT_EQ(s.att_shift.size(), 3u);
    EXPECT_EQ(s.att_shift[1].shape(), (Shape{3, 32}));
    EXPECT_EQ(s.wkv[2].shape(), (Shape{3, 2, 16, 16}));
    EXPECT_EQ(s.ffn_shift[0].shape(), (Shape{3, 32}));
    EXPECT_EQ(s.batch(), 3);
    Rwkv7State c = s.clone();
    c.wkv[0].set({0, 0, 0, 0}, 5.0);
    EXPECT_EQ(s.wkv[0].get({0, 0, 0, 0}), 0.0);
}

// ---- optimizer groups -------------------------------------------------------------------------

TEST(Rwkv7ParamGroups, AsTrainPy) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(50, 2, 64, 16);
    Rwkv7 m(cfg);
    auto groups = rwkv7_param_groups(m, 0.1);
    ASSERT_EQ(groups.size(), 3u);
    std::map<const VarImpl*, const optim::ParamGroup*> group_of;
    size_t total = 0;
    for (const auto& g : groups) {
        for (const Var& v : g.params) group_of[v.impl()] = &g;
        total += g.params.size();
    }
    EXPECT_EQ(total, m.named_parameters().size());
    EXPECT_EQ(group_of.size(), total);  // each parameter once
    const std::set<std::string> decayed_suffixes = {"att.receptance.weight", "att.key.weight",
                                                    "att.value.weight",      "att.output.weight",
                                                    "ffn.key.weight",        "ffn.value.weight"};
    for (const auto& [name, v] : m.named_parameters()) {
        const optim::ParamGroup* g = group_of.at(v.impl());
        bool decayed = name == "emb.weight" || name == "head.weight";
        for (const auto& s : decayed_suffixes) decayed = decayed || name.ends_with(s);
        if (name.ends_with("att.w0")) {
            EXPECT_EQ(g->name, "lr_2x") << name;
            EXPECT_EQ(g->lr_scale, 2.0);
            EXPECT_EQ(g->weight_decay, 0.0);
        } else if (decayed) {
            EXPECT_EQ(g->name, "lr_decay") << name;
            EXPECT_EQ(g->lr_scale, 1.0);
            EXPECT_EQ(g->weight_decay, 0.1);
        } else {
            EXPECT_EQ(g->name, "lr_1x") << name;
            EXPECT_EQ(g->lr_scale, 1.0);
            EXPECT_EQ(g->weight_decay, 0.0);
        }
    }
    // without weight decay the matrices join lr_1x (train.py)
    auto no_wd = rwkv7_param_groups(m, 0.0);
    ASSERT_EQ(no_wd.size(), 2u);
    EXPECT_EQ(no_wd[0].name, "lr_1x");
    EXPECT_EQ(no_wd[1].name, "lr_2x");
    EXPECT_EQ(no_wd[1].params.size(), 2u);
    // usable by the optimizer
    optim::Adam opt =
        optim::make_adamw(groups, {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-18});
    EXPECT_EQ(opt.groups().size(), 3u);
}

}  // namespace
}  // namespace goose::models
