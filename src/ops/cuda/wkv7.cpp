// CUDA WKV-7: what only this backend checks (dtype f32 or bf16, head size <= 64), packed and
// aligned device inputs, device outputs, then the kernels of wkv7_launch.cu (head sizes 16, 32,
// 64; other sizes up to 64 run zero-padded to the next one, which is exact: padded keys and
// values stay zero in the state and add nothing). The state is f32 inside; a bf16 state in is
// converted and its gradient returned in bf16. The forward saves what its backward needs in
// Wkv7Forward (f32 state after every 16-step chunk, f32 sa per step).
#include <cstdint>

#include "goose/core/cuda.h"
#include "goose/core/error.h"
#include "goose/ops/wkv7.h"
#include "ops/cuda/column_sums.h"
#include "ops/cuda/wkv7_launch.h"
#include "ops/cuda/wkv7_prep_cuda.h"

namespace goose::ops {

namespace {
constexpr const char* kOp = "wkv7";

wkv7_cuda::Dims dims_of(const Tensor& r) {
    return {static_cast<int>(r.size(0)), static_cast<int>(r.size(1)),
            static_cast<int>(r.size(2)), static_cast<int>(r.size(3))};
}

constexpr int64_t kMaxHead = 64;

void check_cuda_inputs(const Tensor& r) {
    if (r.dtype() != DType::f32 && r.dtype() != DType::bf16)
        fail("{}: on CUDA the inputs must be f32 or bf16, got r {}", kOp, r.desc());
    if (r.size(3) > kMaxHead)
        fail("{}: on CUDA the head size N must be at most {} (kernels for 16, 32, 64), got N = {} "
             "(r {})", kOp, kMaxHead, r.size(3), r.desc());
    for (int d = 0; d < 3; ++d)
        if (r.size(d) > INT32_MAX)
            fail("{}: dimension {} of r {} is too large for the CUDA kernel", kOp, d, r.desc());
}

// A packed copy whose first element is 16-byte aligned (the kernels copy 16-byte pieces).
Tensor packed(const Tensor& t) {
    Tensor c = t.contiguous();
    if (reinterpret_cast<uintptr_t>(c.raw_data()) % 16 != 0) c = t.clone();
    return c;
}

// packed(t) for a defined t; its device address or null.
Tensor packed_or_null(const Tensor& t) { return t.defined() ? packed(t) : t; }
const void* raw_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

// Device address of an f32 tensor (data<float>() is for CPU tensors only).
float* f32_ptr(const Tensor& t) { return static_cast<float*>(t.raw_data()); }
const float* f32_or_null(const Tensor& t) { return t.defined() ? f32_ptr(t) : nullptr; }

// Device scratch of `floats` f32, undefined when a kernel needs none (the caching allocator makes
// it free in steady state); its pointer or null.
Tensor f32_scratch(size_t floats, Device dev) {
    return floats > 0 ? Tensor::empty(Shape{static_cast<int64_t>(floats)}, DType::f32, dev)
                      : Tensor();
}
float* scratch_ptr(const Tensor& t) { return t.defined() ? f32_ptr(t) : nullptr; }

// The state (or its gradient) as packed f32 (a bf16 state is converted).
Tensor packed_state(const Tensor& s, const char* what) {
    if (!s.defined()) return s;
    if (s.dtype() != DType::f32 && s.dtype() != DType::bf16)
        fail("{}: on CUDA {} must be f32 (or bf16), got {}", kOp, what, s.desc());
    return packed(s.dtype() == DType::f32 ? s : s.to(DType::f32));
}

// The head size the kernels run: N itself or the next of 16, 32, 64.
int64_t kernel_head(int64_t n) {
    return n <= 16 ? 16 : n <= 32 ? 32 : 64;
}

// x zero-padded in its last `dims` dimensions (1: (B, T, H, N); 2: (B, H, N, N)) to np.
Tensor pad_head(const Tensor& x, int64_t np, int dims) {
    if (!x.defined()) return x;
    Shape s = x.shape();
    for (int d = 0; d < dims; ++d) s[s.ndim() - 1 - d] = np;
    Tensor z = Tensor::zeros(s, x.dtype(), x.device());
    Tensor view = z;
    for (int d = 0; d < dims; ++d) {
        const int axis = s.ndim() - 1 - d;
        view = view.slice(axis, 0, x.size(axis));
    }
    view.copy_(x);
    return z;
}

// The first n entries of the last `dims` dimensions, packed.
Tensor unpad_head(const Tensor& x, int64_t n, int dims) {
    Tensor view = x;
    for (int d = 0; d < dims; ++d) view = view.slice(x.ndim() - 1 - d, 0, n);
    return view.contiguous();
}

// Whether f holds what this backend's forward saves for inputs shaped like r.
bool saved_by_cuda(const Wkv7Forward& f, const Tensor& r) {
    const int64_t chunks = (r.size(1) + wkv7_cuda::kChunk - 1) / wkv7_cuda::kChunk;
    const Shape snaps{r.size(0), r.size(2), chunks, r.size(3), r.size(3)};
    return f.snapshots.defined() && f.sa.defined() && f.snapshots.device().is_cuda() &&
           f.sa.device().is_cuda() && f.snapshots.dtype() == DType::f32 &&
           f.sa.dtype() == DType::f32 && f.snapshots.shape() == snaps &&
           f.sa.shape() == r.shape() && f.snapshots.is_contiguous() && f.sa.is_contiguous();
}

// What a backward (head size already the kernel's) reads of the forward: `fwd` when this
// backend's forward saved it, else the forward run again.
Wkv7Forward saved_forward(const Wkv7Forward& fwd, const Tensor& r, const Tensor& w,
                          const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                          const Tensor& state_in) {
    return saved_by_cuda(fwd, r) ? fwd : wkv7_forward_cuda(r, w, k, v, a, b, state_in);
}
}  // namespace

int wkv7_backward_free_sms_cuda(const Shape& s) {
    const int64_t N = s[3], np = kernel_head(N);
    const wkv7_cuda::Dims D{static_cast<int>(s[0]), static_cast<int>(s[1]),
                            static_cast<int>(s[2]), static_cast<int>(np)};
    if (wkv7_cuda::backward_fills_gpu(D)) return 0;
    const int64_t heads = s[0] * s[2], sms = cuda::multiprocessor_count();
    // SMs without a block (heads < SMs) or with one block instead of two
    return static_cast<int>(heads < sms ? sms - heads : heads < 2 * sms ? 2 * sms - heads : 0);
}

Wkv7Forward wkv7_forward_cuda(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                              const Tensor& a, const Tensor& b, const Tensor& state_in) {
    check_cuda_inputs(r);
    const int64_t N = r.size(3), np = kernel_head(N);
    if (np != N) {  // saved data stay padded: the backward pads the same way
        Wkv7Forward f = wkv7_forward_cuda(pad_head(r, np, 1), pad_head(w, np, 1),
                                          pad_head(k, np, 1), pad_head(v, np, 1),
                                          pad_head(a, np, 1), pad_head(b, np, 1),
                                          pad_head(packed_state(state_in, "state_in"), np, 2));
        f.y = unpad_head(f.y, N, 1);
        f.state = unpad_head(f.state, N, 2);
        return f;
    }
    const wkv7_cuda::Dims D = dims_of(r);
    const int64_t chunks = (D.T + wkv7_cuda::kChunk - 1) / wkv7_cuda::kChunk;
    const Device dev = r.device();
    const Tensor rc = packed(r), wc = packed(w), kc = packed(k), vc = packed(v), ac = packed(a),
                 bc = packed(b), sc = packed_state(state_in, "state_in");
    Wkv7Forward out;
    out.y = Tensor::empty(r.shape(), r.dtype(), dev);                          // (B, T, H, N)
    out.state = Tensor::empty(Shape{D.B, D.H, D.N, D.N}, DType::f32, dev);     // (B, H, N, N)
    out.snapshots =
        Tensor::empty(Shape{D.B, D.H, chunks, D.N, D.N}, DType::f32, dev);    // (B, H, C, N, N)
    out.sa = Tensor::empty(r.shape(), DType::f32, dev);                       // (B, T, H, N)
    // scratch of the two-pass chunked forward (the state-independent operands of every chunk)
    const Tensor scratch = f32_scratch(wkv7_cuda::forward_scratch_floats(D), dev);
    wkv7_cuda::forward(r.dtype() == DType::bf16, D, rc.raw_data(), wc.raw_data(), kc.raw_data(),
                       vc.raw_data(), ac.raw_data(), bc.raw_data(), f32_or_null(sc),
                       out.y.raw_data(), f32_ptr(out.sa), f32_ptr(out.snapshots),
                       f32_ptr(out.state), scratch_ptr(scratch), cuda::current_stream());
    return out;
}

Wkv7Grads wkv7_backward_cuda(const Tensor& gy, const Tensor& gstate, const Tensor& r,
                             const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a,
                             const Tensor& b, const Tensor& state_in, const Wkv7Forward& fwd,
                             const Wkv7AddIn& add) {
    check_cuda_inputs(r);
    const int64_t N = r.size(3), np = kernel_head(N);
    if (np != N) {
        const Wkv7Forward padded_fwd{Tensor(), Tensor(), fwd.snapshots, fwd.sa};
        Wkv7Grads g = wkv7_backward_cuda(
            pad_head(gy, np, 1), pad_head(packed_state(gstate, "the state gradient"), np, 2),
            pad_head(r, np, 1), pad_head(w, np, 1), pad_head(k, np, 1), pad_head(v, np, 1),
            pad_head(a, np, 1), pad_head(b, np, 1),
            pad_head(packed_state(state_in, "state_in"), np, 2), padded_fwd);
        for (Tensor* x : {&g.r, &g.w, &g.k, &g.v, &g.a, &g.b}) *x = unpad_head(*x, N, 1);
        g.state = unpad_head(g.state, N, 2);
        if (state_in.defined() && state_in.dtype() != DType::f32)
            g.state = g.state.to(state_in.dtype());
        wkv7_add_in(g, add);
        return g;
    }
    const wkv7_cuda::Dims D = dims_of(r);
    const Wkv7Forward f = saved_forward(fwd, r, w, k, v, a, b, state_in);
    const Device dev = r.device();
    const Tensor rc = packed(r), wc = packed(w), kc = packed(k), vc = packed(v), ac = packed(a),
                 bc = packed(b), gyc = packed(gy), gsc = packed_state(gstate, "the state gradient"),
                 sc = packed_state(state_in, "state_in");
    // scratch of the chunked backward (per-step dL/du and the state gradient at every chunk
    // exit)
    const Tensor scratch = f32_scratch(wkv7_cuda::backward_scratch_floats(D), dev);
    Wkv7Grads g;
    for (Tensor* x : {&g.r, &g.w, &g.k, &g.v, &g.a, &g.b})
        *x = Tensor::empty(r.shape(), r.dtype(), dev);                        // (B, T, H, N)
    g.state = Tensor::empty(Shape{D.B, D.H, D.N, D.N}, DType::f32, dev);      // (B, H, N, N)
    // gradients gathered elsewhere, added in by the kernel where it can
    const bool adds = wkv7_cuda::backward_adds(D);
    const Tensor ar = adds ? packed_or_null(add.r) : Tensor(),
                 ak = adds ? packed_or_null(add.k) : Tensor(),
                 av = adds ? packed_or_null(add.v) : Tensor();
    wkv7_cuda::backward(r.dtype() == DType::bf16, D, rc.raw_data(), wc.raw_data(), kc.raw_data(),
                        vc.raw_data(), ac.raw_data(), bc.raw_data(), gyc.raw_data(),
                        f32_or_null(sc), f32_or_null(gsc), f32_ptr(f.sa), f32_ptr(f.snapshots),
                        g.r.raw_data(), g.w.raw_data(), g.k.raw_data(), g.v.raw_data(),
                        g.a.raw_data(), g.b.raw_data(), f32_ptr(g.state), raw_or_null(ar),
                        raw_or_null(ak), raw_or_null(av), scratch_ptr(scratch),
                        cuda::current_stream());
    if (state_in.defined() && state_in.dtype() != DType::f32)  // gradient in the input's dtype
        g.state = g.state.to(state_in.dtype());
    if (!adds) wkv7_add_in(g, add);
    return g;
}

bool wkv7_prep_fusable_cuda(const Tensor& r) {
    if (r.ndim() != 4 || !r.device().is_cuda() ||
        (r.dtype() != DType::f32 && r.dtype() != DType::bf16) || r.size(3) != 64)
        return false;
    for (int d = 0; d < 3; ++d)
        if (r.size(d) > INT32_MAX) return false;
    return wkv7_cuda::prep_fusable(dims_of(r));
}

Wkv7PrepGrads wkv7_prep_backward_cuda(const Tensor& gy, const Tensor& gstate, const Tensor& r,
                                      const Tensor& w, const Tensor& k, const Tensor& v,
                                      const Tensor& a, const Tensor& b, const Tensor& state_in,
                                      const Wkv7Forward& fwd, const Wkv7AddIn& add,
                                      const Wkv7PrepIn& in, const Tensor& dvf_add) {
    if (!wkv7_prep_fusable_cuda(r))
        fail("{}: the fused prep backward takes f32 or bf16 heads of 64 from T 512 on CUDA, got "
             "r {}", kOp, r.desc());
    const wkv7_cuda::Dims D = dims_of(r);
    const Wkv7Forward f = saved_forward(fwd, r, w, k, v, a, b, state_in);
    const Device dev = r.device();
    const DType dt = r.dtype();
    const bool gate = in.vl.defined();
    const Tensor rc = packed(r), wc = packed(w), kc = packed(k), vc = packed(v), ac = packed(a),
                 bc = packed(b), gyc = packed(gy), gsc = packed_state(gstate, "the state gradient"),
                 sc = packed_state(state_in, "state_in");
    const Tensor kr = packed(in.kr), al = packed(in.al), a0 = packed(in.a0), ka = packed(in.ka),
                 kk = packed(in.kk), vr = packed_or_null(in.vr), vf = packed_or_null(in.vf),
                 vl = packed_or_null(in.vl), v0 = packed_or_null(in.v0),
                 dva = packed_or_null(dvf_add);
    for (const Tensor* x : {&kr, &al, &vr, &vf, &vl, &dva})
        if (x->defined() && (x->numel() != r.numel() || x->dtype() != dt))
            fail("{}: a prep row tensor must have r's {} elements of {}, got {}", kOp, r.numel(),
                 dtype_name(dt), x->desc());
    for (const Tensor* x : {&a0, &ka, &kk, &v0})
        if (x->defined() && (x->numel() != D.H * D.N || x->dtype() != dt))
            fail("{}: a prep parameter must have {} elements of {}, got {}", kOp, D.H * D.N,
                 dtype_name(dt), x->desc());
    const Tensor scratch = f32_scratch(wkv7_cuda::backward_scratch_floats(D), dev);
    Wkv7PrepGrads g;
    auto rows = [&] { return Tensor::empty(in.kr.shape(), dt, dev); };
    auto vec = [&] { return Tensor::empty(in.a0.shape(), dt, dev); };
    g.r = Tensor::empty(r.shape(), dt, dev);
    g.w = Tensor::empty(r.shape(), dt, dev);
    g.state = Tensor::empty(Shape{D.B, D.H, D.N, D.N}, DType::f32, dev);
    g.dkr = rows(), g.dal = rows(), g.dvr = rows();
    if (gate) g.dvf = rows(), g.dvl = rows(), g.dv0 = vec();
    g.dw0 = vec(), g.da0 = vec(), g.dkk = vec(), g.dka = vec();
    const int parts = wkv7_cuda::prep_part_chunks(D);
    const Tensor part = Tensor::empty(Shape{parts, 5, D.H * D.N}, DType::f32, dev);
    const Tensor ar = packed_or_null(add.r), ak = packed_or_null(add.k), av = packed_or_null(add.v);
    wkv7_cuda::PrepBwd p;
    p.al = al.raw_data(), p.kr = kr.raw_data(), p.vr = raw_or_null(vr), p.vf = raw_or_null(vf);
    p.vl = raw_or_null(vl), p.a0 = a0.raw_data(), p.ka = ka.raw_data(), p.kk = kk.raw_data();
    p.v0 = raw_or_null(v0), p.dvf_add = raw_or_null(dva);
    p.dkr = g.dkr.raw_data(), p.dal = g.dal.raw_data(), p.dvr = g.dvr.raw_data();
    p.dvf = gate ? g.dvf.raw_data() : nullptr, p.dvl = gate ? g.dvl.raw_data() : nullptr;
    p.part = f32_ptr(part);
    void* stream = cuda::current_stream();
    wkv7_cuda::backward_prep(dt == DType::bf16, D, rc.raw_data(), wc.raw_data(), kc.raw_data(),
                             vc.raw_data(), ac.raw_data(), bc.raw_data(), gyc.raw_data(),
                             f32_or_null(sc), f32_or_null(gsc), f32_ptr(f.sa),
                             f32_ptr(f.snapshots), g.r.raw_data(), g.w.raw_data(),
                             f32_ptr(g.state), raw_or_null(ar), raw_or_null(ak), raw_or_null(av),
                             p, scratch_ptr(scratch), stream);
    cuda_column_sums::PartialOuts o;
    o.n = 5;
    Tensor* outs[] = {&g.dw0, &g.da0, &g.dv0, &g.dkk, &g.dka};
    for (int i = 0; i < 5; ++i) o.out[i] = outs[i]->defined() ? outs[i]->raw_data() : nullptr;
    cuda_column_sums::sum_partials_launch(f32_ptr(part), o, parts, static_cast<int>(D.H * D.N),
                                          dt == DType::bf16, stream);
    if (state_in.defined() && state_in.dtype() != DType::f32)  // gradient in the input's dtype
        g.state = g.state.to(state_in.dtype());
    return g;
}

}  // namespace goose::ops
