// The ICL prompt format at the tensor level (spec §1.2): interleaved x and y tokens, and the
// predictions read back at the x tokens.
#pragma once
#include "goose/core/tensor.h"

namespace goose::icl {

// Tokens (B, 2n, d): x₁, ỹ₁, x₂, ỹ₂, ... with ỹᵢ = [yᵢ, 0, ..., 0] (y in coordinate 0). xs
// (B, n, d) and ys (B, n), float; the result has xs's dtype and is packed.
Tensor interleave(const Tensor& xs, const Tensor& ys);

// The prediction for yᵢ is the output at the xᵢ token: out (B, 2n) -> (B, n), the even positions
// (a packed copy, out's dtype). out (B, 2n, 1) is accepted too.
Tensor predictions_at_x(const Tensor& out);

}  // namespace goose::icl
