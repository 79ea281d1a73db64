// WKV-7: the RWKV-7 state recurrence ("generalized delta rule"), per batch b and head h, with
// value index i and key index j of the state S (N, N), exactly as the official kernels:
//
//   decay_j = exp(-exp(-0.5) * sigmoid(w_j))          (w is the raw decay: the soft clamp is inside)
//   sa_i    = sum_j S[i, j] a_j                         (state before this step)
//   S[i, j] = S[i, j] decay_j + sa_i b_j + v_i k_j
//   y_i     = sum_j S[i, j] r_j                         (state after this step)
//
// r, w, k, v, a, b: (B, T, H, N); state_in / state_out: (B, H, N, N) (row = value, column = key),
// f32 for f32 inputs (the state is always at least fp32) and f64 for f64 inputs. An undefined
// state_in means zeros. Any T >= 1 and any head size N. On CUDA: f32 or bf16 inputs (bf16 with
// an f32 state and f32 state gradients), head size 16, 32 or 64.
#pragma once
#include "goose/core/tensor.h"

namespace goose {

inline constexpr double kWkv7DecayScale = 0.6065306597126334;  // exp(-0.5)

namespace ops {

struct Wkv7Forward {
    Tensor y;          // (B, T, H, N)
    Tensor state;      // (B, H, N, N): state after the last step
    Tensor snapshots;  // variant-private data saved for the backward (may be undefined)
    Tensor sa;         // variant-private data saved for the backward (may be undefined)
};

struct Wkv7Grads {
    Tensor r, w, k, v, a, b;  // (B, T, H, N)
    Tensor state;             // (B, H, N, N): gradient of state_in
};

// Gradients of r, k and v gathered elsewhere ((B, T, H, N) each, or undefined), added into the
// backward's results (inside the CUDA kernel where it can, saving an add pass per tensor).
struct Wkv7AddIn {
    Tensor r, k, v;
};

// gy: gradient of y; gstate: gradient of the final state (undefined = zero). `fwd` is what the
// forward of the same backend returned.
Wkv7Forward wkv7_forward(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                         const Tensor& a, const Tensor& b, const Tensor& state_in);
Wkv7Grads wkv7_backward(const Tensor& gy, const Tensor& gstate, const Tensor& r, const Tensor& w,
                        const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                        const Tensor& state_in, const Wkv7Forward& fwd,
                        const Wkv7AddIn& add = {});
// g.r += add.r, g.k += add.k, g.v += add.v (the defined ones), as new tensors.
void wkv7_add_in(Wkv7Grads& g, const Wkv7AddIn& add);

// The SMs the backward of (B, T, H, N) inputs on `dev` leaves idle or half used, where other
// work can run beside it: on CUDA the sequential backward runs a block per head (at most two
// per SM); the two-pass backward (head size 64 from T 512) fills the GPU. 0 off CUDA.
int wkv7_backward_free_sms(const Shape& r_shape, Device dev);

Wkv7Forward wkv7_forward_ref(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                             const Tensor& a, const Tensor& b, const Tensor& state_in);
Wkv7Grads wkv7_backward_ref(const Tensor& gy, const Tensor& gstate, const Tensor& r,
                            const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a,
                            const Tensor& b, const Tensor& state_in, const Wkv7Forward& fwd);
Wkv7Forward wkv7_forward_cpu(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                             const Tensor& a, const Tensor& b, const Tensor& state_in);
Wkv7Grads wkv7_backward_cpu(const Tensor& gy, const Tensor& gstate, const Tensor& r,
                            const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a,
                            const Tensor& b, const Tensor& state_in, const Wkv7Forward& fwd);
#ifdef GOOSE_CUDA
int wkv7_backward_free_sms_cuda(const Shape& r_shape);
Wkv7Forward wkv7_forward_cuda(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                              const Tensor& a, const Tensor& b, const Tensor& state_in);
Wkv7Grads wkv7_backward_cuda(const Tensor& gy, const Tensor& gstate, const Tensor& r,
                             const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a,
                             const Tensor& b, const Tensor& state_in, const Wkv7Forward& fwd,
                             const Wkv7AddIn& add = {});
#endif

}  // namespace ops
}  // namespace goose
