// CUDA fused head + cross-entropy (host glue): buffers from the caching allocator, then the
// chunked kernels of ops/cuda/head_ce_kernel.h; an optional read-back of the target check (a
// device-side check while a CUDA graph is captured).
#include <stdexcept>
#include <string>

#include "core/cuda/device_check.h"
#include "goose/core/cuda.h"
#include "ops/cuda/head_ce_cuda.h"
#include "ops/cuda/head_ce_kernel.h"

namespace goose::ops {

HeadCrossEntropyResult head_cross_entropy_cuda(const Tensor& x, const Tensor& w,
                                               const Tensor& targets,
                                               const HeadCrossEntropyOptions& opt) {
    const Device dev = x.device();
    const int64_t c = x.size(-1), v = w.size(0), rows = x.numel() / std::max<int64_t>(c, 1);
    const Tensor xc = x.contiguous(), wc = w.contiguous();
    const Tensor tc = targets.device() == dev ? targets.contiguous() : targets.to(dev);
    head_ce_cuda::HeadCeArgs a;
    a.rows = rows, a.dim = c, a.vocab = v;
    a.type = x.dtype() == DType::bf16 ? gemm_lt::GemmType::bf16 : gemm_lt::GemmType::f32;
    a.x = xc.raw_data(), a.w = wc.raw_data();
    a.targets = tc.raw_data(), a.targets_i64 = tc.dtype() == DType::i64;
    a.ignore_index = opt.ignore_index, a.l2wrap = opt.l2wrap, a.gy = opt.gy;
    a.chunk_rows = opt.chunk_rows, a.row_cache = opt.row_cache;
    HeadCrossEntropyResult r;
    r.loss = Tensor::empty(Shape{}, DType::f32, dev);
    r.lse = Tensor::empty(targets.shape(), DType::f32, dev);
    Tensor status = Tensor::empty(Shape{2}, DType::i32, dev);
    if (opt.need_dx) r.dx = Tensor::empty(x.shape(), x.dtype(), dev);
    if (opt.need_dw) r.dw = Tensor::empty(w.shape(), DType::f32, dev);
    a.dx = opt.need_dx ? r.dx.raw_data() : nullptr;
    a.dw = opt.need_dw ? static_cast<float*>(r.dw.raw_data()) : nullptr;
    const Tensor ws = Tensor::empty(Shape{static_cast<int64_t>(head_ce_cuda::workspace_bytes(a))},
                                    DType::u8, dev);
    a.workspace = ws.raw_data();
    a.loss = static_cast<float*>(r.loss.raw_data());
    a.row_lse = static_cast<float*>(r.lse.raw_data());
    a.status = static_cast<int32_t*>(status.raw_data());
    try {
        head_ce_cuda::head_ce(a, cuda::current_stream());
    } catch (const std::runtime_error& e) {
        fail("head_cross_entropy (cuda): {}", e.what());
    }
    if (opt.check_targets && cuda::capturing()) {  // no read-back inside a CUDA graph
        cuda_detail::check_indices_on_device(
            tc, v, opt.ignore_index, "head_cross_entropy", "target",
            " and is not ignore_index (" + std::to_string(opt.ignore_index) + ")");
    } else if (opt.check_targets) {
        const Tensor st = status.to(Device::cpu());  // synchronises
        const int32_t bad = static_cast<const int32_t*>(st.raw_data())[1];
        if (bad > 0) {
            const int64_t row = bad - 1;
            const double t =
                tc.reshape(Shape{rows}).slice(0, row, row + 1).to(Device::cpu()).to_vector()[0];
            fail(
                "head_cross_entropy: target {} at position {} is outside [0, {}) and is not "
                "ignore_index ({})",
                static_cast<int64_t>(t), row, v, opt.ignore_index);
        }
    }
    return r;
}

}  // namespace goose::ops
