// Differentiable elementwise binary functions with NumPy broadcasting, scale and lerp.
#pragma once
#include "goose/autograd/tape.h"
#include "goose/ops/binary.h"

namespace goose::ag {

Var binary(BinaryOp op, const Var& a, const Var& b);
inline Var add(const Var& a, const Var& b) { return binary(BinaryOp::add, a, b); }
inline Var sub(const Var& a, const Var& b) { return binary(BinaryOp::sub, a, b); }
inline Var mul(const Var& a, const Var& b) { return binary(BinaryOp::mul, a, b); }
inline Var div(const Var& a, const Var& b) { return binary(BinaryOp::div, a, b); }
Var scale(const Var& x, double s);                   // s * x
Var lerp(const Var& a, const Var& b, const Var& w);  // a + (b - a) * w

}  // namespace goose::ag
