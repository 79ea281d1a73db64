// The CUDA side of Adam/AdamW (src/ops/cuda/adamw_step.cpp, built with GOOSE_CUDA): every CUDA
// parameter of a step updated by the multi-tensor kernel. Internal; no CUDA headers.
#pragma once
#include <vector>

#include "goose/core/tensor.h"

namespace goose::optim::detail {

// One f32 CUDA parameter of a step: value, m and v packed f32; grad packed f32 or bf16; an
// optional packed bf16 tensor that receives the updated value.
struct CudaAdamParam {
    Tensor value, grad, m, v, bf16_copy;
    double lr;            // cfg.lr * group lr_scale
    double weight_decay;  // the group's
};

// The coefficients as the CPU update rounds them to f32 (see adamw.cpp), then one launch per
// kAdamMaxEntries tensors on the current stream.
void adam_step_cuda(const std::vector<CudaAdamParam>& params, double beta1, double beta2,
                    double eps, bool decoupled, double bias_correction1, double bias_correction2);

}  // namespace goose::optim::detail
