// Autograd function of the WKV-7 recurrence.
#include "goose/autograd/wkv7.h"

#include <algorithm>

#include "goose/core/cuda.h"

namespace goose::ag {

namespace {
// Both forms: the inputs as they are (heads undefined: the op checks their shapes) or, checked
// by the caller to share r's shape, seen as `heads` (B, T, H, N); the gradients given back in the
// inputs' shape, with what r, k and v had already gathered added in by the backward itself.
Wkv7Result record_wkv7(const Var& r, const Var& w, const Var& k, const Var& v, const Var& a,
                       const Var& b, const Var& state_in, const Shape& heads) {
    auto shaped = [&](const Var& x) {
        return heads.ndim() == 0 ? x.value() : x.value().reshape(heads);
    };
    const Tensor rv = shaped(r), wv = shaped(w), kv = shaped(k), vv = shaped(v), av = shaped(a),
                 bv = shaped(b);
    const Tensor s_in = state_in.defined() ? state_in.value() : Tensor();
    auto fwd = std::make_shared<ops::Wkv7Forward>(ops::wkv7_forward(rv, wv, kv, vv, av, bv, s_in));
    std::vector<Tensor> outs{fwd->y, fwd->state};
    auto vars = record(
        "wkv7", {r, w, k, v, a, b, state_in}, std::move(outs),
        [fwd, rv, wv, kv, vv, av, bv, s_in, in_shape = r.value().shape()](GradIO& io) {
            auto prior = [&](int i) {
                const Tensor& p = io.prior(i);
                return p.defined() && p.dtype() == rv.dtype() ? p.reshape(rv.shape()) : Tensor();
            };
            const ops::Wkv7AddIn add{prior(0), prior(2), prior(3)};
            // Deferred weight gradients run on the SMs the backward leaves idle or half used.
            ops::Wkv7Grads g;
            const int free_sms = ops::wkv7_backward_free_sms(rv.shape(), rv.device());
            auto work = [&] {
                g = ops::wkv7_backward(io.gy(0), io.gy(1), rv, wv, kv, vv, av, bv, s_in, *fwd, add);
            };
            if (free_sms > 0)
                run_beside_deferred(work, free_sms);
            else
                work();  // it fills the GPU: the deferred work waits for a later entry
            auto back = [&](Tensor& x) { return x.defined() ? x.reshape(in_shape) : x; };
            Tensor* gs[] = {&g.r, &g.w, &g.k, &g.v, &g.a, &g.b};
            const Tensor* added[] = {&add.r, nullptr, &add.k, &add.v, nullptr, nullptr};
            for (int i = 0; i < 6; ++i) {
                if (added[i] && added[i]->defined())
                    io.set_summed(i, back(*gs[i]));  // the prior is in it
                else
                    io.set(i, back(*gs[i]));
            }
            io.set(6, std::move(g.state));
        });
    return {vars[0], vars[1]};
}
}  // namespace

Wkv7Result wkv7(const Var& r, const Var& w, const Var& k, const Var& v, const Var& a, const Var& b,
                const Var& state_in) {
    return record_wkv7(r, w, k, v, a, b, state_in, Shape());
}

Wkv7Result wkv7_heads(const Var& r, const Var& w, const Var& k, const Var& v, const Var& a,
                      const Var& b, int64_t head_size, const Var& state_in) {
    if (!r.defined() || r.ndim() != 3 || head_size < 1 || r.size(2) % head_size != 0)
        fail("wkv7_heads: r must be (B, T, C) with C a multiple of head_size {}, got {}",
             head_size, r.defined() ? r.value().desc() : "undefined");
    const Var* others[] = {&w, &k, &v, &a, &b};
    for (const Var* x : others)
        if (!x->defined() || x->value().shape() != r.value().shape())
            fail("wkv7_heads: w, k, v, a and b must have r's shape {}, got {}",
                 r.value().shape().str(), x->defined() ? x->value().desc() : "undefined");
    return record_wkv7(r, w, k, v, a, b, state_in,
                       Shape{r.size(0), r.size(1), r.size(2) / head_size, head_size});
}

}  // namespace goose::ag
