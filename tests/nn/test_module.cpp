// nn: hierarchical parameter names, state-dict round trip and errors, layer initialisation.
#include <gtest/gtest.h>

#include <cmath>

#include "goose/autograd.h"
#include "goose/nn/layers.h"

namespace goose::nn {
namespace {

struct Att : Module {
    explicit Att(Rng& rng) {
        key = register_module("key", std::make_shared<Linear>(4, 4, false, rng));
        w0 = register_parameter("w0", Tensor::zeros(Shape{4}));
    }
    std::shared_ptr<Linear> key;
    Var w0;
};

struct Block : Module {
    explicit Block(Rng& rng) {
        ln1 = register_module("ln1", std::make_shared<LayerNorm>(4));
        att = register_module("att", std::make_shared<Att>(rng));
    }
    std::shared_ptr<LayerNorm> ln1;
    std::shared_ptr<Att> att;
};

struct Tiny : Module {
    explicit Tiny(Rng& rng) {
        emb = register_module("emb", std::make_shared<Embedding>(10, 4, rng));
        blocks = register_module("blocks", std::make_shared<ModuleList>());
        for (int i = 0; i < 2; ++i) blocks->push_back(std::make_shared<Block>(rng));
    }
    std::shared_ptr<Embedding> emb;
    std::shared_ptr<ModuleList> blocks;
};

TEST(Module, HierarchicalNames) {
    Rng rng(1);
    Tiny m(rng);
    std::vector<std::string> names;
    for (auto& [n, v] : m.named_parameters()) names.push_back(n);
    const std::vector<std::string> want = {
        "emb.weight",        "blocks.0.ln1.weight", "blocks.0.ln1.bias",
        "blocks.0.att.w0",   "blocks.0.att.key.weight", "blocks.1.ln1.weight",
        "blocks.1.ln1.bias", "blocks.1.att.w0",     "blocks.1.att.key.weight"};
    EXPECT_EQ(names, want);
    EXPECT_EQ(m.num_parameters(), 40 + 2 * (4 + 4 + 4 + 16));
}

TEST(Module, StateDictRoundTripAndErrors) {
    Rng rng(2);
    Tiny a(rng), b(rng);
    EXPECT_NE(a.state_dict().at("emb.weight").to_vector(),
              b.state_dict().at("emb.weight").to_vector());
    b.load_state_dict(a.state_dict());
    for (auto& [n, t] : a.state_dict())
        EXPECT_EQ(t.to_vector(), b.state_dict().at(n).to_vector()) << n;

    StateDict sd = a.state_dict();
    sd.erase("blocks.1.att.w0");
    sd.emplace("blocks.1.att.bogus", Tensor::zeros(Shape{4}));
    try {
        b.load_state_dict(sd);
        FAIL();
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("missing keys [blocks.1.att.w0]"), std::string::npos) << msg;
        EXPECT_NE(msg.find("unexpected keys [blocks.1.att.bogus]"), std::string::npos) << msg;
    }
    b.load_state_dict(sd, /*strict=*/false);  // a partial load is allowed when asked for

    // A shape mismatch anywhere aborts the whole load: nothing is modified.
    b.state_dict().at("blocks.0.ln1.weight").fill_(3.0);
    const auto marked = b.state_dict().at("blocks.0.ln1.weight").to_vector();
    StateDict bad = a.state_dict();
    bad["emb.weight"] = Tensor::zeros(Shape{11, 4});
    try {
        b.load_state_dict(bad);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("emb.weight: checkpoint [11, 4] vs model [10, 4]"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_EQ(b.state_dict().at("blocks.0.ln1.weight").to_vector(), marked);
}

TEST(Layers, InitialisationAndForward) {
    Rng rng(3);
    Linear lin(50, 7, true, rng);
    for (double v : lin.weight.value().to_vector()) EXPECT_LE(std::abs(v), 1 / std::sqrt(50.0));
    LayerNorm ln(5);
    EXPECT_EQ(ln.weight.value().to_vector(), std::vector<double>(5, 1.0));
    EXPECT_EQ(ln.bias.value().to_vector(), std::vector<double>(5, 0.0));
    EXPECT_THROW(GroupNorm(3, 10), Error);

    // Linear forward equals x Wᵀ + b computed by hand.
    ag::NoGradGuard no_grad;
    Var x(Tensor::randn(Shape{2, 50}, rng));
    const Tensor y = lin.forward(x).value();
    const Tensor w = lin.weight.value(), b = lin.bias.value();
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t o = 0; o < 7; ++o) {
            double s = b.get({o});
            for (int64_t k = 0; k < 50; ++k) s += x.value().get({i, k}) * w.get({o, k});
            EXPECT_NEAR(y.get({i, o}), s, 1e-4);
        }
}

TEST(Module, ZeroGrad) {
    Rng rng(4);
    Linear lin(3, 2, true, rng);
    Var x(Tensor::randn(Shape{4, 3}, rng));
    ag::backward(ag::sum(lin.forward(x)));
    EXPECT_TRUE(lin.weight.grad().defined());
    lin.zero_grad();
    EXPECT_FALSE(lin.weight.grad().defined());
    EXPECT_FALSE(lin.bias.grad().defined());
}

}  // namespace
}  // namespace goose::nn
