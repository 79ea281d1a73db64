// CUDA fused head + cross-entropy, called by src/ops/head_ce.cpp. No CUDA headers here.
#pragma once
#include "goose/ops/head_ce.h"

namespace goose::ops {

HeadCrossEntropyResult head_cross_entropy_cuda(const Tensor& x, const Tensor& w,
                                               const Tensor& targets,
                                               const HeadCrossEntropyOptions& opt);

}  // namespace goose::ops
