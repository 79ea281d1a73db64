// WKV-7 CUDA launchers: picks the kernel per head size and length (the fastest measured in the
// kernel lab, bench/kernels/wkv7/README.md) and the I/O dtype.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "core/cuda/cuda_check.h"
#include "ops/cuda/wkv7_chunked_tc.cuh"
#include "ops/cuda/wkv7_chunked_tc_bwd_a.cuh"
#include "ops/cuda/wkv7_chunked_tc_bwd_b.cuh"
#include "ops/cuda/wkv7_kernels.cuh"
#include "ops/cuda/wkv7_launch.h"

namespace goose::ops::wkv7_cuda {

namespace {
namespace k7 = goose_wkv7;
static_assert(kChunk == k7::kChunk, "snapshot interval must match the kernels");

// The forward's rows per block for N = 64, as measured in the kernel lab (results_run4.txt):
// 64 (a block per head) is fastest at B8 T4096 H12 (96 heads; 1.62 vs 1.75 ms), 32 (two blocks
// per head) at B16 T512 H12 (192 heads; 0.29 vs 0.33 ms).
constexpr int64_t kTwoBlocksPerHeadFrom = 192;

// The two-pass chunked forward (wkv7_chunked_tc.cuh: a pre-pass of the state-independent work of
// every chunk into scratch, its 16 x 16 products on tensor cores, then the state pass on tensor
// cores) for N = 64 from kTwoPassForwardMinT steps, where it was measured faster (kernel lab,
// bench/kernels/wkv7/README.md "Two-pass chunked forward", bf16: 0.93 vs 1.63 ms at B8 T4096 H12,
// 0.91 vs 1.12 at B16 T2048, 0.24 vs 0.29 at B16 T512); the sequential kernels elsewhere. The
// overlapped launch of the two passes is no faster at 96 heads and slower at 192: lab only.
constexpr int kTwoPassForwardMinT = 512;
bool two_pass_forward(const Dims& d) {
    return d.N == 64 && d.T >= kTwoPassForwardMinT;
}

template <class T>
void forward_typed(const Dims& d, const k7::FwdArgs<T>& args, float* scratch, cudaStream_t s) {
    const k7::Dims D{d.B, d.T, d.H, d.N};
    cudaError_t e = cudaErrorInvalidValue;
    switch (d.N) {  // forward <N, C keys per thread, RT rows per thread, R rows per block>
        case 64:  // one block per head, or two (32 value rows each) from 192 heads
            if (two_pass_forward(d))
                e = k7::chunked_tc::launch_forward<T, 4, false, false, true>(D, args, scratch, s);
            else if (d.B * d.H >= kTwoBlocksPerHeadFrom)
                e = k7::launch_forward<T, 64, 8, 2, 32>(D, args, s);
            else
                e = k7::launch_forward<T, 64, 8, 2, 64>(D, args, s);
            break;
        case 32: e = k7::launch_forward<T, 32, 8, 2, 32>(D, args, s); break;
        case 16: e = k7::launch_forward<T, 16, 4, 2, 16>(D, args, s); break;
        default: break;
    }
    GOOSE_CUDA_CHECK(e);
}

// The two-pass chunked backward on tensor cores for N = 64 from kTwoPassBackwardMinT steps:
// phase A (wkv7_chunked_tc_bwd_a.cuh: a parallel pre-pass of the state-independent work of every
// chunk, then the state-gradient pass with the gradient as its own mma accumulator) writes dL/du
// and the state gradient at every chunk exit to scratch; phase B (wkv7_chunked_tc_bwd_b.cuh)
// computes every chunk's input gradients in parallel. Kernel lab (bench/kernels/wkv7/README.md,
// bf16, ms): phase A 0.71 + phase B 0.79 against 3.28 for the sequential backward at B8 T4096
// H12, 0.18 + 0.21 against 0.64 at B16 T512. The sequential kernels elsewhere; the chunked FMA
// backward (bench/kernels/wkv7/wkv7_chunked.cuh, slower than both) is lab only.
constexpr int kTwoPassBackwardMinT = 512;
bool two_pass_backward(const Dims& d) {
    return d.N == 64 && d.T >= kTwoPassBackwardMinT;
}

template <class T>
void backward_typed(const Dims& d, const k7::BwdArgs<T>& args, float* scratch, cudaStream_t s) {
    const k7::Dims D{d.B, d.T, d.H, d.N};
    cudaError_t e = cudaErrorInvalidValue;
    switch (d.N) {  // backward <N, C entries per thread, K keys/values per thread>
        case 64:
            if (two_pass_backward(d)) {
                e = k7::chunked_tc::launch_backward_state<T>(D, args, scratch, s);
                const k7::chunked::BwdScratch w{
                    scratch, scratch + static_cast<size_t>(d.B) * d.T * d.H * d.N};
                if (e == cudaSuccess) e = k7::chunked_tc::launch_backward_grads<T>(D, args, w, s);
            } else {
                e = k7::launch_backward<T, 64, 32, 1>(D, args, s);
            }
            break;
        case 32: e = k7::launch_backward<T, 32, 8, 2>(D, args, s); break;
        case 16: e = k7::launch_backward<T, 16, 4, 2>(D, args, s); break;
        default: break;
    }
    GOOSE_CUDA_CHECK(e);
}

template <class T>
void forward_as(const Dims& d, const void* r, const void* w, const void* k, const void* v,
                const void* a, const void* b, const float* state_in, void* y, float* sa,
                float* snaps, float* state_out, float* scratch, void* stream) {
    const k7::FwdArgs<T> args{static_cast<const T*>(r), static_cast<const T*>(w),
                              static_cast<const T*>(k), static_cast<const T*>(v),
                              static_cast<const T*>(a), static_cast<const T*>(b),
                              state_in, static_cast<T*>(y), sa, snaps, state_out};
    forward_typed<T>(d, args, scratch, static_cast<cudaStream_t>(stream));
}

template <class T>
void backward_as(const Dims& d, const void* r, const void* w, const void* k, const void* v,
                 const void* a, const void* b, const void* dy, const float* state_in,
                 const float* dstate_out, const float* sa, const float* snaps, void* dr,
                 void* dw, void* dk, void* dv, void* da, void* db, float* dstate_in,
                 const void* dr_add, const void* dk_add, const void* dv_add, float* scratch,
                 void* stream) {
    auto c = [](const void* p) { return static_cast<const T*>(p); };
    auto m = [](void* p) { return static_cast<T*>(p); };
    k7::BwdArgs<T> args{c(r),  c(w),  c(k),  c(v),  c(a),      c(b),       c(dy),
                        dstate_out, sa, snaps, m(dr), m(dw), m(dk), m(dv),
                        m(da), m(db), dstate_in, state_in};
    args.dr_add = c(dr_add), args.dk_add = c(dk_add), args.dv_add = c(dv_add);
    backward_typed<T>(d, args, scratch, static_cast<cudaStream_t>(stream));
}
template <class T>
void backward_prep_as(const Dims& d, const void* r, const void* w, const void* k, const void* v,
                      const void* a, const void* b, const void* dy, const float* state_in,
                      const float* dstate_out, const float* sa, const float* snaps, void* dr,
                      void* dw, float* dstate_in, const void* dr_add, const void* dk_add,
                      const void* dv_add, const PrepBwd& p, float* scratch, void* stream) {
    auto c = [](const void* q) { return static_cast<const T*>(q); };
    auto m = [](void* q) { return static_cast<T*>(q); };
    const bool gate = p.vl != nullptr;
    k7::BwdArgs<T> args{c(r),       c(w),  c(k),  c(v),    c(a),    c(b),    c(dy),
                        dstate_out, sa,    snaps, m(dr),   m(dw),   nullptr, gate ? nullptr : m(p.dvr),
                        nullptr,    nullptr, dstate_in, state_in};
    args.dr_add = c(dr_add), args.dk_add = c(dk_add), args.dv_add = c(dv_add);
    k7::chunked_tc::PrepBwdArgs<T> pa;
    pa.al = c(p.al), pa.kr = c(p.kr), pa.vr = c(p.vr), pa.vf = c(p.vf), pa.vl = c(p.vl);
    pa.a0 = c(p.a0), pa.ka = c(p.ka), pa.kk = c(p.kk), pa.v0 = c(p.v0);
    pa.dvf_add = c(p.dvf_add);
    pa.dkr = m(p.dkr), pa.dal = m(p.dal), pa.dvr = m(p.dvr), pa.dvf = m(p.dvf), pa.dvl = m(p.dvl);
    pa.part = p.part;
    const k7::Dims D{d.B, d.T, d.H, d.N};
    const cudaStream_t s = static_cast<cudaStream_t>(stream);
    cudaError_t e = cudaErrorInvalidValue;
    if (prep_fusable(d)) {
        e = k7::chunked_tc::launch_backward_state<T>(D, args, scratch, s);
        const k7::chunked::BwdScratch ws{scratch,
                                         scratch + static_cast<size_t>(d.B) * d.T * d.H * d.N};
        if (e == cudaSuccess) e = k7::chunked_tc::launch_backward_grads_prep<T>(D, args, ws, pa, s);
    }
    GOOSE_CUDA_CHECK(e);
}
}  // namespace

bool prep_fusable(const Dims& d) { return two_pass_backward(d); }
int prep_part_chunks(const Dims& d) { return d.B * ((d.T + kChunk - 1) / kChunk); }

void backward_prep(bool bf16, const Dims& d, const void* r, const void* w, const void* k,
                   const void* v, const void* a, const void* b, const void* dy,
                   const float* state_in, const float* dstate_out, const float* sa,
                   const float* snaps, void* dr, void* dw, float* dstate_in, const void* dr_add,
                   const void* dk_add, const void* dv_add, const PrepBwd& p, float* scratch,
                   void* stream) {
    if (bf16)
        backward_prep_as<__nv_bfloat16>(d, r, w, k, v, a, b, dy, state_in, dstate_out, sa, snaps,
                                        dr, dw, dstate_in, dr_add, dk_add, dv_add, p, scratch,
                                        stream);
    else
        backward_prep_as<float>(d, r, w, k, v, a, b, dy, state_in, dstate_out, sa, snaps, dr, dw,
                                dstate_in, dr_add, dk_add, dv_add, p, scratch, stream);
}

void forward(bool bf16, const Dims& d, const void* r, const void* w, const void* k,
             const void* v, const void* a, const void* b, const float* state_in, void* y,
             float* sa, float* snaps, float* state_out, float* scratch, void* stream) {
    if (bf16)
        forward_as<__nv_bfloat16>(d, r, w, k, v, a, b, state_in, y, sa, snaps, state_out,
                                  scratch, stream);
    else
        forward_as<float>(d, r, w, k, v, a, b, state_in, y, sa, snaps, state_out, scratch,
                          stream);
}

size_t forward_scratch_floats(const Dims& d) {
    return two_pass_forward(d) ? k7::chunked_tc::forward_scratch_floats<false>(
                                     k7::Dims{d.B, d.T, d.H, d.N})
                               : 0;
}

size_t backward_scratch_floats(const Dims& d) {
    return two_pass_backward(d) ? k7::chunked_tc::backward_state_scratch_floats(
                                      k7::Dims{d.B, d.T, d.H, d.N})
                                : 0;
}

bool backward_adds(const Dims& d) { return two_pass_backward(d); }
bool backward_fills_gpu(const Dims& d) { return two_pass_backward(d); }

void backward(bool bf16, const Dims& d, const void* r, const void* w, const void* k,
              const void* v, const void* a, const void* b, const void* dy,
              const float* state_in, const float* dstate_out, const float* sa,
              const float* snaps, void* dr, void* dw, void* dk, void* dv, void* da, void* db,
              float* dstate_in, const void* dr_add, const void* dk_add, const void* dv_add,
              float* scratch, void* stream) {
    if (bf16)
        backward_as<__nv_bfloat16>(d, r, w, k, v, a, b, dy, state_in, dstate_out, sa, snaps, dr,
                                   dw, dk, dv, da, db, dstate_in, dr_add, dk_add, dv_add,
                                   scratch, stream);
    else
        backward_as<float>(d, r, w, k, v, a, b, dy, state_in, dstate_out, sa, snaps, dr, dw, dk,
                           dv, da, db, dstate_in, dr_add, dk_add, dv_add, scratch, stream);
}

}  // namespace goose::ops::wkv7_cuda
