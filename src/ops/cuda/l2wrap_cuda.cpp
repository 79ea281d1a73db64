// L2Wrap's logit gradient on CUDA: the Tensor-level glue of l2wrap.cu.
#include "ops/cuda/l2wrap_cuda.h"

#include "goose/core/cuda.h"
#include "goose/core/tensor.h"

namespace goose::ag {

Tensor l2wrap_logits_grad_cuda(const Tensor& logits, double gy, double factor) {
    const Tensor x = logits.contiguous();
    const int64_t v = x.size(-1), rows = v > 0 ? x.numel() / v : 0;
    Tensor g = Tensor::zeros(x.shape(), x.dtype(), x.device());
    if (rows == 0) return g;
    if (x.dtype() != DType::f32 && x.dtype() != DType::bf16)
        fail("l2wrap: logits on CUDA must be f32 or bf16, got {}", x.desc());
    const auto scale = static_cast<float>(gy * factor / static_cast<double>(rows));
    l2wrap_grad_launch(x.raw_data(), g.raw_data(), rows, v, scale, x.dtype() == DType::bf16,
                       cuda::current_stream());
    return g;
}

}  // namespace goose::ag
