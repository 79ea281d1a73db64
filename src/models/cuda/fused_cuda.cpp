// Autograd records of the fused RWKV-7 functions on CUDA (kernels: ops/cuda/rwkv7_fused.cu).
#include "models/cuda/fused_cuda.h"

#include "goose/autograd.h"
#include "goose/ops/binary.h"
#include "goose/ops/norm.h"
#include "ops/cuda/ln_mix_cuda.h"
#include "ops/cuda/norm_add_cuda.h"
#include "ops/cuda/rwkv7_fused_cuda.h"
#include "ops/cuda/wkv7_prep_cuda.h"

namespace goose::models::fused {

namespace {

namespace ck = cuda_kernels;

Tensor packed(const Var& v) { return v.defined() ? v.value().contiguous() : Tensor(); }

void check_same(const char* op, const Tensor& t, const Shape& s, DType dt, Device dev,
                const char* what) {
    if (!t.defined() || t.shape() != s || t.dtype() != dt || t.device() != dev)
        fail("{}: {} must be {}{} on {}, got {}", op, what, dtype_name(dt), s.str(), dev.str(),
             t.defined() ? t.desc() : "undefined");
}

// rwkv7_prep's inputs beside k_raw: (B, T, C) ones of `flat`, (1, 1, C) parameters; v_lora,
// v_first and v0 only with the gate (v_lora defined).
void check_prep_inputs(const Var& w_lora, const Var& v_raw, const Var& a_lora, const Var& v_lora,
                       const Var& v_first, const Var& w0, const Var& a0, const Var& v0,
                       const Var& k_k, const Var& k_a, const Shape& flat, DType dt, Device dev) {
    const char* op = "rwkv7_prep";
    const Shape vec{1, 1, flat[2]};
    check_same(op, w_lora.value(), flat, dt, dev, "w_lora");
    check_same(op, v_raw.value(), flat, dt, dev, "v_raw");
    check_same(op, a_lora.value(), flat, dt, dev, "a_lora");
    for (auto [p, what] : {std::pair{&w0, "w0"}, {&a0, "a0"}, {&k_k, "k_k"}, {&k_a, "k_a"}})
        check_same(op, p->value(), vec, dt, dev, what);
    if (v_lora.defined()) {
        check_same(op, v_lora.value(), flat, dt, dev, "v_lora");
        check_same(op, v_first.value(), flat, dt, dev, "v_first");
        check_same(op, v0.value(), vec, dt, dev, "v0");
    }
}

}  // namespace

std::vector<Var> token_mix_cuda(const Var& x, const Var& prev, const std::vector<Var>& mu) {
    const int64_t B = x.size(0), C = x.size(2);
    const DType dt = x.dtype();
    const Device dev = x.value().device();
    if (prev.defined()) check_same("token_mix", prev.value(), Shape{B, C}, dt, dev, "prev");
    std::vector<Tensor> muv;
    for (const Var& w : mu) {
        check_same("token_mix", w.value(), Shape{1, 1, C}, dt, dev, "mu");
        muv.push_back(w.value().contiguous());
    }
    const Tensor xv = x.value().contiguous();
    const Tensor pv = packed(prev);
    std::vector<Tensor> outs = ck::token_mix_forward(xv, pv, muv);
    std::vector<Var> inputs{x, prev};
    for (const Var& w : mu) inputs.push_back(w);
    return ag::record("token_mix", std::move(inputs), std::move(outs), [xv, pv, muv](GradIO& io) {
        std::vector<Tensor> gs;
        for (size_t m = 0; m < muv.size(); ++m) gs.push_back(io.gy(static_cast<int>(m)).contiguous());
        TokenMixGrads g = ck::token_mix_backward(xv, pv, muv, gs);
        if (io.needs(0)) io.set(0, std::move(g.dx));
        if (pv.defined() && io.needs(1)) io.set(1, std::move(g.dprev));
        for (size_t m = 0; m < muv.size(); ++m)
            if (io.needs(2 + static_cast<int>(m))) io.set(2 + static_cast<int>(m), std::move(g.dmu[m]));
    });
}

TokenMixGrads token_mix_backward_cuda(const Tensor& x, const Tensor& prev,
                                      const std::vector<Tensor>& mu,
                                      const std::vector<MixGrad>& grads, bool need_x) {
    const int64_t B = x.size(0), C = x.size(2);
    const DType dt = x.dtype();
    const Device dev = x.device();
    const char* op = "token_mix backward";
    if (prev.defined()) check_same(op, prev, Shape{B, C}, dt, dev, "prev");
    std::vector<Tensor> muv;
    for (const Tensor& w : mu) {
        check_same(op, w, Shape{1, 1, C}, dt, dev, "mu");
        muv.push_back(w.contiguous());
    }
    return ck::token_mix_backward(x.contiguous(), prev.defined() ? prev.contiguous() : Tensor(),
                                  muv, grads, need_x);
}

Rwkv7Prep rwkv7_prep_cuda(const Var& w_lora, const Var& k_raw, const Var& v_raw,
                          const Var& a_lora, const Var& v_lora, const Var& v_first, const Var& w0,
                          const Var& a0, const Var& v0, const Var& k_k, const Var& k_a,
                          int64_t head_size) {
    const int64_t B = k_raw.size(0), Tn = k_raw.size(1), C = k_raw.size(2), N = head_size;
    const bool gate = v_lora.defined();
    const DType dt = k_raw.dtype();
    const Device dev = k_raw.value().device();
    const char* op = "rwkv7_prep";
    if (N < 1 || C % N != 0) fail("rwkv7_prep: C {} is not a multiple of head_size {}", C, N);
    const Shape flat{B, Tn, C};
    check_prep_inputs(w_lora, v_raw, a_lora, v_lora, v_first, w0, a0, v0, k_k, k_a, flat, dt, dev);
    auto in = std::make_shared<ck::PrepInputs>(ck::PrepInputs{
        packed(w_lora), packed(k_raw), packed(v_raw), packed(a_lora),
        gate ? packed(v_lora) : Tensor(), gate ? packed(v_first) : Tensor(), packed(w0),
        packed(a0), gate ? packed(v0) : Tensor(), packed(k_k), packed(k_a)});
    std::vector<Tensor> outs = ck::rwkv7_prep_forward(*in, N);  // w, k, a, b, [v]
    std::vector<Var> inputs{w_lora, k_raw, v_raw, a_lora, v_lora, v_first, w0, a0, v0, k_k, k_a};
    if (!gate) inputs[4] = inputs[5] = inputs[8] = Var();
    std::vector<Var> res =
        ag::record(op, std::move(inputs), std::move(outs), [in, gate, N](GradIO& io) {
            std::vector<Tensor> gys;
            for (int i = 0; i < (gate ? 5 : 4); ++i) gys.push_back(io.gy(i).contiguous());
            // v_first's gradient so far (later layers) is added in by the kernel
            const Tensor& vf_prior = io.prior(5);
            const bool fold = gate && vf_prior.defined() && vf_prior.dtype() == in->vf.dtype() &&
                              vf_prior.is_contiguous() && vf_prior.shape() == in->vf.shape();
            std::vector<Tensor> d =
                ck::rwkv7_prep_backward(*in, gys, N, fold ? vf_prior : Tensor());
            for (int i = 0; i < 11; ++i) {
                Tensor& di = d[static_cast<size_t>(i)];
                if (!di.defined() || !io.needs(i)) continue;
                if (i == 5 && fold)
                    io.set_summed(i, std::move(di));
                else
                    io.set(i, std::move(di));
            }
        });
    Rwkv7Prep p;
    p.w = res[0];
    p.k = res[1];
    p.a = res[2];
    p.b = res[3];
    p.v = gate ? res[4] : v_raw;
    return p;
}

Rwkv7PrepWkv rwkv7_prep_wkv7_cuda(const Var& r, const Var& w_lora, const Var& k_raw,
                                  const Var& v_raw, const Var& a_lora, const Var& v_lora,
                                  const Var& v_first, const Var& w0, const Var& a0, const Var& v0,
                                  const Var& k_k, const Var& k_a, int64_t head_size,
                                  const Var& state_in) {
    if (!r.defined() || r.ndim() != 3 || !k_raw.defined() || r.value().shape() != k_raw.value().shape() ||
        r.dtype() != k_raw.dtype() || head_size < 1 || r.size(2) % head_size != 0)
        return {};
    const int64_t B = k_raw.size(0), Tn = k_raw.size(1), C = k_raw.size(2), N = head_size;
    const Shape flat{B, Tn, C}, heads{B, Tn, C / N, N};
    const Tensor rv = r.value().contiguous().reshape(heads);
    if (r.value().device() != k_raw.value().device() || !ops::wkv7_prep_fusable_cuda(rv))
        return {};
    if (state_in.defined() && state_in.value().shape() != Shape{B, C / N, N, N}) return {};
    const bool gate = v_lora.defined();
    const DType dt = k_raw.dtype();
    const Device dev = k_raw.value().device();
    check_prep_inputs(w_lora, v_raw, a_lora, v_lora, v_first, w0, a0, v0, k_k, k_a, flat, dt, dev);
    // the prep's forward (no record: this one's backward covers it)
    const std::vector<Tensor> po = ck::rwkv7_prep_forward(
        ck::PrepInputs{packed(w_lora), packed(k_raw), packed(v_raw), packed(a_lora),
                       gate ? packed(v_lora) : Tensor(), gate ? packed(v_first) : Tensor(),
                       packed(w0), packed(a0), gate ? packed(v0) : Tensor(), packed(k_k),
                       packed(k_a)},
        N);  // w, k, a, b, [v]
    const Tensor &w = po[0], &k = po[1], &a = po[2], &b = po[3];
    const Tensor v = gate ? po[4] : v_raw.value();
    auto in = std::make_shared<ops::Wkv7PrepIn>(ops::Wkv7PrepIn{
        packed(k_raw), gate ? packed(v_raw) : Tensor(), packed(a_lora),
        gate ? packed(v_lora) : Tensor(), gate ? packed(v_first) : Tensor(), packed(a0),
        gate ? packed(v0) : Tensor(), packed(k_k), packed(k_a)});
    const Tensor wv = w.reshape(heads), kv = k.reshape(heads), vv = v.contiguous().reshape(heads),
                 av = a.reshape(heads), bv = b.reshape(heads);
    const Tensor s_in = state_in.defined() ? state_in.value() : Tensor();
    auto fwd = std::make_shared<ops::Wkv7Forward>(ops::wkv7_forward(rv, wv, kv, vv, av, bv, s_in));
    std::vector<Tensor> outs{fwd->y, fwd->state, k};
    if (gate) outs.push_back(v);
    // inputs: 0 r, 1 w_lora, 2 k_raw, 3 v_raw, 4 a_lora, 5 v_lora, 6 v_first, 7 w0, 8 a0, 9 v0,
    // 10 k_k, 11 k_a, 12 state_in; outputs: y, state, k, [v]
    std::vector<Var> inputs{r,  w_lora, k_raw, v_raw, a_lora, v_lora, v_first,
                            w0, a0,     v0,    k_k,   k_a,    state_in};
    if (!gate) inputs[5] = inputs[6] = inputs[9] = Var();
    std::vector<Var> res = ag::record(
        "rwkv7_prep_wkv7", std::move(inputs), std::move(outs),
        [in, fwd, rv, wv, kv, vv, av, bv, s_in, gate, flat, heads](GradIO& io) {
            const DType dt = rv.dtype();
            auto prior = [&](int i) {
                const Tensor& p = io.prior(i);
                return p.defined() && p.dtype() == dt && p.numel() == rv.numel()
                           ? p.contiguous().reshape(heads)
                           : Tensor();
            };
            auto grad_of = [&](int i) { return io.gy(i).contiguous().reshape(heads); };
            // r's, k's and v's gradients from rwkv7_out (and, without the gate, v_raw's from
            // the later layers' v_first) are added in by the kernel
            const ops::Wkv7AddIn add{prior(0), grad_of(2), gate ? grad_of(3) : prior(3)};
            const Tensor& vf_prior = io.prior(6);
            const bool fold = gate && vf_prior.defined() && vf_prior.dtype() == dt &&
                              vf_prior.is_contiguous() && vf_prior.shape() == in->vf.shape();
            // The two-pass backward fills the GPU: deferred weight gradients wait for the time
            // mix's projections (recompute::mix_project), not beside it.
            const ops::Wkv7PrepGrads g =
                ops::wkv7_prep_backward_cuda(io.gy(0), io.gy(1), rv, wv, kv, vv, av, bv, s_in,
                                             *fwd, add, *in, fold ? vf_prior : Tensor());
            Tensor ds[] = {g.r.reshape(flat), g.w.reshape(flat), g.dkr, g.dvr, g.dal, g.dvl,
                           g.dvf, g.dw0, g.da0, g.dv0, g.dkk, g.dka, g.state};
            const bool summed[] = {add.r.defined(), false, false, !gate && add.v.defined(),
                                   false, false, fold, false, false, false, false, false, false};
            for (int i = 0; i < 13; ++i) {
                Tensor& di = ds[i];
                if (!di.defined() || !io.needs(i)) continue;
                if (summed[i])
                    io.set_summed(i, std::move(di));
                else
                    io.set(i, std::move(di));
            }
        });
    return {res[0], res[1], res[2], gate ? res[3] : v_raw};
}

Var rwkv7_out_cuda(const Var& y, const Var& r, const Var& k, const Var& v, const Var& r_k,
                   const Var& ln_w, const Var& ln_b, const Var& g, double eps) {
    const int64_t B = r.size(0), Tn = r.size(1), C = r.size(2), H = y.size(2), N = y.size(3);
    const DType dt = r.dtype();
    const Device dev = r.value().device();
    const char* op = "rwkv7_out";
    const Shape flat{B, Tn, C}, heads{B, Tn, H, N};
    if (H * N != C) fail("rwkv7_out: y {} does not match r {}", y.value().desc(), r.value().desc());
    check_same(op, y.value(), heads, dt, dev, "y");
    check_same(op, k.value(), flat, dt, dev, "k");
    check_same(op, v.value(), flat, dt, dev, "v");
    check_same(op, g.value(), flat, dt, dev, "g");
    check_same(op, r_k.value(), Shape{H, N}, dt, dev, "r_k");
    check_same(op, ln_w.value(), Shape{C}, dt, dev, "ln_w");
    check_same(op, ln_b.value(), Shape{C}, dt, dev, "ln_b");
    auto in = std::make_shared<ck::OutInputs>(ck::OutInputs{packed(y), packed(r), packed(k),
                                                            packed(v), packed(g), packed(r_k),
                                                            packed(ln_w), packed(ln_b)});
    Tensor z = ck::rwkv7_out_forward(*in, eps);
    // inputs: 0 y, 1 r, 2 k, 3 v, 4 r_k, 5 ln_w, 6 ln_b, 7 g
    return ag::record(op, {y, r, k, v, r_k, ln_w, ln_b, g}, std::move(z), [in, eps](GradIO& io) {
        std::vector<Tensor> d = ck::rwkv7_out_backward(*in, io.gy().contiguous(), eps);
        for (int i = 0; i < 8; ++i)
            if (io.needs(i)) io.set(i, std::move(d[static_cast<size_t>(i)]));
    });
}

AddNorm add_layer_norm_cuda(const Var& x, const Var& a, const Var& w, const Var& b, double eps) {
    const int64_t C = x.value().size(-1);
    const Tensor wv = w.defined() ? w.value() : Tensor(), bv = b.defined() ? b.value() : Tensor();
    if (a.value().device() != x.value().device() || (wv.defined() && wv.shape() != Shape{C}) ||
        (bv.defined() && bv.shape() != Shape{C}) ||
        (wv.defined() && wv.dtype() != x.dtype()) || (bv.defined() && bv.dtype() != x.dtype()))
        return {};
    ops::AddNormForward f;
    if (!ops::add_layer_norm_forward_cuda(x.value(), a.value(), wv, bv, eps, f)) return {};
    std::vector<Var> inputs{x, a};
    int iw = -1, ib = -1;
    if (w.defined()) {
        iw = static_cast<int>(inputs.size());
        inputs.push_back(w);
    }
    if (b.defined()) {
        ib = static_cast<int>(inputs.size());
        inputs.push_back(b);
    }
    const Tensor sum = f.sum;
    std::vector<Var> outs = ag::record(
        "add_layer_norm", std::move(inputs), std::vector<Tensor>{f.sum, f.y},
        [sum, wv, mean = f.mean, rstd = f.rstd, iw, ib](GradIO& io) {
            const bool need_dw = iw >= 0 && io.needs(iw), need_db = ib >= 0 && io.needs(ib);
            ops::NormGrads g;
            if (!ops::layer_norm_backward_res_cuda(io.gy(1), io.gy(0), sum, wv, mean, rstd,
                                                   need_dw, need_db, g)) {
                g = ops::layer_norm_backward(io.gy(1), sum, wv, mean, rstd, need_dw, need_db);
                g.dx = ops::binary_forward(BinaryOp::add, g.dx, io.gy(0));
            }
            io.set(0, g.dx);
            io.set(1, g.dx);  // the tape never writes gradients in place
            if (need_dw) io.set(iw, std::move(g.dw));
            if (need_db) io.set(ib, std::move(g.db));
        });
    return {outs[0], outs[1]};
}

AddNormMix add_layer_norm_mix_cuda(const Var& x, const Var& a, const Var& w, const Var& b,
                                   double eps, const Var& mu, const Var& prev) {
    const Device dev = x.value().device();
    for (const Var* v : {&a, &w, &b, &mu, &prev})
        if (v->defined() && v->value().device() != dev) return {};
    if (!mu.defined() || mu.value().shape() != Shape{1, 1, x.value().size(-1)}) return {};
    const Tensor wv = packed(w), bv = packed(b), muv = packed(mu), pv = packed(prev);
    if ((wv.defined() && wv.ndim() != 1) || (bv.defined() && bv.ndim() != 1)) return {};
    ops::LnMixForward f;
    if (!ops::add_layer_norm_mix_forward_cuda(x.value(), a.value(), wv, bv, muv, pv, eps, f))
        return {};
    // inputs: 0 x, 1 a, 2 w, 3 b, 4 mu, 5 prev (undefined Vars where absent)
    std::vector<Var> outs = ag::record(
        "add_layer_norm_mix", {x, a, w, b, mu, prev}, std::vector<Tensor>{f.sum, f.mixed},
        [sum = f.sum, wv, bv, muv, pv, mean = f.mean, rstd = f.rstd](GradIO& io) {
            ops::LnMixGrads g = ops::add_layer_norm_mix_backward_cuda(
                io.gy(1), io.gy(0), sum, wv, bv, muv, pv, mean, rstd,
                wv.defined() && io.needs(2), bv.defined() && io.needs(3), io.needs(4),
                pv.defined() && io.needs(5));
            io.set(0, g.dsum);
            io.set(1, g.dsum);  // the tape never writes gradients in place
            if (g.dw.defined()) io.set(2, std::move(g.dw));
            if (g.db.defined()) io.set(3, std::move(g.db));
            if (g.dmu.defined()) io.set(4, std::move(g.dmu));
            if (g.dprev.defined()) io.set(5, std::move(g.dprev));
        });
    return {outs[0], outs[1]};
}

}  // namespace goose::models::fused
