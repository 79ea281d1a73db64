// The fused RWKV-7 functions of models/fused.h for CUDA tensors (f32 or bf16): the same
// autograd records as the CPU path, with the kernels of ops/cuda/rwkv7_fused.cu. Built only with
// GOOSE_CUDA; fused.cpp routes CUDA inputs here.
#pragma once
#include "models/fused.h"

namespace goose::models::fused {

std::vector<Var> token_mix_cuda(const Var& x, const Var& prev, const std::vector<Var>& mu);
TokenMixGrads token_mix_backward_cuda(const Tensor& x, const Tensor& prev,
                                      const std::vector<Tensor>& mu,
                                      const std::vector<MixGrad>& grads, bool need_x);
Rwkv7Prep rwkv7_prep_cuda(const Var& w_lora, const Var& k_raw, const Var& v_raw,
                          const Var& a_lora, const Var& v_lora, const Var& v_first, const Var& w0,
                          const Var& a0, const Var& v0, const Var& k_k, const Var& k_a,
                          int64_t head_size);
// Undefined members where the fused backward does not take the inputs (the caller composes).
Rwkv7PrepWkv rwkv7_prep_wkv7_cuda(const Var& r, const Var& w_lora, const Var& k_raw,
                                  const Var& v_raw, const Var& a_lora, const Var& v_lora,
                                  const Var& v_first, const Var& w0, const Var& a0, const Var& v0,
                                  const Var& k_k, const Var& k_a, int64_t head_size,
                                  const Var& state_in);
// Undefined members where the vector kernels do not take the tensors (the caller composes).
AddNorm add_layer_norm_cuda(const Var& x, const Var& a, const Var& w, const Var& b, double eps);
AddNormMix add_layer_norm_mix_cuda(const Var& x, const Var& a, const Var& w, const Var& b,
                                   double eps, const Var& mu, const Var& prev);
Var rwkv7_out_cuda(const Var& y, const Var& r, const Var& k, const Var& v, const Var& r_k,
                   const Var& ln_w, const Var& ln_b, const Var& g, double eps);

}  // namespace goose::models::fused
