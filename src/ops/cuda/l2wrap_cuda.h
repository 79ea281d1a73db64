// L2Wrap's extra logit gradient on CUDA (internal; no CUDA headers): zeros except, in each row,
// scale * max at the row's first maximal logit, scale = gy * 1e-4 / rows. f32 and bf16 logits.
#pragma once
#include "goose/core/tensor.h"

namespace goose::ag {

Tensor l2wrap_logits_grad_cuda(const Tensor& logits, double gy, double factor);

}  // namespace goose::ag
