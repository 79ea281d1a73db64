// PLACEHOLDER until the fast CPU WKV-7 kernel lands: forwards to the reference.
#include "goose/ops/wkv7.h"

namespace goose::ops {

Wkv7Forward wkv7_forward_cpu(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                             const Tensor& a, const Tensor& b, const Tensor& state_in) {
    return wkv7_forward_ref(r, w, k, v, a, b, state_in);
}

Wkv7Grads wkv7_backward_cpu(const Tensor& gy, const Tensor& gstate, const Tensor& r,
                            const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a,
                            const Tensor& b, const Tensor& state_in, const Wkv7Forward& fwd) {
    return wkv7_backward_ref(gy, gstate, r, w, k, v, a, b, state_in, fwd);
}

}  // namespace goose::ops
