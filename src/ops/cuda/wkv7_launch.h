// Raw-pointer launchers of the WKV-7 CUDA kernels (wkv7_kernels.cuh) for the tensor glue in
// wkv7.cpp; no CUDA headers here. Pointers are device pointers of packed, 16-byte aligned
// buffers (layouts in wkv7_kernels.cuh); a failed launch throws goose::Error.
#pragma once

#include <cstddef>

namespace goose::ops::wkv7_cuda {

struct Dims {
    int B, T, H, N;
};

inline constexpr int kChunk = 16;  // steps between the states saved for the backward

// bf16: r, w, k, v, a, b, y (and dy and the gradients) are bf16, else f32. stream: cudaStream_t.
// The forward needs forward_scratch_floats(d) floats of device scratch (null when that is 0),
// free again when it returns (stream order). The backward reads the forward's state_in (or null)
// and needs backward_scratch_floats(d) floats of device scratch (null when that is 0).
// backward_adds(d): whether the backward adds dr_add, dk_add and dv_add (gradients gathered
// elsewhere, each may be null) into dr, dk and dv itself; otherwise it ignores them.
void forward(bool bf16, const Dims& d, const void* r, const void* w, const void* k,
             const void* v, const void* a, const void* b, const float* state_in, void* y,
             float* sa, float* snaps, float* state_out, float* scratch, void* stream);
size_t forward_scratch_floats(const Dims& d);
size_t backward_scratch_floats(const Dims& d);
bool backward_adds(const Dims& d);
// Whether the backward runs in parallel over every chunk (fills the GPU; else a block per head).
bool backward_fills_gpu(const Dims& d);
void backward(bool bf16, const Dims& d, const void* r, const void* w, const void* k,
              const void* v, const void* a, const void* b, const void* dy,
              const float* state_in, const float* dstate_out, const float* sa,
              const float* snaps, void* dr, void* dw, void* dk, void* dv, void* da, void* db,
              float* dstate_in, const void* dr_add, const void* dk_add, const void* dv_add,
              float* scratch, void* stream);

// The backward with the RWKV-7 prep backward (models/fused.h rwkv7_prep) fused into its last
// phase, for prep_fusable(d): r, w, k, v, a, b are the prep's outputs; instead of dk, da, db
// (and dv with the gate) it writes the prep inputs' gradients: rows dkr, dal, dvr (dv itself
// without the gate), dvf and dvl (gate: vl set), and per 16-step chunk the column sums of the
// (C) parameters' gradients into part (prep_part_chunks(d), 5, C): w0, a0, v0, k_k, k_a (sum them
// with cuda_column_sums::sum_partials_launch). dw is also w_lora's gradient.
struct PrepBwd {
    const void *al = nullptr, *kr = nullptr, *vr = nullptr, *vf = nullptr, *vl = nullptr;
    const void *a0 = nullptr, *ka = nullptr, *kk = nullptr, *v0 = nullptr;
    const void* dvf_add = nullptr;  // rows added into dvf, or null
    void *dkr = nullptr, *dal = nullptr, *dvr = nullptr, *dvf = nullptr, *dvl = nullptr;
    float* part = nullptr;
};
bool prep_fusable(const Dims& d);
int prep_part_chunks(const Dims& d);
void backward_prep(bool bf16, const Dims& d, const void* r, const void* w, const void* k,
                   const void* v, const void* a, const void* b, const void* dy,
                   const float* state_in, const float* dstate_out, const float* sa,
                   const float* snaps, void* dr, void* dw, float* dstate_in, const void* dr_add,
                   const void* dk_add, const void* dv_add, const PrepBwd& p, float* scratch,
                   void* stream);

}  // namespace goose::ops::wkv7_cuda
