// Chunked WKV-7 forward and backward for head size 64 (spec rwkv7.md §4.4; the derivation is in
// bench/kernels/wkv7/README.md "Chunked form"): the same contract as the sequential kernels of
// wkv7_kernels.cuh (FwdArgs / BwdArgs), f32 arithmetic throughout.
//
// Per (b, h) and 16-step chunk with entering state S0 (lam_t = sum_{s<=t} log decay_s):
//   U = (I - Ab)^-1 (At S0^T + Ak V),  y = Rt S0^T + Rb U + Rk V,
//   S_L = S0 diag(e^lam_L) + U^T Bh + V^T Kh,
// with At = a o e^lam_{t-1}, Rt = r o e^lam_t, Bs = b o e^-lam_t, Ks = k o e^-lam_t,
// Bh = b o e^(lam_L - lam_t), Kh = k o e^(lam_L - lam_t); Ab = At Bs^T and Ak = At Ks^T strictly
// lower, Rb = Rt Bs^T and Rk = Rt Ks^T lower (diagonal included). Padded steps of a short last
// chunk have log decay 0 and zero r, k, v, a, b: they change nothing.
//
// Forward (one block per (h, b, R value rows); value rows of the state are independent): the
// state-independent work of a chunk (exponentials, the four 16x16 products, the triangular solve
// folded into A' = (I - Ab)^-1 At, TAk = (I - Ab)^-1 Ak, R' = Rt + Rb A', Rk' = Rk + Rb TAk) runs
// two chunks ahead of the state work, so each chunk costs two barriers:
//   [U; y] = [A' TAk; R' Rk'] [S0^T; V^T],  S_L = S0 o e^lam_L + U^T Bh + V^T Kh.
// Backward phase A (same structure, reverse time): Gh = dL/dS at the chunk exit;
//   dU = (I - Ab^T)^-1 (Bh Gh^T + Rb^T dY),  Gh_0 = Gh o e^lam_L + dU^T At + dY^T Rt,
// storing dU (B, T, H, N) and Gh per chunk (B, H, chunks, N, N) in scratch. Phase B (one block
// per chunk, all in parallel): dr, da, dk, db, dv from S0, Gh, U (= sa), dU, and dw by the
// identity dl_t = sum_{s>=t} (r dr - b db - k dk)_s + sum_{s>t} (a da)_s + sum_i Gh S_L.
#pragma once

#include "wkv7_chunked_bwd_a.cuh"
#include "wkv7_chunked_bwd_b.cuh"
#include "wkv7_chunked_common.cuh"
#include "wkv7_chunked_fwd.cuh"

namespace goose_wkv7 {
namespace chunked {

// ---- launchers ------------------------------------------------------------------------------

template <class T, int R, int NT = 256, bool kMma = false>
cudaError_t launch_forward(const Dims& D, const FwdArgs<T>& A, cudaStream_t stream) {
    constexpr size_t smem = FwdSmem<T, R>::bytes();
    auto kernel = wkv7_chunked_forward_kernel<T, R, NT, kMma>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kernel<<<dim3(D.H, D.B, N / R), NT, smem, stream>>>(D, A);
    return cudaGetLastError();
}

// Floats of scratch the chunked backward needs (du, then gh).
inline size_t backward_scratch_floats(const Dims& D) {
    return static_cast<size_t>(D.B) * D.T * D.H * N +
           static_cast<size_t>(D.B) * D.H * D.chunks() * N * N;
}

// kMmaA / kMmaB: phase A / phase B products on tensor cores (3xTF32) instead of f32 FMAs.
template <class T, int R, int NT = 256, bool kMmaA = false, bool kMmaB = false>
cudaError_t launch_backward(const Dims& D, const BwdArgs<T>& A, float* scratch,
                            cudaStream_t stream) {
    const BwdScratch W{scratch, scratch + static_cast<size_t>(D.B) * D.T * D.H * N};
    constexpr size_t smem_a = BwdASmem<T, R>::bytes();
    auto ka = wkv7_chunked_bwd_state_kernel<T, R, NT, kMmaA>;
    cudaError_t e = cudaFuncSetAttribute(ka, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem_a));
    if (e != cudaSuccess) return e;
    ka<<<dim3(D.H, D.B, N / R), NT, smem_a, stream>>>(D, A, W);
    e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    constexpr size_t smem_b = BwdBSmem::bytes();
    auto kb = wkv7_chunked_bwd_grads_kernel<T, kMmaB>;
    e = cudaFuncSetAttribute(kb, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem_b));
    if (e != cudaSuccess) return e;
    kb<<<dim3(D.chunks(), D.H, D.B), NTB, smem_b, stream>>>(D, A, W);
    return cudaGetLastError();
}

}  // namespace chunked
}  // namespace goose_wkv7
