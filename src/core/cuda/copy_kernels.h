// Launchers of core's device copy and fill kernels (src/core/cuda/copy_kernels.cu). Raw pointers
// and a plain description of the index space; no CUDA headers.
#pragma once
#include <cstdint>

#include "goose/core/dtype.h"

namespace goose::cuda_detail {

// An index space of up to 5 dims with strides (elements) for the destination and the source.
struct StridedPlan {
    int nd = 0;
    int64_t n[5] = {};
    int64_t ds[5] = {};
    int64_t ss[5] = {};
};

// dst[i] = convert(src[i]) over the plan; dst and src point at element 0 of their views.
void launch_strided_copy(void* dst, DType dst_dtype, const void* src, DType src_dtype,
                         const StridedPlan& plan, int64_t total, void* stream);
// dst[i] = value (converted as the CPU does: through float for bf16/f16) over plan.n / plan.ds.
void launch_fill(void* dst, DType dtype, const StridedPlan& plan, int64_t total, double value,
                 void* stream);

}  // namespace goose::cuda_detail
