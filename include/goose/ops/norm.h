// Normalisation over the last axis: layer_norm (PyTorch's, biased variance), group_norm on
// channels-last input (each row's C channels in `groups` contiguous groups, normalised on
// their own, then a per-channel affine: RWKV-7's ln_x) and l2_normalize (F.normalize).
// f32 and f64; w and b (C) are optional everywhere (an undefined tensor means no affine).
#pragma once
#include "goose/core/tensor.h"

namespace goose::ops {

struct NormForward {
    Tensor y;     // like x
    Tensor mean;  // layer_norm: (...); group_norm: (..., groups)
    Tensor rstd;  // 1 / sqrt(var + eps), the shape of mean
};

struct NormGrads {
    Tensor dx;
    Tensor dw, db;  // (C), each only when asked for (need_dw, need_db)
};

// x (..., C), w, b (C) or undefined -> y = (x - mean) * rstd * w + b over the last axis
NormForward layer_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                               double eps = 1e-5);
// gy, x (..., C), w (C) or undefined, mean and rstd of the forward -> dx, dw, db
NormGrads layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& w,
                              const Tensor& mean, const Tensor& rstd, bool need_dw, bool need_db);

// x (..., C) with C divisible by groups; groups of C / groups contiguous channels
NormForward group_norm_forward(const Tensor& x, int groups, const Tensor& w, const Tensor& b,
                               double eps = 1e-5);
NormGrads group_norm_backward(const Tensor& gy, const Tensor& x, int groups, const Tensor& w,
                              const Tensor& mean, const Tensor& rstd, bool need_dw, bool need_db);

// x (..., C) -> y = x / max(||x||_2, eps) along the last axis
Tensor l2_normalize_forward(const Tensor& x, double eps = 1e-12);
// -> dx; where the norm is clamped to eps, dx = gy / eps
Tensor l2_normalize_backward(const Tensor& gy, const Tensor& x, double eps = 1e-12);

// Variants. layer_norm is group_norm with one group (mean and rstd without the group dim).
NormForward layer_norm_forward_ref(const Tensor& x, const Tensor& w, const Tensor& b, double eps);
NormGrads layer_norm_backward_ref(const Tensor& gy, const Tensor& x, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd, bool need_dw,
                                  bool need_db);
NormForward group_norm_forward_ref(const Tensor& x, int groups, const Tensor& w, const Tensor& b,
                                   double eps);
NormGrads group_norm_backward_ref(const Tensor& gy, const Tensor& x, int groups, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd, bool need_dw,
                                  bool need_db);
Tensor l2_normalize_forward_ref(const Tensor& x, double eps);
Tensor l2_normalize_backward_ref(const Tensor& gy, const Tensor& x, double eps);

NormForward layer_norm_forward_cpu(const Tensor& x, const Tensor& w, const Tensor& b, double eps);
NormGrads layer_norm_backward_cpu(const Tensor& gy, const Tensor& x, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd, bool need_dw,
                                  bool need_db);
NormForward group_norm_forward_cpu(const Tensor& x, int groups, const Tensor& w, const Tensor& b,
                                   double eps);
NormGrads group_norm_backward_cpu(const Tensor& gy, const Tensor& x, int groups, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd, bool need_dw,
                                  bool need_db);
Tensor l2_normalize_forward_cpu(const Tensor& x, double eps);
Tensor l2_normalize_backward_cpu(const Tensor& gy, const Tensor& x, double eps);

}  // namespace goose::ops
