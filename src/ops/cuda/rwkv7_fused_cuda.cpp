// Tensor-level glue of the fused RWKV-7 CUDA kernels: checks, allocation, launches.
#include "rwkv7_fused_cuda.h"

#include <algorithm>

#include "goose/core/cuda.h"
#include "goose/ops/binary.h"
#include "rwkv7_fused_kernels.h"

namespace goose::models::fused::cuda_kernels {

namespace {

const void* cp(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }
void* mp(Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

bool is_bf16(const char* op, DType dt) {
    if (dt != DType::f32 && dt != DType::bf16)
        fail("{} on CUDA: tensors must be f32 or bf16, got {}", op, dtype_name(dt));
    return dt == DType::bf16;
}

void check_width(const char* op, int64_t C) {
    if (C > 1024 * kCpt) fail("{} on CUDA: C = {} is over {}", op, C, 1024 * kCpt);
}

// Sums part (chunks, outs.size(), C) over the chunks into the defined tensors of outs (packed,
// C elements each), straight from the partial sums.
void reduce_parts(const Tensor& part, int chunks, int64_t C, const std::vector<Tensor*>& outs,
                  DType dt) {
    PartialOuts o;
    o.n = static_cast<int>(outs.size());
    for (size_t i = 0; i < outs.size(); ++i)
        if (outs[i] && outs[i]->defined()) {
            if (outs[i]->numel() != C || !outs[i]->is_contiguous())
                fail("fused RWKV-7 glue: a parameter gradient must be {} packed elements, got {}",
                     C, outs[i]->desc());
            o.out[i] = outs[i]->raw_data();
        }
    sum_partials_launch(static_cast<const float*>(part.raw_data()), o, chunks,
                        static_cast<int>(C), dt == DType::bf16, cuda::current_stream());
}

}  // namespace

std::vector<Tensor> token_mix_forward(const Tensor& x, const Tensor& prev,
                                      const std::vector<Tensor>& mu) {
    const int64_t B = x.size(0), Tn = x.size(1), C = x.size(2);
    const bool bf16 = is_bf16("token_mix", x.dtype());
    if (mu.size() > static_cast<size_t>(kMaxMix))
        fail("token_mix on CUDA: at most {} mixing vectors, got {}", kMaxMix, mu.size());
    std::vector<Tensor> outs;
    MixPtrs p;
    p.x = cp(x);
    p.prev = cp(prev);
    p.M = static_cast<int>(mu.size());
    for (size_t m = 0; m < mu.size(); ++m) {
        outs.push_back(Tensor::empty(x.shape(), x.dtype(), x.device()));
        p.mu[m] = cp(mu[m]);
        p.out[m] = mp(outs.back());
    }
    if (x.numel() > 0) token_mix_launch(p, B, Tn, C, false, bf16, cuda::current_stream());
    return outs;
}

TokenMixGrads token_mix_backward(const Tensor& x, const Tensor& prev,
                                 const std::vector<Tensor>& mu, const std::vector<Tensor>& g) {
    std::vector<MixGrad> grads;
    for (size_t m = 0; m < g.size(); ++m) grads.push_back({m, g[m]});
    return cuda_kernels::token_mix_backward(x, prev, mu, grads, true);
}

TokenMixGrads token_mix_backward(const Tensor& x, const Tensor& prev,
                                 const std::vector<Tensor>& mu, const std::vector<MixGrad>& grads,
                                 bool need_x) {
    const int64_t B = x.size(0), Tn = x.size(1), C = x.size(2);
    const bool bf16 = is_bf16("token_mix", x.dtype());
    check_width("token_mix", C);
    const auto M = static_cast<int64_t>(mu.size());
    if (M > kMaxMix) fail("token_mix on CUDA: at most {} mixing vectors, got {}", kMaxMix, M);
    // the gradients grouped by mix, in the given order within a mix
    std::vector<std::vector<Tensor>> by_mix(static_cast<size_t>(M));
    size_t G = 0;
    for (const MixGrad& q : grads) {
        if (q.mix >= mu.size())
            fail("token_mix backward: a gradient of mix {} but only {} mixing vectors", q.mix,
                 mu.size());
        by_mix[q.mix].push_back(q.g.contiguous());
        ++G;
    }
    // over kMaxMixGrads: the mix with the most gradients adds its last two beforehand
    while (G > static_cast<size_t>(kMaxMixGrads)) {
        auto& most = *std::max_element(by_mix.begin(), by_mix.end(),
                                       [](const auto& a, const auto& b) { return a.size() < b.size(); });
        Tensor last = std::move(most.back());
        most.pop_back();
        most.back() = ops::binary_forward(BinaryOp::add, most.back(), last);
        --G;
    }
    TokenMixGrads r;
    if (need_x) r.dx = Tensor::empty(x.shape(), x.dtype(), x.device());
    if (prev.defined()) r.dprev = Tensor::empty(prev.shape(), x.dtype(), x.device());
    for (const Tensor& m : mu) r.dmu.push_back(Tensor::empty(m.shape(), x.dtype(), x.device()));
    MixPtrs p;
    p.x = cp(x);
    p.prev = cp(prev);
    p.M = static_cast<int>(M);
    for (size_t m = 0; m < mu.size(); ++m) {
        p.mu[m] = cp(mu[m]);
        p.g_first[m] = p.G;
        for (const Tensor& g : by_mix[m]) {
            if (g.shape() != x.shape() || g.dtype() != x.dtype() || g.device() != x.device())
                fail("token_mix backward: the gradient of mix {} must be {}{} on {}, got {}", m,
                     dtype_name(x.dtype()), x.shape().str(), x.device().str(), g.desc());
            p.g[p.G++] = cp(g);
        }
    }
    for (int64_t m = M; m <= kMaxMix; ++m) p.g_first[m] = p.G;
    p.dx = mp(r.dx);
    p.dprev = mp(r.dprev);
    if (x.numel() == 0) {
        for (Tensor& t : r.dmu) t.fill_(0.0);
        return r;
    }
    const int max_chunks = token_mix_max_chunks(B * Tn, C, static_cast<int>(M), p.G, bf16);
    Tensor part = Tensor::empty(Shape{max_chunks, M, C}, DType::f32, x.device());
    p.part = static_cast<float*>(part.raw_data());
    const int chunks = token_mix_launch(p, B, Tn, C, true, bf16, cuda::current_stream());
    std::vector<Tensor*> outs;
    for (Tensor& t : r.dmu) outs.push_back(&t);
    reduce_parts(part, chunks, C, outs, x.dtype());
    return r;
}

namespace {
PrepPtrs prep_ptrs(const PrepInputs& in) {
    PrepPtrs p;
    p.wl = cp(in.wl); p.kr = cp(in.kr); p.vr = cp(in.vr); p.al = cp(in.al); p.vl = cp(in.vl);
    p.vf = cp(in.vf); p.w0 = cp(in.w0); p.a0 = cp(in.a0); p.v0 = cp(in.v0); p.kk = cp(in.kk);
    p.ka = cp(in.ka);
    return p;
}
}  // namespace

std::vector<Tensor> rwkv7_prep_forward(const PrepInputs& in, int64_t head_size) {
    const int64_t C = in.kr.size(-1), rows = in.kr.numel() / C;
    const bool bf16 = is_bf16("rwkv7_prep", in.kr.dtype());
    check_width("rwkv7_prep", C);
    const bool gate = in.vl.defined();
    std::vector<Tensor> outs;
    for (int i = 0; i < (gate ? 5 : 4); ++i)
        outs.push_back(Tensor::empty(in.kr.shape(), in.kr.dtype(), in.kr.device()));
    PrepPtrs p = prep_ptrs(in);
    p.w = mp(outs[0]);
    p.k = mp(outs[1]);
    p.aa = mp(outs[2]);
    p.bb = mp(outs[3]);
    p.v = gate ? mp(outs[4]) : nullptr;
    if (rows > 0)
        prep_launch(p, rows, static_cast<int>(C), static_cast<int>(head_size), false, bf16,
                    cuda::current_stream());
    return outs;
}

std::vector<Tensor> rwkv7_prep_backward(const PrepInputs& in, const std::vector<Tensor>& gys,
                                        int64_t head_size, const Tensor& dvf_add) {
    const int64_t C = in.kr.size(-1), rows = in.kr.numel() / C;
    const DType dt = in.kr.dtype();
    const bool bf16 = is_bf16("rwkv7_prep", dt);
    const bool gate = in.vl.defined();
    const Device dev = in.kr.device();
    auto row = [&] { return Tensor::empty(in.kr.shape(), dt, dev); };
    auto vec = [&] { return Tensor::empty(in.w0.shape(), dt, dev); };
    Tensor dkr = row(), dal = row();
    Tensor dvr = gate ? row() : Tensor(), dvl = gate ? row() : Tensor(),
           dvf = gate ? row() : Tensor();
    Tensor dw0 = vec(), da0 = vec(), dv0 = gate ? vec() : Tensor(), dkk = vec(), dka = vec();
    const int Ci = static_cast<int>(C), Ni = static_cast<int>(head_size);
    Tensor part = Tensor::empty(Shape{prep_max_chunks(rows, Ci, Ni, bf16), 5, C}, DType::f32, dev);
    PrepPtrs p = prep_ptrs(in);
    p.gw = cp(gys[0]);
    p.gk = cp(gys[1]);
    p.gaa = cp(gys[2]);
    p.gbb = cp(gys[3]);
    p.gv = gate ? cp(gys[4]) : nullptr;
    p.dkr = mp(dkr);
    p.dvr = mp(dvr);
    p.dal = mp(dal);
    p.dvl = mp(dvl);
    p.dvf = mp(dvf);
    if (gate && dvf_add.defined()) p.dvf_add = cp(dvf_add);
    p.part = static_cast<float*>(part.raw_data());
    if (rows > 0) {
        const int chunks = prep_launch(p, rows, Ci, Ni, true, bf16, cuda::current_stream());
        reduce_parts(part, chunks, C, {&dw0, &da0, gate ? &dv0 : nullptr, &dkk, &dka}, dt);
    }
    // d w_lora is the gradient of w itself.
    return {gys[0], dkr, dvr, dal, dvl, dvf, dw0, da0, dv0, dkk, dka};
}

namespace {
OutPtrs out_ptrs(const OutInputs& in) {
    OutPtrs p;
    p.y = cp(in.y); p.r = cp(in.r); p.k = cp(in.k); p.v = cp(in.v); p.g = cp(in.g);
    p.rk = cp(in.rk); p.lw = cp(in.lw); p.lb = cp(in.lb);
    return p;
}
}  // namespace

Tensor rwkv7_out_forward(const OutInputs& in, double eps) {
    const int64_t C = in.r.size(-1), rows = in.r.numel() / C, N = in.y.size(-1);
    const bool bf16 = is_bf16("rwkv7_out", in.r.dtype());
    check_width("rwkv7_out", C);
    Tensor z = Tensor::empty(in.r.shape(), in.r.dtype(), in.r.device());
    OutPtrs p = out_ptrs(in);
    p.z = mp(z);
    if (rows > 0)
        out_launch(p, rows, static_cast<int>(C), static_cast<int>(N), static_cast<float>(eps),
                   false, bf16, cuda::current_stream());
    return z;
}

std::vector<Tensor> rwkv7_out_backward(const OutInputs& in, const Tensor& gz, double eps) {
    const int64_t C = in.r.size(-1), rows = in.r.numel() / C, N = in.y.size(-1);
    const DType dt = in.r.dtype();
    const bool bf16 = is_bf16("rwkv7_out", dt);
    const Device dev = in.r.device();
    Tensor dy = Tensor::empty(in.y.shape(), dt, dev);
    Tensor dr = Tensor::empty(in.r.shape(), dt, dev), dk = Tensor::empty(in.r.shape(), dt, dev),
           dv = Tensor::empty(in.r.shape(), dt, dev), dg = Tensor::empty(in.r.shape(), dt, dev);
    Tensor drk = Tensor::empty(in.rk.shape(), dt, dev), dlw = Tensor::empty(in.lw.shape(), dt, dev),
           dlb = Tensor::empty(in.lb.shape(), dt, dev);
    const int Ci = static_cast<int>(C), Ni = static_cast<int>(N);
    Tensor part = Tensor::empty(Shape{out_max_chunks(rows, Ci, Ni, bf16), 3, C}, DType::f32, dev);
    OutPtrs p = out_ptrs(in);
    p.gz = cp(gz);
    p.dy = mp(dy);
    p.dr = mp(dr);
    p.dk = mp(dk);
    p.dv = mp(dv);
    p.dg = mp(dg);
    p.part = static_cast<float*>(part.raw_data());
    if (rows > 0) {
        const int chunks = out_launch(p, rows, Ci, Ni, static_cast<float>(eps), true, bf16,
                                      cuda::current_stream());
        reduce_parts(part, chunks, C, {&drk, &dlw, &dlb}, dt);
    }
    return {dy, dr, dk, dv, drk, dlw, dlb, dg};
}

}  // namespace goose::models::fused::cuda_kernels
