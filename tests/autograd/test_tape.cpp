// The tape's semantics: recording, gradient accumulation (fan-out, repeated backward), the unit
// seed flag, deferred gradients, no-grad scopes, freeing of saved tensors, errors. Uses the unary ops and a hand-written dot product.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "goose/autograd/tape.h"
#include "goose/autograd/unary.h"
#include "goose/ops/binary.h"

namespace goose {
namespace {

// s = sum_i w_i * x_i, recorded by hand (the smallest differentiable reduction).
Var weighted_sum(const Var& x, std::vector<double> w) {
    const auto xv = x.value().to_vector();
    double s = 0;
    for (size_t i = 0; i < xv.size(); ++i) s += w[i] * xv[i];
    return ag::record("weighted_sum", {x}, Tensor::scalar(s, x.dtype()),
                      [w, shape = x.shape(), dt = x.dtype()](GradIO& io) {
                          const double g = io.gy().item();
                          std::vector<double> gx(w.size());
                          for (size_t i = 0; i < w.size(); ++i) gx[i] = g * w[i];
                          io.set(0, Tensor::from(shape, gx, dt));
                      });
}

TEST(Tape, ChainRuleThroughUnaryOps) {
    Var x(Tensor::from(Shape{3}, {0.5, -1.0, 2.0}, DType::f64), true);
    Var y = ag::tanh(ag::exp(x));  // y = tanh(e^x)
    Var s = weighted_sum(y, {1, 2, 3});
    EXPECT_EQ(ag::tape_size(), 3u);
    ag::backward(s);
    EXPECT_EQ(ag::tape_size(), 0u);
    const auto g = x.grad().to_vector();
    const double xs[] = {0.5, -1.0, 2.0}, ws[] = {1, 2, 3};
    for (int i = 0; i < 3; ++i) {
        const double t = std::tanh(std::exp(xs[i]));
        EXPECT_NEAR(g[static_cast<size_t>(i)], ws[i] * (1 - t * t) * std::exp(xs[i]), 1e-12);
    }
}

TEST(Tape, FanOutAccumulates) {
    Var x(Tensor::from(Shape{2}, {0.3, -0.7}, DType::f64), true);
    Var a = weighted_sum(ag::exp(x), {1, 1});
    Var b = weighted_sum(ag::square(x), {1, 1});
    Var both = ag::record("add2", {a, b}, Tensor::scalar(a.item() + b.item(), DType::f64),
                          [](GradIO& io) {
                              io.set(0, io.gy());
                              io.set(1, io.gy());
                          });
    ag::backward(both);
    const auto g = x.grad().to_vector();
    EXPECT_NEAR(g[0], std::exp(0.3) + 2 * 0.3, 1e-12);
    EXPECT_NEAR(g[1], std::exp(-0.7) - 2 * 0.7, 1e-12);
}

// An op y = 2 x whose backward folds x's gradient so far into its own (GradIO::prior).
Var doubled_folding(const Var& x, std::vector<bool>* saw_prior) {
    return ag::record("doubled", {x}, ops::binary_forward(BinaryOp::add, x.value(), x.value()),
                      [saw_prior](GradIO& io) {
                          Tensor g = ops::binary_forward(BinaryOp::add, io.gy(), io.gy());
                          saw_prior->push_back(io.prior(0).defined());
                          if (io.prior(0).defined())
                              io.set_summed(0, ops::binary_forward(BinaryOp::add, g, io.prior(0)));
                          else
                              io.set(0, std::move(g));
                      });
}

TEST(Tape, PriorGradientsCanBeFoldedIntoABackward) {
    Var leaf(Tensor::from(Shape{2}, {0.3, -0.7}, DType::f64), true);
    Var x = ag::exp(leaf);  // not a leaf: its gradient gathers over its two consumers
    std::vector<bool> saw;
    Var first = weighted_sum(doubled_folding(x, &saw), {1, 1});  // runs last backwards
    Var second = weighted_sum(ag::square(x), {1, 1});            // runs first: x's prior
    Var both = ag::record("add2", {first, second},
                          Tensor::scalar(first.item() + second.item(), DType::f64),
                          [](GradIO& io) {
                              io.set(0, io.gy());
                              io.set(1, io.gy());
                          });
    ag::backward(both);
    ASSERT_EQ(saw, std::vector<bool>{true});  // x had square's gradient when doubled ran
    const auto g = leaf.grad().to_vector();
    for (size_t i = 0; i < 2; ++i) {
        const double xi = std::exp(i == 0 ? 0.3 : -0.7);
        EXPECT_NEAR(g[i], (2 + 2 * xi) * xi, 1e-12);  // d/dleaf (2 x + x^2), x = e^leaf
    }
    // A leaf input never shows a prior (its gradient is owned, accumulated by the tape).
    std::vector<bool> saw_leaf;
    Var y = weighted_sum(doubled_folding(leaf, &saw_leaf), {1, 1});
    ag::backward(y);
    EXPECT_EQ(saw_leaf, std::vector<bool>{false});
}

TEST(Tape, LeafGradientsAccumulateAcrossBackwardCalls) {
    Var x(Tensor::from(Shape{2}, {1, 2}, DType::f64), true);
    ag::backward(weighted_sum(x, {1, 10}));
    ag::backward(weighted_sum(x, {1, 10}));
    EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{2, 20}));
    x.zero_grad();
    EXPECT_FALSE(x.grad().defined());
}

