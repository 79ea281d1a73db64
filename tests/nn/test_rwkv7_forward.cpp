// RWKV-7 forward: parallel vs RNN vs split prefill equivalence (spec §4.3, §6), and a
// finite-difference gradient check of the whole model in double.
#include <gtest/gtest.h>

#include <cmath>

#include "goose/autograd.h"
#include "goose/autograd/l2wrap.h"
#include "goose/models/rwkv7.h"
#include "rwkv7_test_util.h"

namespace goose::models {
namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
    EXPECT_EQ(a.shape(), b.shape());
    const auto va = a.to_vector(), vb = b.to_vector();
    double d = 0;
    for (size_t i = 0; i < va.size(); ++i) d = std::max(d, std::fabs(va[i] - vb[i]));
    return d;
}

double max_abs(const Tensor& a) {
    double d = 0;
    for (double x : a.to_vector()) d = std::max(d, std::fabs(x));
    return d;
}

// Parallel forward of T = 13 tokens == token-by-token step() == prefill 5 + 8 with the carried
// state, in f32. The model is init_official plus random values in the zero-initialised matrices
// (see randomise_zero_parts), so that every block contributes.
TEST(Rwkv7Forward, ParallelEqualsRnnEqualsSplitPrefill) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(50, 2, 64, 16);
    Rwkv7 m(cfg);
    Rng rng(21, "equiv");
    m.init_official(rng);
    testing::randomise_zero_parts(m, rng);
    const int64_t b = 2, t = 13, v = cfg.vocab;
    const Tensor ids = testing::random_ids(b, t, v, rng);
    ag::NoGradGuard no_grad;
    const size_t tape0 = ag::tape_size();  // other tests of this thread may have left entries

    Rwkv7State s_par = m.zero_state(b);
    const Tensor full = m.forward(ids, &s_par).value();  // (B, T, V)
    ASSERT_EQ(full.shape(), (Shape{b, t, v}));
    EXPECT_GT(max_abs(full), 0.1);                               // not trivial
    EXPECT_EQ(max_abs_diff(full, m.forward(ids).value()), 0.0);  // zero state == no state

    // RNN mode
    Rwkv7State s_rnn = m.zero_state(b);
    for (int64_t i = 0; i < t; ++i) {
        const Tensor tok = ids.select(1, i).contiguous();  // (B)
        const Tensor logits = m.step(tok, s_rnn);          // (B, V)
        ASSERT_EQ(logits.shape(), (Shape{b, v}));
        EXPECT_LE(max_abs_diff(logits, full.select(1, i).contiguous()), 1e-4) << "token " << i;
    }
    // split prefill 5 + 8
    Rwkv7State s_split = m.zero_state(b);
    const Tensor first = m.forward(ids.slice(1, 0, 5).contiguous(), &s_split).value();
    const Tensor second = m.forward(ids.slice(1, 5, t).contiguous(), &s_split).value();
    EXPECT_LE(max_abs_diff(first, full.slice(1, 0, 5).contiguous()), 1e-4);
    EXPECT_LE(max_abs_diff(second, full.slice(1, 5, t).contiguous()), 1e-4);

    // the final states agree too
    for (size_t l = 0; l < 2; ++l) {
        for (const Rwkv7State* s : {&s_rnn, &s_split}) {
            EXPECT_LE(max_abs_diff(s->att_shift[l], s_par.att_shift[l]), 1e-5) << l;
            EXPECT_LE(max_abs_diff(s->wkv[l], s_par.wkv[l]), 1e-4) << l;
            EXPECT_LE(max_abs_diff(s->ffn_shift[l], s_par.ffn_shift[l]), 1e-5) << l;
        }
        EXPECT_GT(max_abs(s_par.wkv[l]), 1e-3);
        EXPECT_EQ(s_par.wkv[l].dtype(), DType::f32);
    }
    EXPECT_EQ(ag::tape_size(), tape0);  // nothing recorded without grad mode
}

// The state a call returns is the ln1/ln2 output of the last token (spec §6, pitfall 1).
TEST(Rwkv7Forward, ShiftStatesHoldLayerNormOutputs) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(30, 1, 32, 16);
    Rwkv7 m(cfg);
    Rng rng(4);
    m.init_official(rng);
    testing::randomise_zero_parts(m, rng);
    ag::NoGradGuard no_grad;
    const Tensor ids = Tensor::from(Shape{1, 2}, {3, 7}, DType::i64);
    Rwkv7State s = m.zero_state(1);
    m.forward(ids, &s);
    // layer 0: ln1(ln0(emb[7])), the residual stream before the block's att
    const Rwkv7Block& blk = m.block(0);
    Var x = blk.ln0->forward(Var(m.emb->weight.value().slice(0, 7, 8).clone()));  // (1, C)
    Var want = blk.ln1->forward(x);
    EXPECT_LE(max_abs_diff(s.att_shift[0], want.value()), 1e-6);
}

