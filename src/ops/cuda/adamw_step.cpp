// Adam/AdamW on CUDA parameters: packs the step's tensors into AdamEntry records with the CPU
// optimizer's f32 coefficients and runs the multi-tensor kernel (ops/cuda/adamw_kernel.h).
#include <cmath>
#include <stdexcept>

#include "goose/core/cuda.h"
#include "ops/cuda/adamw_kernel.h"
#include "optim/adamw_cuda.h"

namespace goose::optim::detail {

void adam_step_cuda(const std::vector<CudaAdamParam>& params, double beta1, double beta2,
                    double eps, bool decoupled, double bias_correction1, double bias_correction2) {
    using adamw_cuda::AdamEntry;
    std::vector<AdamEntry> entries;
    entries.reserve(params.size());
    for (const CudaAdamParam& p : params) {
        AdamEntry e;
        e.p = static_cast<float*>(p.value.raw_data());
        e.g = p.grad.raw_data();
        e.g_bf16 = p.grad.dtype() == DType::bf16;
        e.m = static_cast<float*>(p.m.raw_data());
        e.v = static_cast<float*>(p.v.raw_data());
        e.p_bf16 = p.bf16_copy.defined() ? p.bf16_copy.raw_data() : nullptr;
        e.n = p.value.numel();
        e.decay = static_cast<float>(1.0 - p.lr * p.weight_decay);
        e.wd = static_cast<float>(p.weight_decay);
        e.any_wd = p.weight_decay != 0;
        e.step_size = static_cast<float>(p.lr / bias_correction1);
        entries.push_back(e);
    }
    const adamw_cuda::AdamShared s{static_cast<float>(1.0 - beta1),
                                   static_cast<float>(beta2),
                                   static_cast<float>(1.0 - beta2),
                                   static_cast<float>(eps),
                                   static_cast<float>(std::sqrt(bias_correction2)),
                                   decoupled};
    try {
        adamw_cuda::adam_step(entries.data(), static_cast<int64_t>(entries.size()), s,
                              cuda::current_stream());
    } catch (const std::runtime_error& e) {
        fail("adam (cuda): {}", e.what());
    }
}

}  // namespace goose::optim::detail
