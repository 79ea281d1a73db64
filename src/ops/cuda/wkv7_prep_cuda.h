// The WKV-7 CUDA backward with the RWKV-7 prep backward (models/fused.h rwkv7_prep) fused into
// its last kernel (wkv7_launch.h backward_prep): tensor glue for the models' fused record.
#pragma once
#include "goose/core/tensor.h"
#include "goose/ops/wkv7.h"

namespace goose::ops {

// The prep's saved inputs: rows (B, T, C) and (1, 1, C) parameters of r's dtype, packed; vr,
// vf, vl, v0 undefined without the gate (layer 0, where v is v_raw itself).
struct Wkv7PrepIn {
    Tensor kr, vr, al, vl, vf, a0, v0, kk, ka;
};
// Gradients: r, w (= w_lora's) (B, T, H, N); the prep inputs' rows (B, T, C) (dvr, dvf, dvl
// undefined without the gate: then dv is v_raw's, in dvr); the parameters' (1, 1, C); state
// (B, H, N, N) in state_in's dtype.
struct Wkv7PrepGrads {
    Tensor r, w, state;
    Tensor dkr, dal, dvr, dvf, dvl;
    Tensor dw0, da0, dv0, dkk, dka;
};

// Whether the fused backward runs for inputs like r (B, T, H, N) on CUDA: f32 or bf16, head
// size 64, T from 512 (the two-pass backward).
bool wkv7_prep_fusable_cuda(const Tensor& r);
// gy, gstate, r .. b, state_in, fwd as wkv7_backward_cuda (r .. b the prep's outputs w, k, v,
// a, b, as heads); add.r, add.k, add.v: gradients r, k, v gathered elsewhere (v: the prep's
// output v with the gate, v_raw without), added in; dvf_add (rows, or undefined) is added into
// v_first's gradient.
Wkv7PrepGrads wkv7_prep_backward_cuda(const Tensor& gy, const Tensor& gstate, const Tensor& r,
                                      const Tensor& w, const Tensor& k, const Tensor& v,
                                      const Tensor& a, const Tensor& b, const Tensor& state_in,
                                      const Wkv7Forward& fwd, const Wkv7AddIn& add,
                                      const Wkv7PrepIn& in, const Tensor& dvf_add);

}  // namespace goose::ops
