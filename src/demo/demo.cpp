// The demo job: a synthetic language whose next token follows a fixed random permutation of
// the previous one (with probability 1 - noise; otherwise uniform). A Transformer trained with
// AdamW and a cosine schedule drives the loss from ln(V) towards the data's entropy.
#include "goose/demo.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "goose/autograd.h"
#include "goose/models/gpt.h"
#include "goose/optim/adamw.h"
#include "goose/optim/clip.h"
#include "goose/optim/schedule.h"

namespace goose {

namespace {
// Batch of (B, T+1) token ids; inputs are [:, :-1], targets [:, 1:].
Tensor sample_batch(const DemoConfig& cfg, const std::vector<int64_t>& perm, Rng& rng) {
    Tensor ids = Tensor::empty(Shape{cfg.batch, cfg.seq_len + 1}, DType::i64);
    int64_t* p = ids.data<int64_t>();
    for (int64_t b = 0; b < cfg.batch; ++b) {
        int64_t tok = rng.randint(0, cfg.vocab);
        for (int64_t t = 0; t <= cfg.seq_len; ++t) {
            p[b * (cfg.seq_len + 1) + t] = tok;
            tok = rng.uniform() < cfg.noise ? rng.randint(0, cfg.vocab) : perm[static_cast<size_t>(tok)];
        }
    }
    return ids;
}

double data_entropy(const DemoConfig& cfg) {
    const double v = static_cast<double>(cfg.vocab);
    const double p_rule = 1 - cfg.noise + cfg.noise / v, p_other = cfg.noise / v;
    double h = -p_rule * std::log(p_rule);
    if (p_other > 0) h -= (v - 1) * p_other * std::log(p_other);
    return h;
}
}  // namespace

DemoResult run_demo(const DemoConfig& cfg) {
    if (cfg.steps < 1 || cfg.batch < 1 || cfg.seq_len < 2 || cfg.vocab < 2)
        fail("demo: steps, batch >= 1, seq_len >= 2 and vocab >= 2 are required");
    Rng rng(cfg.seed, "demo");
    Rng init = rng.fork("init"), data = rng.fork("data");
    std::vector<int64_t> perm(static_cast<size_t>(cfg.vocab));
    std::iota(perm.begin(), perm.end(), 0);
    for (size_t i = perm.size() - 1; i > 0; --i)
        std::swap(perm[i], perm[static_cast<size_t>(data.randint(0, static_cast<int64_t>(i) + 1))]);

    models::Gpt model({.vocab = cfg.vocab, .max_t = cfg.seq_len, .n_layer = cfg.n_layer,
                       .n_embd = cfg.n_embd, .n_head = cfg.n_head},
                      init);
    // Weight decay on matrices only (the usual GPT grouping).
    optim::ParamGroup decay{.weight_decay = 0.1, .name = "decay"}, no_decay{.name = "no_decay"};
    for (auto& [name, p] : model.named_parameters())
        (p.ndim() >= 2 ? decay : no_decay).params.push_back(p);
    auto opt = optim::make_adamw({decay, no_decay}, {.lr = cfg.lr, .beta1 = 0.9, .beta2 = 0.99});
    const optim::LrSchedule sched{.kind = optim::LrSchedule::Kind::cosine, .base_lr = cfg.lr,
                           .warmup_steps = cfg.steps / 10, .total_steps = cfg.steps,
                           .final_lr = cfg.lr / 10};

    DemoResult res;
    res.floor = data_entropy(cfg);
    std::printf("demo: GPT L%lld C%lld H%lld (%lld parameters) on a synthetic language, V=%lld "
                "T=%lld B=%lld\n       loss starts near ln(V) = %.3f; the data's entropy %.3f is "
                "the floor\n",
                (long long)cfg.n_layer, (long long)cfg.n_embd, (long long)cfg.n_head,
                (long long)model.num_parameters(), (long long)cfg.vocab, (long long)cfg.seq_len,
                (long long)cfg.batch, std::log(static_cast<double>(cfg.vocab)), res.floor);
    std::printf("%6s  %8s  %9s  %8s  %7s\n", "step", "loss", "lr", "steps/s", "eta");
    const int64_t window = std::max<int64_t>(1, cfg.steps / 10);
    double first = 0, last = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t step = 0; step < cfg.steps; ++step) {
        const Tensor ids = sample_batch(cfg, perm, data);
        const Tensor inputs = ids.slice(1, 0, cfg.seq_len).contiguous();
        const Tensor targets = ids.slice(1, 1, cfg.seq_len + 1).contiguous();
        Var logits = model.forward(inputs);              // (B, T, V)
        Var loss = ag::cross_entropy(logits, targets);
        const double l = loss.item();
        ag::backward(loss);
        optim::clip_grad_norm(model.parameters(), 1.0);
        opt.set_lr(sched.lr(step));
        opt.step();
        model.zero_grad();
        if (step < window) first += l / static_cast<double>(window);
        if (step >= cfg.steps - window) last += l / static_cast<double>(window);
        if ((step + 1) % cfg.print_every == 0 || step == 0 || step + 1 == cfg.steps) {
            const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double rate = static_cast<double>(step + 1) / el;
            std::printf("%6lld  %8.4f  %9.2e  %8.1f  %6.0fs\n", (long long)(step + 1), l,
                        sched.lr(step), rate, static_cast<double>(cfg.steps - step - 1) / rate);
            std::fflush(stdout);
        }
    }
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    res.first_loss = first;
    res.last_loss = last;
    res.steps_per_s = static_cast<double>(cfg.steps) / el;
    std::printf("\n%-28s %8s\n%-28s %8.4f\n%-28s %8.4f\n%-28s %8.4f\n%-28s %8.1f\n",
                "summary", "", "mean loss, first 10% steps", res.first_loss,
                "mean loss, last 10% steps", res.last_loss, "entropy floor", res.floor,
                "steps/s", res.steps_per_s);
    return res;
}

}  // namespace goose
