// Declarations of the CUDA variants of the elementwise, reduction, softmax, loss, norm,
// sequence, select and attention ops (src/ops/cuda/*.cu). No CUDA headers: the front ends
// include this under GOOSE_CUDA. Arguments are checked by the front ends; tensors are on one
// CUDA device, f32, f64 or bf16 (bf16 computes in f32), any strides.
#pragma once
#include <array>
#include <span>
#include <utility>

#include "goose/ops/binary.h"
#include "goose/ops/loss.h"
#include "goose/ops/norm.h"
#include "goose/ops/reduce.h"
#include "goose/ops/sequence.h"
#include "goose/ops/attention.h"
#include "goose/ops/unary.h"

namespace goose::ops {

// binary family
Tensor binary_forward_cuda(BinaryOp op, const Tensor& a, const Tensor& b);
std::array<Tensor, 2> binary_backward_cuda(BinaryOp op, const Tensor& gy, const Tensor& a,
                                           const Tensor& b, bool need_a, bool need_b);
Tensor scale_forward_cuda(const Tensor& x, double s);
Tensor lerp_forward_cuda(const Tensor& a, const Tensor& b, const Tensor& w);
std::array<Tensor, 3> lerp_backward_cuda(const Tensor& gy, const Tensor& a, const Tensor& b,
                                         const Tensor& w, std::array<bool, 3> needs);

// unary family
Tensor unary_forward_cuda(UnaryOp op, const Tensor& x);
Tensor unary_backward_cuda(UnaryOp op, const Tensor& gy, const Tensor& x);
Tensor unary_backward_from_output_cuda(UnaryOp op, const Tensor& gy, const Tensor& y);

// reductions (same contracts as the _cpu variants in reduce.h)
Tensor sum_forward_cuda(const Tensor& x, std::span<const int> axes, double scale);
Tensor sum_backward_cuda(const Tensor& gy, const Shape& x_shape, double scale);
MaxResult max_forward_cuda(const Tensor& x, int axis);
Tensor max_backward_cuda(const Tensor& gy, const Tensor& indices, const Shape& x_shape, int axis);
Tensor sum_to_shape_cuda(const Tensor& g, const Shape& shape);

// softmax family
Tensor softmax_forward_cuda(const Tensor& x);
Tensor softmax_backward_cuda(const Tensor& gy, const Tensor& y);
Tensor log_softmax_forward_cuda(const Tensor& x);
Tensor log_softmax_backward_cuda(const Tensor& gy, const Tensor& y);

// losses (the loss is a 0-d tensor on the device; gy is read on the device, never synced)
CrossEntropyForward cross_entropy_forward_cuda(const Tensor& logits, const Tensor& targets,
                                               int64_t ignore_index);
Tensor cross_entropy_backward_cuda(const Tensor& gy, const Tensor& logits, const Tensor& targets,
                                   const Tensor& lse, int64_t ignore_index);
Tensor mse_forward_cuda(const Tensor& pred, const Tensor& target);
std::pair<Tensor, Tensor> mse_backward_cuda(const Tensor& gy, const Tensor& pred,
                                            const Tensor& target);
Tensor bce_with_logits_forward_cuda(const Tensor& logits, const Tensor& targets);
std::pair<Tensor, Tensor> bce_with_logits_backward_cuda(const Tensor& gy, const Tensor& logits,
                                                        const Tensor& targets);

// norms
NormForward layer_norm_forward_cuda(const Tensor& x, const Tensor& w, const Tensor& b,
                                    double eps);
NormGrads layer_norm_backward_cuda(const Tensor& gy, const Tensor& x, const Tensor& w,
                                   const Tensor& mean, const Tensor& rstd, bool need_dw,
                                   bool need_db);
NormForward group_norm_forward_cuda(const Tensor& x, int groups, const Tensor& w,
                                    const Tensor& b, double eps);
NormGrads group_norm_backward_cuda(const Tensor& gy, const Tensor& x, int groups,
                                   const Tensor& w, const Tensor& mean, const Tensor& rstd,
                                   bool need_dw, bool need_db);
Tensor l2_normalize_forward_cuda(const Tensor& x, double eps);
Tensor l2_normalize_backward_cuda(const Tensor& gy, const Tensor& x, double eps);

// sequence ops (ids are checked against [0, V) here, on a host copy, unless the stream is
// being captured into a CUDA graph)
Tensor embedding_forward_cuda(const Tensor& weight, const Tensor& ids);
Tensor embedding_backward_cuda(const Tensor& gy, const Tensor& ids, int64_t vocab);
Tensor token_shift_forward_cuda(const Tensor& x, const Tensor& prev);
TokenShiftGrads token_shift_backward_cuda(const Tensor& gy, bool want_prev);

// selection
Tensor where_forward_cuda(const Tensor& cond, const Tensor& a, const Tensor& b);
std::array<Tensor, 2> where_backward_cuda(const Tensor& gy, const Tensor& cond,
                                          const Shape& a_shape, const Shape& b_shape,
                                          bool need_a, bool need_b);
Tensor masked_fill_forward_cuda(const Tensor& x, const Tensor& mask, double value);

// causal attention
AttentionOut attention_forward_cuda(const Tensor& q, const Tensor& k, const Tensor& v,
                                    double scale);
AttentionGrads attention_backward_cuda(const Tensor& gy, const Tensor& q, const Tensor& k,
                                       const Tensor& v, const Tensor& y, const Tensor& lse,
                                       double scale, bool need_q, bool need_k, bool need_v);

}  // namespace goose::ops
