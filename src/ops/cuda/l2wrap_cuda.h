// L2Wrap's extra logit gradient on CUDA (internal; no CUDA headers): zeros except, in each row,
// scale * max at the row's first maximal logit, scale = gy * factor / rows. f32 and bf16 logits.
#pragma once
#include <cstdint>

namespace goose {
class Tensor;
}

namespace goose::ag {

Tensor l2wrap_logits_grad_cuda(const Tensor& logits, double gy, double factor);

// The kernel's launcher (l2wrap.cu): g must be zeroed; x and g packed (rows, v).
void l2wrap_grad_launch(const void* x, void* g, int64_t rows, int64_t v, float scale, bool bf16,
                        void* stream);

}  // namespace goose::ag
