// Linear, LayerNorm, GroupNorm, Embedding.
#include "goose/nn/layers.h"

#include <cmath>

#include "goose/autograd/matmul.h"
#include "goose/autograd/norm.h"
#include "goose/autograd/sequence.h"

namespace goose::nn {

Linear::Linear(int64_t in, int64_t out, bool has_bias, Rng& rng, DType dtype) {
    if (in < 1 || out < 1) fail("Linear: sizes must be >= 1, got in={} out={}", in, out);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    weight = register_parameter("weight", Tensor::uniform(Shape{out, in}, rng, dtype, -bound, bound));
    if (has_bias)
        bias = register_parameter("bias", Tensor::uniform(Shape{out}, rng, dtype, -bound, bound));
}

Var Linear::forward(const Var& x) const { return ag::linear(x, weight, bias); }

LayerNorm::LayerNorm(int64_t c, double eps_, bool affine, DType dtype) : eps(eps_) {
    if (affine) {
        weight = register_parameter("weight", Tensor::full(Shape{c}, 1.0, dtype));
        bias = register_parameter("bias", Tensor::zeros(Shape{c}, dtype));
    }
}

Var LayerNorm::forward(const Var& x) const { return ag::layer_norm(x, weight, bias, eps); }

GroupNorm::GroupNorm(int groups_, int64_t c, double eps_, bool affine, DType dtype)
    : groups(groups_), eps(eps_) {
    if (groups < 1 || c % groups != 0)
        fail("GroupNorm: {} channels cannot be split into {} groups", c, groups);
    if (affine) {
        weight = register_parameter("weight", Tensor::full(Shape{c}, 1.0, dtype));
        bias = register_parameter("bias", Tensor::zeros(Shape{c}, dtype));
    }
}

Var GroupNorm::forward(const Var& x) const { return ag::group_norm(x, groups, weight, bias, eps); }

Embedding::Embedding(int64_t vocab, int64_t c, Rng& rng, DType dtype) {
    weight = register_parameter("weight", Tensor::randn(Shape{vocab, c}, rng, dtype));
}

Var Embedding::forward(const Tensor& ids) const { return ag::embedding(weight, ids); }

}  // namespace goose::nn
