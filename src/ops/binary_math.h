// Scalar definitions of the binary ops and their partial derivatives, shared by the reference
// (in double) and the fast CPU kernels (in float or double).
#pragma once
#include "goose/ops/binary.h"

namespace goose::binary_math {

template <class T>
inline T forward(BinaryOp op, T a, T b) {
    switch (op) {
        case BinaryOp::add: return a + b;
        case BinaryOp::sub: return a - b;
        case BinaryOp::mul: return a * b;
        case BinaryOp::div: return a / b;
    }
    return a;
}

// d y / d a at (a, b)
template <class T>
inline T d_a(BinaryOp op, T a, T b) {
    switch (op) {
        case BinaryOp::add: case BinaryOp::sub: return T(1);
        case BinaryOp::mul: return b;
        case BinaryOp::div: return T(1) / b;
    }
    return T(0);
}

// d y / d b at (a, b)
template <class T>
inline T d_b(BinaryOp op, T a, T b) {
    switch (op) {
        case BinaryOp::add: return T(1);
        case BinaryOp::sub: return T(-1);
        case BinaryOp::mul: return a;
        case BinaryOp::div: return -a / (b * b);
    }
    return T(0);
}

}  // namespace goose::binary_math