// Whole-model gradient in f64 against central differences: every parameter tensor, a sample
// of its elements. Random values on top of init_official (every parameter non-trivial) and a
// random initial state (the token shift and WKV state inputs are exercised).
TEST(Rwkv7Forward, FiniteDifferenceGradientF64) {
    Rwkv7Config cfg;
    cfg.vocab = 11;
    cfg.n_layer = 2;
    cfg.n_embd = 16;
    cfg.head_size = 8;
    cfg.d_decay = 4;
    cfg.d_aaa = 5;
    cfg.d_mv = 3;
    cfg.d_gate = 6;
    cfg.dim_ffn = 24;
    Rwkv7 m(cfg, DType::f64);
    Rng rng(99, "fd");
    m.init_official(rng);
    for (auto& [name, p] : m.named_parameters()) {
        Tensor noise = Tensor::randn(p.shape(), rng, DType::f64, 0.0, 0.3);
        p.value_mut().copy_(ops::binary_forward(BinaryOp::add, p.value(), noise));
    }
    const int64_t b = 2, t = 5;
    const Tensor ids = testing::random_ids(b, t, cfg.vocab, rng);
    const Tensor targets = testing::random_ids(b, t, cfg.vocab, rng);
    Rwkv7State s0 = m.zero_state(b);
    for (auto* list : {&s0.att_shift, &s0.wkv, &s0.ffn_shift})
        for (Tensor& x : *list) x = Tensor::randn(x.shape(), rng, DType::f64, 0.0, 0.5);

    auto loss_of = [&]() {
        Rwkv7State s = s0.clone();
        return ag::cross_entropy(m.forward(ids, &s), targets);
    };
    m.zero_grad();
    ag::backward(loss_of());

    const double h = 1e-6;
    int checked = 0;
    for (auto& [name, p] : m.named_parameters()) {
        // layer 0's v0/v1/v2 exist (train.py) but are unused: no gradient, and none numerically
        const bool unused =
            name == "blocks.0.att.v0" || name == "blocks.0.att.v1" || name == "blocks.0.att.v2";
        ASSERT_EQ(p.grad().defined(), !unused) << name;
        const Tensor grad = unused ? Tensor::zeros(p.shape(), DType::f64) : p.grad().contiguous();
        const int64_t n = p.numel();
        std::vector<int64_t> picks{0, n - 1};
        for (int i = 0; i < 3; ++i) picks.push_back(rng.randint(0, n));
        double* data = p.value_mut().data<double>();
        for (int64_t i : picks) {
            const double orig = data[i];
            double lp, lm;
            {
                ag::NoGradGuard ng;
                data[i] = orig + h;
                lp = loss_of().item();
                data[i] = orig - h;
                lm = loss_of().item();
                data[i] = orig;
            }
            const double num = (lp - lm) / (2 * h);
            const double ana = grad.data<double>()[i];
            EXPECT_NEAR(ana, num, 1e-6 + 1e-5 * std::fabs(num)) << name << "[" << i << "]";
            ++checked;
        }
    }
    EXPECT_GT(checked, 200);
}

// A training step's backward (no state, L2Wrap on the loss) reaches every parameter except
// layer 0's unused v0/v1/v2, in the parameters' dtype.
TEST(Rwkv7Forward, TrainingBackwardReachesEveryUsedParameter) {
    const Rwkv7Config cfg = Rwkv7Config::with_defaults(20, 2, 32, 16);
    Rwkv7 m(cfg);
    Rng rng(8);
    m.init_official(rng);
    const Tensor ids = testing::random_ids(2, 6, cfg.vocab, rng);
    const Tensor targets = testing::random_ids(2, 6, cfg.vocab, rng);
    Var logits = m.forward(ids);
    Var ce = ag::cross_entropy(logits, targets);
    Var loss = ag::l2wrap(ce, logits);
    EXPECT_EQ(loss.item(), ce.item());
    EXPECT_NEAR(loss.item(), std::log(20.0), 0.3);  // logits of std ~0.5 at init (head gain)
    ag::backward(loss);
    for (auto& [name, p] : m.named_parameters()) {
        const bool unused = name == "blocks.0.att.v0" || name == "blocks.0.att.v1" ||
                            name == "blocks.0.att.v2";
        ASSERT_EQ(p.grad().defined(), !unused) << name;
        if (!unused) {
            EXPECT_EQ(p.grad().dtype(), DType::f32) << name;
            EXPECT_EQ(p.grad().shape(), p.shape()) << name;
        }
    }
    EXPECT_EQ(ag::tape_size(), 0u);  // backward freed the tape
}

}  // namespace
}  // namespace goose::models
