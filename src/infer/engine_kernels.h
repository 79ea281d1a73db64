// Kernels of the inference engine: the weight-streaming GEMV over several matrices and a few
// input rows at once (each weight row read from memory once for all rows), the sequence
// linear (OpenBLAS sgemm, weights widened to f32 in tiles when stored as bf16/int8), and the
// fused elementwise chains of an RWKV-7 layer (layer norm, token-shift mixes, the whole
// per-head time-mix step: decay, a, kk, k, value residual, WKV-7, group norm, bonus, gate).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "engine_weights.h"

namespace goose::infer::detail {

enum class Epilogue : uint8_t {
    store,  // y = W x
    add,    // y += W x (residual)
    relu2,  // y = relu(W x)^2 (channel mix)
};

// y[b * ldy + o] (op)= sum_i w[o, i] x[b * ldx + i] for b < rows, o < w.rows.
struct GemvJob {
    const QMatrix* w = nullptr;
    const float* x = nullptr;
    int64_t ldx = 0;
    float* y = nullptr;
    int64_t ldy = 0;
    Epilogue ep = Epilogue::store;
};

struct GemvTile {
    int32_t job;
    int64_t r0, r1;
};

// Up to this many input rows the GEMV kernel runs (weights streamed once, in registers);
// from here on the sequence linear (sgemm) is faster.
inline constexpr int64_t kGemvMaxRows = 24;

// Every job for `rows` input rows in one OpenMP region over tiles of weight rows (tiles is
// scratch whose capacity is kept).
void gemv(std::span<const GemvJob> jobs, int64_t rows, std::vector<GemvTile>& tiles);

// The same jobs for many rows: one OpenMP region over chunks of output features of all jobs,
// each running one-thread OpenBLAS sgemm on f32 weights or on tiles widened to f32 in the
// thread's `widen` buffer (bf16/int8). Call it with OpenBLAS set to one thread (BlasOneThread).
void linear_rows(std::span<const GemvJob> jobs, int64_t rows, std::vector<GemvTile>& chunks,
                 std::vector<Scratch>& widen);

// Sets OpenBLAS to one thread for a scope (the engine threads with OpenMP itself; idle BLAS
// workers spinning beside OpenMP threads halve the speed on a machine with few cores).
class BlasOneThread {
public:
    BlasOneThread();
    ~BlasOneThread();
    BlasOneThread(const BlasOneThread&) = delete;
    BlasOneThread& operator=(const BlasOneThread&) = delete;

private:
    int prev_;
};

// Runs the jobs for `rows` rows with whichever of the two is faster.
void linear_jobs(std::span<const GemvJob> jobs, int64_t rows, std::vector<GemvTile>& tiles,
                 std::vector<Scratch>& widen);

// out = (x - mean) / sqrt(var + eps) * w + b over n values (out may be x).
void layer_norm(const float* x, const float* w, const float* b, float* out, int64_t n, float eps);

// outs[m][i] = x[i] + (prev[i] - x[i]) * coef[m][i] for m < count (token-shift lerps).
void token_mix(const float* x, const float* prev, const float* const* coef, float* const* outs,
               int count, int64_t n);

void tanh_inplace(float* x, int64_t n);
void sigmoid_inplace(float* x, int64_t n);

// The per-layer constants of the time mix (C floats each; r_k is (H, N)).
struct TimeMixParams {
    const float *w0, *a0, *v0, *k_k, *k_a, *r_k, *lnx_w, *lnx_b;
    int64_t n_embd, head_size;
    bool first_layer;  // layer 0: v_first := v; later layers mix v towards v_first
};

// One token of one sequence (C floats each). time_mix_prepare replaces, in place, w (the
// decay LoRA output) by the decay, k by k (1 + (a - 1) k_a), a (the a LoRA output) by
// b = kk a, v by the value after the residual mix, and writes the normalised kk; wkv_head
// advances one head's state and writes y; time_mix_output turns y into
// (group_norm(y) + bonus) g in place.
struct TimeMixRow {
    float *r, *w, *k, *v, *a;
    const float *vg, *g;
    float *kk, *v_first, *y;
};

// Per channel (spec §3.3-§3.4, §3.2 value residual), all heads of the row.
void time_mix_prepare(const TimeMixParams& p, const TimeMixRow& row);
// WKV-7 (§3.5) for head h: sa = S (-kk); S = S diag(decay) + sa b^T + v k^T; y = S r; the
// state (N x N, row = value, column = key) in place.
void wkv_head(const TimeMixRow& row, int64_t h, int64_t head_size, float* state);
// Group norm per head, the bonus (r . k . r_k) v, the gate (§3.6).
void time_mix_output(const TimeMixParams& p, const TimeMixRow& row);

}  // namespace goose::infer::detail
