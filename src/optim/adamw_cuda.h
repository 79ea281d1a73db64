// The CUDA side of Adam/AdamW (src/ops/cuda/adamw_step.cpp, built with GOOSE_CUDA): every CUDA
// parameter of a step updated by the multi-tensor kernel, which reads the per-step coefficients
// from a device array (uploaded before each step, so a CUDA graph of the step replays with the
// current step's). Internal; no CUDA headers.
#pragma once
#include <memory>
#include <vector>

#include "goose/core/tensor.h"

namespace goose::optim::detail {

// One f32 CUDA parameter of a step: value, m and v packed f32; grad packed f32 or bf16; an
// optional packed bf16 tensor that receives the updated value.
struct CudaAdamParam {
    Tensor value, grad, m, v, bf16_copy;
    double lr_scale;      // the group's (its lr is cfg.lr * lr_scale)
    double weight_decay;  // the group's
};

// The device coefficient array, its pinned staging buffer and the layout of the last launch.
struct CudaAdamState;
std::shared_ptr<CudaAdamState> make_cuda_adam_state();

// One launch per kAdamMaxEntries tensors on the current stream. upload: first write this step's
// coefficients (the CPU optimizer's f32 roundings, see adamw.cpp) into the device array; false
// while a CUDA graph is captured (then upload_adam_coefficients must run before each replay).
// max_grad_norm > 0: the gradients are first clipped by their global L2 norm, computed on the
// device (adamw_cuda::grad_clip_scale), so a CUDA graph of the step clips each replay's.
void adam_step_cuda(CudaAdamState& state, const std::vector<CudaAdamParam>& params, double lr,
                    double beta1, double beta2, double eps, bool decoupled,
                    double bias_correction1, double bias_correction2, bool upload,
                    double max_grad_norm);
// The gradients' global norm of the last clipped step (waits for it); NaN when none clipped.
double last_grad_norm(const CudaAdamState& state);
// The coefficients of a step (lr: the optimizer's current base rate) for the parameters of the
// last adam_step_cuda call, stream-ordered before the work that follows on the current stream.
// Fails when nothing was launched yet.
void upload_adam_coefficients(CudaAdamState& state, double lr, double bias_correction1,
                              double bias_correction2);

}  // namespace goose::optim::detail