// An identity op that reports what GradIO::gy_is_one said.
Var probe(const Var& x, std::vector<int>& seen) {
    return ag::record("probe", {x}, x.value().clone(), [&seen](GradIO& io) {
        seen.push_back(io.gy_is_one() ? 1 : 0);
        io.set(0, io.gy());
    });
}

TEST(Tape, GyIsOneOnlyForTheDefaultSeedOfTheRoot) {
    Var x(Tensor::from(Shape{1}, {0.5}, DType::f64), true);
    std::vector<int> seen;
    // the root's entry gets the seed; the inner one a computed gradient
    ag::backward(probe(ag::exp(probe(x, seen)), seen));
    EXPECT_EQ(seen, (std::vector<int>{1, 0}));
    seen.clear();
    ag::backward(probe(x, seen), Tensor::from(Shape{1}, {1.0}, DType::f64));  // explicit seed
    EXPECT_EQ(seen, (std::vector<int>{0}));
    seen.clear();
    Var p = probe(x, seen);  // used again after it: its gradient is not the seed alone
    Var both = ag::record("add2", {p, p}, p.value().clone(), [](GradIO& io) {
        io.set(0, io.gy());
        io.set(1, io.gy());
    });
    ag::backward(both);
    EXPECT_EQ(seen, (std::vector<int>{0}));
    EXPECT_NEAR(x.grad().to_vector()[0], std::exp(0.5) + 1 + 2, 1e-12);  // the three calls
}

// y = w * x elementwise, with dw handed over as deferred work (GradIO::defer) that logs its run.
Var scale_by(const Var& x, const Var& w, std::vector<std::string>& log, const char* name) {
    Tensor y = ops::binary_forward(BinaryOp::mul, x.value(), w.value());
    return ag::record("scale_by", {x, w}, y,
                      [xv = x.value(), wv = w.value(), &log, name](GradIO& io) {
                          io.set(0, ops::binary_forward(BinaryOp::mul, io.gy(), wv));
                          io.defer(1, [gy = io.gy(), xv, &log, name] {
                              log.push_back(name);
                              return ops::binary_forward(BinaryOp::mul, gy, xv);
                          });
                      });
}

TEST(Tape, DeferredGradientsRunBesideTheNextMarkedEntryOrAtTheEnd) {
    Var x(Tensor::from(Shape{2}, {0.5, -2.0}, DType::f64), true);
    Var w1(Tensor::from(Shape{2}, {3.0, 4.0}, DType::f64), true);
    Var w2(Tensor::from(Shape{2}, {-1.0, 0.25}, DType::f64), true);
    std::vector<std::string> log;
    Var h = scale_by(x, w1, log, "dw1");
    // an entry whose backward runs beside the deferred work queued before it (dw2)
    Var m = ag::record("marked", {h}, h.value().clone(), [&log](GradIO& io) {
        ag::run_beside_deferred([&] { log.push_back("marked"); });
        io.set(0, io.gy());
    });
    Var y = scale_by(m, w2, log, "dw2");
    ag::backward(weighted_sum(y, {1, 1}));
    EXPECT_EQ(log, (std::vector<std::string>{"marked", "dw2", "dw1"}));
    EXPECT_EQ(w1.grad().to_vector(), (std::vector<double>{0.5 * -1.0, -2.0 * 0.25}));
    EXPECT_EQ(w2.grad().to_vector(), (std::vector<double>{0.5 * 3.0, -2.0 * 4.0}));
    EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{3.0 * -1.0, 4.0 * 0.25}));
    // the input of a non-leaf gets its gradient at once: h's producer still sees it
    log.clear();
    Var x2(Tensor::from(Shape{2}, {1.0, 1.0}, DType::f64), true);
    Var w3 = ag::exp(Var(Tensor::from(Shape{2}, {0.0, 0.0}, DType::f64), true));  // non-leaf
    ag::backward(weighted_sum(scale_by(x2, w3, log, "dw3"), {1, 1}));
    EXPECT_EQ(log, (std::vector<std::string>{"dw3"}));
}

