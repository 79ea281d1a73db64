// Adam/AdamW on CUDA parameters: packs the step's tensors into AdamEntry records and runs the
// multi-tensor kernel (ops/cuda/adamw_kernel.h), which reads the per-step coefficients (the CPU
// optimizer's f32 roundings) from a device array written by a small pinned-host copy.
#include <cuda_runtime_api.h>

#include <cmath>
#include <stdexcept>

#include "core/cuda/cuda_check.h"
#include "goose/core/cuda.h"
#include "ops/cuda/adamw_kernel.h"
#include "optim/adamw_cuda.h"

namespace goose::optim::detail {

struct CudaAdamState {
    Tensor coeffs;              // device f32 [1 + 2 n]
    Tensor clip;                // device f32 [norm, scale, partial sums...] (gradient clipping)
    float* staging = nullptr;   // pinned host, as large as coeffs
    int64_t staging_len = 0;
    cudaEvent_t uploaded = nullptr;  // the last upload's copy has read the staging buffer
    bool recorded = false;
    std::vector<double> lr_scale, wd;  // per slot, of the last launch

    ~CudaAdamState() {
        if (uploaded) cudaEventDestroy(uploaded);
        if (staging) cudaFreeHost(staging);
    }
};

std::shared_ptr<CudaAdamState> make_cuda_adam_state() {
    return std::make_shared<CudaAdamState>();
}

void upload_adam_coefficients(CudaAdamState& st, double lr, double bias_correction1,
                              double bias_correction2) {
    const auto n = static_cast<int64_t>(st.lr_scale.size());
    if (!st.coeffs.defined() || st.coeffs.numel() != 1 + 2 * n)
        fail("adam (cuda): no step has been launched to upload coefficients for");
    if (cuda::capturing())
        fail("adam (cuda): the step coefficients are uploaded before a graph replay, not inside "
             "a capture");
    const int64_t len = 1 + 2 * n;
    if (st.recorded) GOOSE_CUDA_CHECK(cudaEventSynchronize(st.uploaded));  // staging is free
    if (st.staging_len < len) {
        if (st.staging) GOOSE_CUDA_CHECK(cudaFreeHost(st.staging));
        st.staging = nullptr;
        GOOSE_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&st.staging),
                                        static_cast<size_t>(len) * sizeof(float)));
        st.staging_len = len;
    }
    if (!st.uploaded)
        GOOSE_CUDA_CHECK(cudaEventCreateWithFlags(&st.uploaded, cudaEventDisableTiming));
    st.staging[0] = static_cast<float>(std::sqrt(bias_correction2));
    for (int64_t i = 0; i < n; ++i) {
        const double group_lr = lr * st.lr_scale[static_cast<size_t>(i)];  // as adamw.cpp
        st.staging[1 + i] = static_cast<float>(group_lr / bias_correction1);
        st.staging[1 + n + i] = static_cast<float>(1.0 - group_lr * st.wd[static_cast<size_t>(i)]);
    }
    auto stream = static_cast<cudaStream_t>(cuda::current_stream());
    GOOSE_CUDA_CHECK(cudaMemcpyAsync(st.coeffs.raw_data(), st.staging,
                                     static_cast<size_t>(len) * sizeof(float),
                                     cudaMemcpyHostToDevice, stream));
    GOOSE_CUDA_CHECK(cudaEventRecord(st.uploaded, stream));
    st.recorded = true;
}

void adam_step_cuda(CudaAdamState& st, const std::vector<CudaAdamParam>& params, double lr,
                    double beta1, double beta2, double eps, bool decoupled,
                    double bias_correction1, double bias_correction2, bool upload,
                    double max_grad_norm) {
    using adamw_cuda::AdamEntry;
    const auto n = static_cast<int64_t>(params.size());
    if (!st.coeffs.defined() || st.coeffs.numel() != 1 + 2 * n)
        st.coeffs = Tensor::empty(Shape{1 + 2 * n}, DType::f32, params.front().value.device());
    st.lr_scale.clear();
    st.wd.clear();
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
        e.wd = static_cast<float>(p.weight_decay);
        e.any_wd = p.weight_decay != 0;
        e.slot = static_cast<int32_t>(entries.size());
        entries.push_back(e);
        st.lr_scale.push_back(p.lr_scale);
        st.wd.push_back(p.weight_decay);
    }
    if (upload) upload_adam_coefficients(st, lr, bias_correction1, bias_correction2);
    adamw_cuda::AdamShared s{static_cast<float>(1.0 - beta1),
                             static_cast<float>(beta2),
                             static_cast<float>(1.0 - beta2),
                             static_cast<float>(eps),
                             0.f,
                             decoupled};
    s.coeffs = static_cast<const float*>(st.coeffs.raw_data());
    s.coeff_entries = static_cast<int32_t>(n);
    try {
        if (max_grad_norm > 0) {  // the norm and the scale stay on the device
            const int64_t parts = adamw_cuda::clip_partials(entries.data(), n);
            if (!st.clip.defined() || st.clip.numel() != 2 + parts)
                st.clip = Tensor::empty(Shape{2 + parts}, DType::f32, st.coeffs.device());
            float* clip = static_cast<float*>(st.clip.raw_data());
            adamw_cuda::grad_clip_scale(entries.data(), n, static_cast<float>(max_grad_norm),
                                        clip + 2, clip, cuda::current_stream());
            s.grad_scale = clip + 1;
        }
        adamw_cuda::adam_step(entries.data(), static_cast<int64_t>(entries.size()), s,
                              cuda::current_stream());
    } catch (const std::runtime_error& e) {
        fail("adam (cuda): {}", e.what());
    }
}

double last_grad_norm(const CudaAdamState& st) {
    if (!st.clip.defined()) return std::nan("");
    return st.clip.slice(0, 0, 1).to(Device::cpu()).to(DType::f64).item();
}

}  // namespace goose::optim::detail
