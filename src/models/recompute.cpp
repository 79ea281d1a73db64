// Memory-lean differentiable functions of the RWKV-7 blocks: fewer wide tensors kept for the
// backward (see recompute.h).
#include "models/recompute.h"

#include <utility>

#include "goose/autograd.h"
#include "goose/ops/binary.h"
#include "goose/ops/matmul.h"
#include "goose/ops/unary.h"
#include "models/fused.h"

namespace goose::models::recompute {

namespace {

Tensor project_forward(const Tensor& m, const Tensor& w, bool transposed) {
    return transposed ? ops::linear_forward(m, w) : ops::matmul_forward(m, w);
}

// -> {d mix, d w}
std::pair<Tensor, Tensor> project_backward(const Tensor& gy, const Tensor& m, const Tensor& w,
                                           bool transposed, bool need_m, bool need_w) {
    if (transposed) {
        ops::LinearGrads g = ops::linear_backward(gy, m, w, false, need_m, need_w, false);
        return {std::move(g.x), std::move(g.w)};
    }
    ops::MatmulGrads g = ops::matmul_backward(gy, m, w, false, false, need_m, need_w);
    return {std::move(g.a), std::move(g.b)};
}

// bf16 weights train only on CUDA with bf16 activations (as ag::linear).
void check_trainable(const Var& x, const Var& w, const char* op) {
    const bool cuda_bf16 = x.dtype() == DType::bf16 && x.value().device().is_cuda();
    if (w.dtype() == DType::bf16 && !cuda_bf16 && w.requires_grad() && ag::grad_enabled())
        fail("{}: bf16 weights are inference-only: w {} requires grad", op, w.value().desc());
}

}  // namespace

std::vector<Var> mix_project(const Var& x, const Var& prev, const std::vector<Var>& mu,
                             const std::vector<MixProjection>& proj) {
    if (!x.defined()) fail("mix_project: x is undefined");
    for (const MixProjection& p : proj) {
        if (p.mix >= mu.size())
            fail("mix_project: projection of mix {} but only {} mixing vectors", p.mix, mu.size());
        if (!p.w.defined()) fail("mix_project: a projection weight is undefined");
        check_trainable(x, p.w, "mix_project");
    }
    std::vector<Tensor> outs;
    {
        ag::NoGradGuard no_grad;
        const std::vector<Var> mixes = fused::token_mix(x, prev, mu);
        for (const MixProjection& p : proj)
            outs.push_back(project_forward(mixes[p.mix].value(), p.w.value(), p.transposed));
    }  // the mixes die here
    const size_t M = mu.size(), P = proj.size();
    std::vector<Var> inputs{x, prev};
    std::vector<Tensor> muv, wv;
    std::vector<size_t> which;
    std::vector<bool> transposed;
    for (const Var& m : mu) {
        inputs.push_back(m);
        muv.push_back(m.value());
    }
    for (const MixProjection& p : proj) {
        inputs.push_back(p.w);
        wv.push_back(p.w.value());
        which.push_back(p.mix);
        transposed.push_back(p.transposed);
    }
    const Tensor xv = x.value(), pv = prev.defined() ? prev.value() : Tensor();
    return ag::record(
        "mix_project", std::move(inputs), std::move(outs),
        [xv, pv, muv, wv, which, transposed, M, P,
         defer = ag::weight_grads_deferred()](GradIO& io) {
            // The mixes again, on a tape of their own when x, prev or a mixing vector needs a
            // gradient; then the projections' backward by hand and the tape from the mixes.
            Var xi(xv, io.needs(0));
            Var pi = pv.defined() ? Var(pv, io.needs(1)) : Var();
            std::vector<Var> mui;
            auto mu_index = [](size_t m) { return static_cast<int>(2 + m); };
            for (size_t m = 0; m < M; ++m) mui.emplace_back(muv[m], io.needs(mu_index(m)));
            const std::vector<Var> mixes = fused::token_mix(xi, pi, mui);
            std::vector<Tensor> dmix(M);
            for (size_t p = 0; p < P; ++p) {
                const int wi = static_cast<int>(2 + M + p);
                const Tensor& gy = io.gy(static_cast<int>(p));
                const Tensor& mix = mixes[which[p]].value();
                const bool defer_w = defer && io.needs(wi);
                auto [dm, dw] =
                    project_backward(gy, mix, wv[p], transposed[p], true, io.needs(wi) && !defer_w);
                if (defer_w)
                    io.defer(wi, [gy, mix, w = wv[p], t = transposed[p]] {
                        return project_backward(gy, mix, w, t, false, true).second;
                    });
                else
                    io.set(wi, std::move(dw));
                Tensor& acc = dmix[which[p]];
                acc = acc.defined() ? ops::binary_forward(BinaryOp::add, acc, dm) : std::move(dm);
            }
            std::vector<Var> roots;
            std::vector<Tensor> seeds;
            for (size_t m = 0; m < M; ++m)
                if (dmix[m].defined() && mixes[m].requires_grad()) {
                    roots.push_back(mixes[m]);
                    seeds.push_back(std::move(dmix[m]));
                }
            if (roots.empty()) {
                ag::clear_tape();
                return;
            }
            ag::backward(roots, std::move(seeds));
            if (io.needs(0)) io.set(0, xi.grad());
            if (pi.defined() && io.needs(1)) io.set(1, pi.grad());
            for (size_t m = 0; m < M; ++m)
                if (io.needs(mu_index(m))) io.set(mu_index(m), mui[m].grad());
        });
}

Var relu2_mlp(const Var& x, const Var& w_in, const Var& w_out) {
    if (!x.defined() || !w_in.defined() || !w_out.defined())
        fail("relu2_mlp: x, w_in or w_out is undefined");
    check_trainable(x, w_in, "relu2_mlp");
    check_trainable(x, w_out, "relu2_mlp");
    // h = x w_inᵀ lives only until relu(h)² is made
    Tensor a = ops::unary_forward(UnaryOp::relu2, ops::linear_forward(x.value(), w_in.value()));
    Tensor y = ops::linear_forward(a, w_out.value());
    return ag::record(
        "relu2_mlp", {x, w_in, w_out}, std::move(y),
        [xv = x.value(), a, wi = w_in.value(), wo = w_out.value(),
         defer = ag::weight_grads_deferred()](GradIO& io) {
            // One product's backward, its weight gradient handed over when deferred.
            auto backward = [&io, defer](int wi_index, const Tensor& gy, const Tensor& in,
                                         const Tensor& w, bool need_in) {
                const bool need_w = io.needs(wi_index), defer_w = defer && need_w;
                ops::LinearGrads g =
                    ops::linear_backward(gy, in, w, false, need_in, need_w && !defer_w, false);
                if (defer_w)
                    io.defer(wi_index, [gy, in, w] {
                        return ops::linear_backward(gy, in, w, false, false, true, false).w;
                    });
                else if (need_w)
                    io.set(wi_index, std::move(g.w));
                return std::move(g.x);
            };
            const bool need_h = io.needs(0) || io.needs(1);
            Tensor da = backward(2, io.gy(), a, wo, need_h);
            if (!need_h) return;
            // d relu(h)² / dh = 2 relu(h) = 2 √a
            const Tensor dh = ops::unary_backward_from_output(UnaryOp::relu2, da, a);
            da = Tensor();
            Tensor dx = backward(1, dh, xv, wi, io.needs(0));
            if (io.needs(0)) io.set(0, std::move(dx));
        });
}

}  // namespace goose::models::recompute