// run_parallel_with_deferred: branch 0 runs its own work, then the deferred work queued before
// the entry (dw2), before the other branches (in order without a device); dw1, queued after it,
// runs at the end; the gradients are the immediate ones.
TEST(Tape, DeferredGradientsRunAfterTheMainBranchOfTheNextParallelEntry) {
    Var x(Tensor::from(Shape{2}, {0.5, -2.0}, DType::f64), true);
    Var w1(Tensor::from(Shape{2}, {3.0, 4.0}, DType::f64), true);
    Var w2(Tensor::from(Shape{2}, {-1.0, 0.25}, DType::f64), true);
    std::vector<std::string> log;
    Var h = scale_by(x, w1, log, "dw1");
    Var m = ag::record("parallel", {h}, h.value().clone(), [&log](GradIO& io) {
        ag::run_parallel_with_deferred({[&] { log.push_back("main"); },
                                        [&] { log.push_back("side"); }});
        io.set(0, io.gy());
    });
    Var y = scale_by(m, w2, log, "dw2");
    ag::backward(weighted_sum(y, {1, 1}));
    EXPECT_EQ(log, (std::vector<std::string>{"main", "dw2", "side", "dw1"}));
    EXPECT_EQ(w1.grad().to_vector(), (std::vector<double>{0.5 * -1.0, -2.0 * 0.25}));
    EXPECT_EQ(w2.grad().to_vector(), (std::vector<double>{0.5 * 3.0, -2.0 * 4.0}));
    EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{3.0 * -1.0, 4.0 * 0.25}));
    // outside a backward pass: the branches only
    log.clear();
    ag::run_parallel_with_deferred({[&] { log.push_back("a"); }, [&] { log.push_back("b"); }});
    EXPECT_EQ(log, (std::vector<std::string>{"a", "b"}));
}

TEST(Tape, NoGradRecordsNothing) {
    Var x(Tensor::from(Shape{2}, {1, 2}), true);
    {
        ag::NoGradGuard ng;
        Var y = ag::exp(x);
        EXPECT_FALSE(y.requires_grad());
        EXPECT_EQ(ag::tape_size(), 0u);
    }
    Var z = ag::exp(Var(Tensor::from(Shape{2}, {1, 2})));  // no input requires grad
    EXPECT_FALSE(z.requires_grad());
    EXPECT_EQ(ag::tape_size(), 0u);
    EXPECT_TRUE(ag::grad_enabled());
}

TEST(Tape, SavedTensorsAreFreedAfterBackward) {
    std::weak_ptr<Storage> saved;
    Var x(Tensor::from(Shape{2}, {1, 2}, DType::f64), true);
    {
        Var h = ag::exp(x);
        saved = h.value().storage();
        Var y = ag::tanh(h);  // the tanh closure saves h's value
        Var s = weighted_sum(y, {1, 1});
        h = Var();
        EXPECT_FALSE(saved.expired());  // still held by the tape
        ag::backward(s);
    }
    EXPECT_TRUE(saved.expired());
}

TEST(Tape, ClearTapeDropsEntries) {
    Var x(Tensor::from(Shape{2}, {1, 2}), true);
    Var y = ag::exp(x);
    EXPECT_EQ(ag::tape_size(), 1u);
    ag::clear_tape();
    EXPECT_EQ(ag::tape_size(), 0u);
}

TEST(Tape, UndefinedInputsHaveNoGradient) {
    Var x(Tensor::from(Shape{2}, {1, 2}, DType::f64), true);
    Var absent;  // e.g. a layer without bias
    Var y = ag::record("plus_absent", {x, absent}, x.value().clone(), [](GradIO& io) {
        EXPECT_FALSE(io.needs(1));
        io.set(0, io.gy());
    });
    ag::backward(y, Tensor::from(Shape{2}, {3, 4}, DType::f64));
    EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{3, 4}));
}

TEST(Tape, Errors) {
    Var c(Tensor::from(Shape{2}, {1, 2}));
    EXPECT_THROW(ag::backward(c), Error);  // does not require grad
    Var x(Tensor::from(Shape{2}, {1, 2}), true);
    Var y = ag::exp(x);
    EXPECT_THROW(ag::backward(y), Error);  // two elements, no seed
    EXPECT_THROW(ag::backward(y, Tensor::from(Shape{3}, {1, 1, 1})), Error);  // seed shape
    ag::backward(y, Tensor::from(Shape{2}, {1, 1}));
    EXPECT_NEAR(x.grad().get({1}), std::exp(2.0), 1e-5);
    EXPECT_THROW(Var(Tensor::from(Shape{1}, {1}, DType::i32), true), Error);  // int grad
}

}  // namespace
}  // namespace goose
