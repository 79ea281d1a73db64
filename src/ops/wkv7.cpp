// Front end of the WKV-7 recurrence: shape/dtype checks, then dispatch.
#include "goose/ops/wkv7.h"

#include "goose/ops/backend.h"
#include "goose/ops/binary.h"
#include "goose/ops/check.h"

namespace goose::ops {

namespace {
constexpr const char* kOp = "wkv7";

void check_inputs(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                  const Tensor& a, const Tensor& b, const Tensor& state) {
    const Tensor* all[] = {&r, &w, &k, &v, &a, &b};
    const char* names[] = {"r", "w", "k", "v", "a", "b"};
    for (int i = 0; i < 6; ++i) check::defined(kOp, *all[i], names[i]);
    check::ndim(kOp, r, 4, "r (B, T, H, N)");
    // f32 / f64 everywhere; bf16 too on CUDA (with an f32 state).
    if (!(r.dtype() == DType::bf16 && r.device().is_cuda())) check::float_dtype(kOp, r);
    if (r.size(1) < 1) fail("{}: T must be >= 1, got r {}", kOp, r.desc());
    for (int i = 1; i < 6; ++i) {
        if (all[i]->shape() != r.shape())
            fail("{}: {} must have r's shape (B, T, H, N) = {}, got {}", kOp, names[i],
                 r.shape().str(), all[i]->desc());
        check::same_dtype(kOp, r, *all[i]);
    }
    if (state.defined()) {
        const Shape want{r.size(0), r.size(2), r.size(3), r.size(3)};
        if (state.shape() != want)
            fail("{}: state must be (B, H, N, N) = {}, got {}", kOp, want.str(), state.desc());
        if (r.dtype() == DType::bf16) {  // kept in f32 inside; f32 is the natural choice
            if (state.dtype() != DType::f32 && state.dtype() != DType::bf16)
                fail("{}: with bf16 inputs the state must be f32 or bf16, got {}", kOp,
                     state.desc());
        } else {
            check::same_dtype(kOp, r, state);
        }
    }
}
}  // namespace

Wkv7Forward wkv7_forward(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                         const Tensor& a, const Tensor& b, const Tensor& state_in) {
    check_inputs(r, w, k, v, a, b, state_in);
    const Backend be = backend_of(kOp, {&r, &w, &k, &v, &a, &b, &state_in});
    switch (be) {
        case Backend::ref: return wkv7_forward_ref(r, w, k, v, a, b, state_in);
        case Backend::cpu: return wkv7_forward_cpu(r, w, k, v, a, b, state_in);
#ifdef GOOSE_CUDA
        case Backend::cuda: return wkv7_forward_cuda(r, w, k, v, a, b, state_in);
#endif
        default: no_kernel(kOp, be);
    }
}

Wkv7Grads wkv7_backward(const Tensor& gy, const Tensor& gstate, const Tensor& r, const Tensor& w,
                        const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                        const Tensor& state_in, const Wkv7Forward& fwd, const Wkv7AddIn& add) {
    check_inputs(r, w, k, v, a, b, state_in);
    check::same_shape(kOp, gy, r);
    check::same_dtype(kOp, gy, r);
    if (gstate.defined()) check::same_shape(kOp, gstate, fwd.state);
    const Tensor* adds[] = {&add.r, &add.k, &add.v};
    for (const Tensor* x : adds) {
        if (!x->defined()) continue;
        check::same_shape(kOp, *x, r);
        check::same_dtype(kOp, *x, r);
    }
    const Backend be = backend_of(kOp, {&gy, &gstate, &r, &state_in, &add.r, &add.k, &add.v});
    Wkv7Grads g;
    switch (be) {
        case Backend::ref:
            g = wkv7_backward_ref(gy, gstate, r, w, k, v, a, b, state_in, fwd);
            break;
        case Backend::cpu:
            g = wkv7_backward_cpu(gy, gstate, r, w, k, v, a, b, state_in, fwd);
            break;
#ifdef GOOSE_CUDA
        case Backend::cuda:  // adds `add` itself
            return wkv7_backward_cuda(gy, gstate, r, w, k, v, a, b, state_in, fwd, add);
#endif
        default: no_kernel(kOp, be);
    }
    wkv7_add_in(g, add);
    return g;
}

int wkv7_backward_free_sms(const Shape& s, Device dev) {
#ifdef GOOSE_CUDA
    if (dev.is_cuda() && s.ndim() == 4) return wkv7_backward_free_sms_cuda(s);
#endif
    (void)s, (void)dev;
    return 0;
}

void wkv7_add_in(Wkv7Grads& g, const Wkv7AddIn& add) {
    const std::pair<Tensor*, const Tensor*> pairs[] = {{&g.r, &add.r}, {&g.k, &add.k},
                                                       {&g.v, &add.v}};
    for (auto [dst, x] : pairs)
        if (x->defined()) *dst = binary_forward(BinaryOp::add, *dst, *x);
}

}  // namespace goose::ops
