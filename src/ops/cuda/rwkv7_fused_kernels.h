// Launchers of the fused RWKV-7 glue kernels (rwkv7_fused.cu): raw device pointers of packed
// f32 or bf16 tensors, the stream as void*. Internal; no CUDA headers. Null pointers mark absent
// tensors (prev, the layer-0 v terms, unneeded outputs). `part` receives per-chunk parameter
// gradient sums (at most *_max_chunks(...) x K floats; a launch returns how many chunks it
// wrote), reduced by sum_partials_launch. Packed 16-byte aligned tensors with C a multiple of 8
// (bf16) or 4 (f32) and such heads run the vectorised kernels of rwkv7_fused_vec.cu, others the
// per-channel kernels of rwkv7_fused.cu.
#pragma once
#include <cstdint>

#include "ops/cuda/column_sums.h"

namespace goose::models::fused::cuda_kernels {

constexpr int kRows = 16;   // rows per block, and per partial sum of a parameter gradient
constexpr int kCpt = 4;     // channels per thread at most: C <= 4096
constexpr int kMaxMix = 8;        // token_mix vectors at most
constexpr int kMaxMixGrads = 10;  // gradients of token_mix's outputs one backward sums at most

// G: the gradients the backward reads (MixPtrs::G; the kernel, and so the chunks, depend on it).
int token_mix_max_chunks(int64_t rows, int64_t C, int M, int G, bool bf16);
int prep_max_chunks(int64_t rows, int C, int N, bool bf16);
int out_max_chunks(int64_t rows, int C, int N, bool bf16);
// Partial parameter-gradient sums reduced by sum_partials_launch (column_sums.h).
using cuda_column_sums::PartialOuts;
using cuda_column_sums::sum_partials_launch;
static_assert(kMaxMix <= cuda_column_sums::kMaxOuts, "a partial sum per mixing vector");

struct MixPtrs {
    const void* x = nullptr;     // (B, T, C)
    const void* prev = nullptr;  // (B, C)
    const void* mu[kMaxMix] = {};
    void* out[kMaxMix] = {};  // forward
    // backward: G gradients of the outputs grouped by mix, those of out[m] (summed) being
    // g[g_first[m]] .. g[g_first[m + 1] - 1] (none: a zero gradient)
    const void* g[kMaxMixGrads] = {};
    int g_first[kMaxMix + 1] = {};
    int G = 0;
    void* dx = nullptr;  // backward outputs
    void* dprev = nullptr;
    float* part = nullptr;  // (chunks, M, C)
    int M = 0;
};
int token_mix_launch(const MixPtrs& p, int64_t B, int64_t Tn, int64_t C, bool backward,
                     bool bf16, void* stream);

struct PrepPtrs {
    const void *wl = nullptr, *kr = nullptr, *vr = nullptr, *al = nullptr, *vl = nullptr,
               *vf = nullptr;                                                  // rows
    const void *w0 = nullptr, *a0 = nullptr, *v0 = nullptr, *kk = nullptr, *ka = nullptr;  // (C)
    void *w = nullptr, *k = nullptr, *aa = nullptr, *bb = nullptr, *v = nullptr;  // forward
    const void *gw = nullptr, *gk = nullptr, *gaa = nullptr, *gbb = nullptr, *gv = nullptr;
    void *dkr = nullptr, *dvr = nullptr, *dal = nullptr, *dvl = nullptr, *dvf = nullptr;
    const void* dvf_add = nullptr;  // rows added into dvf (v_first's gradient so far), or null
    float* part = nullptr;          // (chunks, 5, C): w0, a0, v0, kk, ka
};
int prep_launch(const PrepPtrs& p, int64_t rows, int C, int N, bool backward, bool bf16,
                void* stream);

struct OutPtrs {
    const void *y = nullptr, *r = nullptr, *k = nullptr, *v = nullptr, *g = nullptr;  // rows
    const void *rk = nullptr, *lw = nullptr, *lb = nullptr;                            // (C)
    void* z = nullptr;                                                                 // forward
    const void* gz = nullptr;                                                          // backward
    void *dy = nullptr, *dr = nullptr, *dk = nullptr, *dv = nullptr, *dg = nullptr;
    float* part = nullptr;  // (chunks, 3, C): r_k, ln_w, ln_b
};
int out_launch(const OutPtrs& p, int64_t rows, int C, int N, float eps, bool backward, bool bf16,
               void* stream);

// The vectorised kernels (rwkv7_fused_vec.cu): vec_ok says whether (C, N) fit them (N = 0: no
// heads); *_vec_chunks the chunks their backward writes; a launch returns false, launching
// nothing, when a pointer is not 16-byte aligned.
bool vec_ok(int C, int N, bool bf16);
int mix_vec_chunks(int64_t rows, int C, int M, int G, bool bf16);
int prep_vec_chunks(int64_t rows, int C, int N, bool bf16);
int out_vec_chunks(int64_t rows, int C, int N, bool bf16);
bool token_mix_vec_launch(const MixPtrs& p, int64_t B, int64_t Tn, int64_t C, bool backward,
                          bool bf16, void* stream);
bool prep_vec_launch(const PrepPtrs& p, int64_t rows, int C, int N, bool backward, bool bf16,
                     void* stream);
bool out_vec_launch(const OutPtrs& p, int64_t rows, int C, int N, float eps, bool backward,
                    bool bf16, void* stream);

}  // namespace goose::models::fused::cuda_kernels
