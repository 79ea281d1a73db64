// Causal scaled dot-product attention over (B, H, T, N) heads. f32 and f64.
#pragma once
#include "goose/core/tensor.h"

namespace goose::ops {

struct AttentionOut {
    Tensor y;    // (B, H, T, N)
    Tensor lse;  // (B, H, T): log-sum-exp of each query's scaled scores, kept for the backward
};
struct AttentionGrads {
    Tensor q, k, v;  // undefined where not asked for
};

// y[t] = sum_{s <= t} softmax_s(scale q[t]·k[s]) v[s] for each (b, h). q, k, v (B, H, T, N)
// of one shape and dtype, any strides; scale 0 means 1/sqrt(N).
AttentionOut attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale = 0);
// gy (B, H, T, N); y and lse from attention_forward with the same arguments.
AttentionGrads attention_backward(const Tensor& gy, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& y, const Tensor& lse,
                                  double scale = 0, bool need_q = true, bool need_k = true,
                                  bool need_v = true);

// Variants take the resolved scale (never 0).
AttentionOut attention_forward_ref(const Tensor& q, const Tensor& k, const Tensor& v, double scale);
AttentionGrads attention_backward_ref(const Tensor& gy, const Tensor& q, const Tensor& k,
                                      const Tensor& v, const Tensor& y, const Tensor& lse,
                                      double scale, bool need_q, bool need_k, bool need_v);
AttentionOut attention_forward_cpu(const Tensor& q, const Tensor& k, const Tensor& v, double scale);
AttentionGrads attention_backward_cpu(const Tensor& gy, const Tensor& q, const Tensor& k,
                                      const Tensor& v, const Tensor& y, const Tensor& lse,
                                      double scale, bool need_q, bool need_k, bool need_v);

}  // namespace goose::ops
