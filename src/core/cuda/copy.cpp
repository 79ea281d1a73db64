// Copies that involve a CUDA tensor: device to device (cudaMemcpy for packed same-dtype views,
// else the strided kernel), and host <-> device through packed staging buffers. Host-side dtype
// conversion and strides are done by the CPU copy, device-side ones by the kernel.
#include <cuda_runtime_api.h>

#include <cmath>

#include "core/cuda/copy_kernels.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_internal.h"
#include "core/strided_copy.h"
#include "goose/core/cuda.h"

namespace goose::cuda_detail {

namespace {

cudaStream_t stream() {
    return static_cast<cudaStream_t>(cuda::current_stream());
}

StridedPlan plan_of(const Shape& shape, const Strides& dst, const Strides& src) {
    const detail::CopyPlan p = detail::make_plan(shape, dst, src);
    StridedPlan q;
    q.nd = p.nd;
    for (int i = 0; i < p.nd; ++i) {
        q.n[i] = p.n[i];
        q.ds[i] = p.ds[i];
        q.ss[i] = p.ss[i];
    }
    return q;
}

void check_cuda0(const Tensor& t) {
    if (t.device().is_cuda() && t.device().index != 0)
        fail("copy: {} is on {}, but only cuda:0 is supported", t.desc(), t.device().str());
}

// Both on the device.
void device_copy(const Tensor& dst, const Tensor& src) {
    if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
        GOOSE_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.nbytes(),
                                         cudaMemcpyDeviceToDevice, stream()));
        return;
    }
    launch_strided_copy(dst.raw_data(), dst.dtype(), src.raw_data(), src.dtype(),
                        plan_of(dst.shape(), dst.strides(), src.strides()), dst.numel(), stream());
}

// src on the CPU, dst on the device.
void host_to_device(const Tensor& dst, const Tensor& src) {
    if (cuda::capturing())
        fail("copy: a host-to-device copy into {} cannot be captured in a CUDA graph (copy into "
             "a fixed device buffer before replaying instead)", dst.desc());
    // Packed, in dst's dtype, on the host (converted and gathered by the CPU copy).
    const Tensor host = src.to(dst.dtype());
    // Pageable memcpyAsync returns once the source is staged, so `host` may die right after.
    if (dst.is_contiguous()) {
        GOOSE_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), host.raw_data(), dst.nbytes(),
                                         cudaMemcpyHostToDevice, stream()));
        return;
    }
    const Tensor packed = Tensor::empty(dst.shape(), dst.dtype(), dst.device());
    GOOSE_CUDA_CHECK(cudaMemcpyAsync(packed.raw_data(), host.raw_data(), dst.nbytes(),
                                     cudaMemcpyHostToDevice, stream()));
    device_copy(dst, packed);
}

// src on the device, dst on the CPU. Returns after the data has arrived.
// Reports device-side check failures (cuda::check_device_errors) once the data is there.
void device_to_host(const Tensor& dst, const Tensor& src) {
    if (cuda::capturing())
        fail("copy: a device-to-host copy of {} cannot be captured in a CUDA graph (it waits for "
             "the device; read a fixed buffer after the replay instead)", src.desc());
    const Tensor packed = src.contiguous();  // on the device
    if (dst.is_contiguous() && dst.dtype() == src.dtype()) {
        GOOSE_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), packed.raw_data(), dst.nbytes(),
                                         cudaMemcpyDeviceToHost, stream()));
        GOOSE_CUDA_CHECK(cudaStreamSynchronize(stream()));
        cuda::check_device_errors();
        return;
    }
    const Tensor host = Tensor::empty(src.shape(), src.dtype());
    GOOSE_CUDA_CHECK(cudaMemcpyAsync(host.raw_data(), packed.raw_data(), host.nbytes(),
                                     cudaMemcpyDeviceToHost, stream()));
    GOOSE_CUDA_CHECK(cudaStreamSynchronize(stream()));
    cuda::check_device_errors();
    goose::copy_strided(dst, host);
}

}  // namespace

void copy_strided(const Tensor& dst, const Tensor& src) {
    if (dst.numel() == 0) return;
    check_cuda0(dst);
    check_cuda0(src);
    const bool dc = dst.device().is_cuda(), sc = src.device().is_cuda();
    if (dc && sc)
        device_copy(dst, src);
    else if (dc)
        host_to_device(dst, src);
    else
        device_to_host(dst, src);
}

void fill(const Tensor& t, double value) {
    if (t.numel() == 0) return;
    check_cuda0(t);
    if (value == 0.0 && !std::signbit(value) && t.is_contiguous()) {
        GOOSE_CUDA_CHECK(cudaMemsetAsync(t.raw_data(), 0, t.nbytes(), stream()));
        return;
    }
    launch_fill(t.raw_data(), t.dtype(), plan_of(t.shape(), t.strides(), t.strides()), t.numel(),
                value, stream());
}

}  // namespace goose::cuda_detail
