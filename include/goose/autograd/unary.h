// Differentiable elementwise unary functions.
#pragma once
#include "goose/autograd/tape.h"
#include "goose/ops/unary.h"

namespace goose::ag {

Var unary(UnaryOp op, const Var& x);
inline Var exp(const Var& x) { return unary(UnaryOp::exp, x); }
inline Var log(const Var& x) { return unary(UnaryOp::log, x); }
inline Var tanh(const Var& x) { return unary(UnaryOp::tanh, x); }
inline Var sigmoid(const Var& x) { return unary(UnaryOp::sigmoid, x); }
inline Var softplus(const Var& x) { return unary(UnaryOp::softplus, x); }
inline Var relu(const Var& x) { return unary(UnaryOp::relu, x); }
inline Var relu2(const Var& x) { return unary(UnaryOp::relu2, x); }
inline Var gelu_tanh(const Var& x) { return unary(UnaryOp::gelu_tanh, x); }
inline Var silu(const Var& x) { return unary(UnaryOp::silu, x); }
inline Var neg(const Var& x) { return unary(UnaryOp::neg, x); }
inline Var sqrt(const Var& x) { return unary(UnaryOp::sqrt, x); }
inline Var square(const Var& x) { return unary(UnaryOp::square, x); }

}  // namespace goose::ag
