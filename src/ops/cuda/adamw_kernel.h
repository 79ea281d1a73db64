// Multi-tensor Adam/AdamW update on raw device pointers (no goose or CUDA headers here): one
// launch updates up to kAdamMaxEntries tensors; fp32 weights and moments, f32 or bf16 gradients,
// and an optional bf16 copy of the updated weights written in the same pass.
#pragma once
#include <cstdint>

namespace goose::adamw_cuda {

// One parameter tensor (packed, n elements) and its group's coefficients, already rounded to
// f32 exactly as the CPU optimizer rounds them (see src/optim/adamw.cpp).
struct AdamEntry {
    float* p = nullptr;       // weights, updated in place
    const void* g = nullptr;  // gradient: f32, or bf16 when g_bf16
    float* m = nullptr;       // exp_avg
    float* v = nullptr;       // exp_avg_sq
    void* p_bf16 = nullptr;   // optional: receives bf16(p) after the update
    int64_t n = 0;
    float decay = 1;      // 1 - lr * weight_decay (AdamW)
    float wd = 0;         // weight_decay (Adam with L2)
    float step_size = 0;  // lr / (1 - beta1^t)
    uint16_t any_wd = 0;  // the group's weight_decay != 0
    uint16_t g_bf16 = 0;
    int32_t slot = 0;     // this entry's index in AdamShared::coeffs
};

// Coefficients shared by every tensor of a step.
struct AdamShared {
    float one_minus_beta1, beta2, one_minus_beta2, eps;
    float bc2_sqrt;  // sqrt(1 - beta2^t)
    bool decoupled;  // AdamW: p *= decay; else g += wd * p
    // Optional device array of the per-step coefficients, read instead of bc2_sqrt and each
    // entry's step_size and decay (so a CUDA graph of the step reads the current step's):
    // [bc2_sqrt, step_size of slot 0..entries-1, decay of slot 0..entries-1].
    const float* coeffs = nullptr;
    int32_t coeff_entries = 0;
    // Optional device scalar every gradient is multiplied by first (gradient clipping, see
    // grad_clip_scale); null: gradients as they are.
    const float* grad_scale = nullptr;
};

// The update of every entry, in launches of at most this many tensors each.
constexpr int kAdamMaxEntries = 224;

// Element-wise, per entry (the CPU optimizer's exact operation order, with fused
// multiply-adds where it has them):
//   g' = decoupled ? g : fma(wd, p, g) (when any_wd);  p = decoupled && any_wd ? p * decay : p
//   m = fma(1 - beta1, g' - m, m);   v = fma(v, beta2, (1 - beta2) g' g')
//   p = p - step_size m / (sqrt(v) / bc2_sqrt + eps)
// Throws std::runtime_error on a CUDA launch error. stream: a cudaStream_t.
void adam_step(const AdamEntry* entries, int64_t count, const AdamShared& s, void* stream);

// Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_) without leaving the
// device: the sum of squares of every entry's gradient (one partial per chunk, then one block
// adding them in a fixed order, in double: deterministic), then out[0] = the norm and out[1] =
// max_norm / (norm + 1e-6) when the norm exceeds max_norm, else 1 (a NaN norm gives 1, an
// infinite one 0), for AdamShared::grad_scale. partials: clip_partials(entries, count) floats.
int64_t clip_partials(const AdamEntry* entries, int64_t count);
void grad_clip_scale(const AdamEntry* entries, int64_t count, float max_norm, float* partials,
                     float* out, void* stream);

}  // namespace goose::adamw_cuda
