// Autograd function of the WKV-7 recurrence.
#include "goose/autograd/wkv7.h"

#include <algorithm>

#include "goose/core/cuda.h"

namespace goose::ag {

Wkv7Result wkv7(const Var& r, const Var& w, const Var& k, const Var& v, const Var& a, const Var& b,
                const Var& state_in) {
    const Tensor s_in = state_in.defined() ? state_in.value() : Tensor();
    auto fwd = std::make_shared<ops::Wkv7Forward>(ops::wkv7_forward(
        r.value(), w.value(), k.value(), v.value(), a.value(), b.value(), s_in));
    std::vector<Tensor> outs{fwd->y, fwd->state};
    auto vars = record(
        "wkv7", {r, w, k, v, a, b, state_in}, std::move(outs),
        [fwd, rv = r.value(), wv = w.value(), kv = k.value(), vv = v.value(), av = a.value(),
         bv = b.value(), s_in](GradIO& io) {
            // A latency-bound kernel of a block per head (at most two per SM): deferred weight
            // gradients run on the SMs it leaves idle or half used.
            ops::Wkv7Grads g;
            const int64_t heads = rv.size(0) * rv.size(2);  // (B, T, H, N)
            const int64_t sms = rv.device().is_cuda() ? cuda::multiprocessor_count() : 0;
            // SMs without a block (heads < SMs) or with one block instead of two
            const int free_sms = static_cast<int>(
                heads < sms ? sms - heads : (heads < 2 * sms ? 2 * sms - heads : 0));
            run_beside_deferred(
                [&] {
                    g = ops::wkv7_backward(io.gy(0), io.gy(1), rv, wv, kv, vv, av, bv, s_in,
                                           *fwd);
                },
                free_sms);
            io.set(0, std::move(g.r));
            io.set(1, std::move(g.w));
            io.set(2, std::move(g.k));
            io.set(3, std::move(g.v));
            io.set(4, std::move(g.a));
            io.set(5, std::move(g.b));
            io.set(6, std::move(g.state));
        });
    return {vars[0], vars[1]};
}

}  // namespace goose::ag
