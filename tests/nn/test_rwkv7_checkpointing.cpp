// RWKV-7 activation checkpointing: the same loss and the same gradient of every parameter as
// the plain backward (f64, to rounding), and an error-free second step.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "goose/autograd.h"
#include "goose/models/rwkv7.h"

namespace goose::models {
namespace {

TEST(Rwkv7Checkpointing, SameLossAndGradientsAsThePlainBackward) {
    const auto cfg = Rwkv7Config::with_defaults(17, 3, 16, 4);
    Rwkv7 m(cfg, DType::f64);
    Rng rng(9, "ckpt");
    m.init_official(rng);
    std::vector<double> idv(2 * 7), tgv(2 * 7);
    for (double& v : idv) v = static_cast<double>(rng.randint(0, cfg.vocab));
    for (double& v : tgv) v = static_cast<double>(rng.randint(0, cfg.vocab));
    const Tensor ids = Tensor::from(Shape{2, 7}, idv, DType::i64);
    const Tensor targets = Tensor::from(Shape{2, 7}, tgv, DType::i64);
    auto run = [&](bool ckpt, double& loss) {
        m.set_activation_checkpointing(ckpt);
        m.zero_grad();
        Var l = m.forward_loss(ids, targets);
        loss = l.value().item();
        ag::backward(l);
        std::map<std::string, std::vector<double>> grads;
        for (auto& [name, p] : m.named_parameters())
            grads[name] = p.grad().defined() ? p.grad().to_vector() : std::vector<double>();
        return grads;
    };
    double plain_loss = 0, ckpt_loss = 0;
    const auto plain = run(false, plain_loss);
    const auto ckpt = run(true, ckpt_loss);
    EXPECT_NEAR(ckpt_loss, plain_loss, 1e-12);
    for (const auto& [name, g] : plain) {
        const auto& h = ckpt.at(name);
        ASSERT_EQ(h.size(), g.size()) << name;
        for (size_t i = 0; i < g.size(); ++i)
            ASSERT_NEAR(h[i], g[i], 1e-12 + 1e-10 * std::fabs(g[i])) << name << "[" << i << "]";
    }
    EXPECT_EQ(ag::tape_size(), 0u) << "the inner backward leaves nothing on the tape";
}

}  // namespace
}  // namespace goose::models
