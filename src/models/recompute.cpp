// Memory-lean differentiable functions of the RWKV-7 blocks: fewer wide tensors kept for the
// backward (see recompute.h).
#include "models/recompute.h"

#include <functional>
#include <utility>

#include "goose/autograd.h"
#include "goose/core/cuda.h"
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

bool is_chain(const MixProjection& p) { return p.up.defined(); }

// The projections each concurrent branch runs (cuda::run_parallel): with LoRA chains on CUDA the
// plain projections (the (C, C) Linears: each fills the GPU) on the current stream and the
// chains (narrow, memory-bound GEMMs and their activations: at L12 C768 B16 T512 one layer's
// four chains take 218 us alone, and 71 us less beside the Linears; bench/kernels/gemm/NOTES.md)
// one per side stream (four: with three, two chains shared one and the Linears waited for them,
// 0.45 ms forward and 0.60 ms backward per step by kernel trace; four side streams: B16 T512
// 284.8k -> 286.4k tokens/s, five or seven no better); otherwise one branch with all of them.
std::vector<std::vector<size_t>> projection_branches(const std::vector<MixProjection>& proj,
                                                     bool cuda) {
    const size_t side = cuda::kMaxParallelBranches - 1;
    std::vector<std::vector<size_t>> br(cuda ? 1 + side : 1);
    size_t chains = 0;
    for (size_t p = 0; p < proj.size(); ++p)
        br[cuda && is_chain(proj[p]) ? 1 + chains++ % side : 0].push_back(p);
    while (br.size() > 1 && br.back().empty()) br.pop_back();
    return br;
}

// f(p) for every projection, branch by branch (concurrently on CUDA). In a backward pass the
// main branch then also runs the weight gradients deferred so far (ag::DeferWeightGrads), so it
// does not sit idle while the chains finish on the side streams. In a bf16 forward
// (`narrow_main`) the main branch's GEMMs are planned for three quarters of the SMs
// (cuda::SmTarget), so the chains keep some while the Linears run (they finished 30 us a layer
// after them: L12 C768 B16 T512 288.8k -> 290.7k tokens/s, B8 T4096 313.6k -> 315.1k at 116 of
// 132 SMs); f32 keeps the plans of the composed ops, so both give the same gradients.
void for_each_projection(const std::vector<std::vector<size_t>>& branches,
                         const std::function<void(size_t)>& f, bool with_deferred = false,
                         bool narrow_main = false) {
    std::vector<std::function<void()>> work;
    const int main_sms =
        branches.size() > 1 && narrow_main ? cuda::multiprocessor_count() * 3 / 4 : 0;
    for (const std::vector<size_t>& b : branches)
        work.emplace_back([&b, &f, sms = work.empty() ? main_sms : 0] {
            const cuda::SmTarget target(sms);
            for (size_t p : b) f(p);
        });
    if (with_deferred)
        ag::run_parallel_with_deferred(work);
    else
        cuda::run_parallel(work);
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
        if (p.act && !is_chain(p)) fail("mix_project: an activation without an up matrix");
        if (is_chain(p) && p.transposed) fail("mix_project: a LoRA chain with a Linear weight");
        check_trainable(x, p.w, "mix_project");
        if (is_chain(p)) check_trainable(x, p.up, "mix_project");
    }
    const size_t M = mu.size(), P = proj.size();
    const auto branches = projection_branches(proj, x.value().device().is_cuda());
    // per chain: the down product h (the activation's input) and act(h) (the up's input)
    std::vector<Tensor> outs(P), hidden(P), activated(P);
    {
        ag::NoGradGuard no_grad;
        const std::vector<Var> mixes = fused::token_mix(x, prev, mu);
        for_each_projection(branches, [&](size_t p) {
            const MixProjection& q = proj[p];
            Tensor y = project_forward(mixes[q.mix].value(), q.w.value(), q.transposed);
            if (!is_chain(q)) {
                outs[p] = std::move(y);
                return;
            }
            activated[p] = q.act ? ops::unary_forward(*q.act, y) : y;
            outs[p] = ops::matmul_forward(activated[p], q.up.value());
            hidden[p] = std::move(y);
        }, /*with_deferred=*/false, /*narrow_main=*/x.dtype() == DType::bf16);
    }  // the mixes die here
    std::vector<Var> inputs{x, prev};
    std::vector<Tensor> muv, wv, upv;
    std::vector<size_t> which;
    std::vector<bool> transposed;
    std::vector<std::optional<UnaryOp>> acts;
    std::vector<int> up_index(P, -1);
    for (const Var& m : mu) {
        inputs.push_back(m);
        muv.push_back(m.value());
    }
    for (const MixProjection& p : proj) {
        inputs.push_back(p.w);
        wv.push_back(p.w.value());
        upv.push_back(is_chain(p) ? p.up.value() : Tensor());
        acts.push_back(p.act);
        which.push_back(p.mix);
        transposed.push_back(p.transposed);
    }
    for (size_t p = 0; p < P; ++p)
        if (is_chain(proj[p])) {
            up_index[p] = static_cast<int>(inputs.size());
            inputs.push_back(proj[p].up);
        }
    const Tensor xv = x.value(), pv = prev.defined() ? prev.value() : Tensor();
    return ag::record(
        "mix_project", std::move(inputs), std::move(outs),
        [xv, pv, muv, wv, upv, hidden, activated, acts, up_index, which, transposed, M, P,
         branches](GradIO& io) {
            // The mixes again (no tape: the weight gradients' GEMMs read them), the projections'
            // backward by hand (the chains' up, activation and down), then token_mix's backward
            // straight from the projections' gradients (two of one mix summed as it reads them).
            auto mu_index = [](size_t m) { return static_cast<int>(2 + m); };
            bool need_mix_grads = io.needs(0) || (pv.defined() && io.needs(1));
            for (size_t m = 0; m < M; ++m) need_mix_grads = need_mix_grads || io.needs(mu_index(m));
            std::vector<Tensor> mixes;
            {
                ag::NoGradGuard no_grad;
                std::vector<Var> mui;
                for (const Tensor& m : muv) mui.emplace_back(m);
                for (const Var& m : fused::token_mix(Var(xv), pv.defined() ? Var(pv) : Var(), mui))
                    mixes.push_back(m.value());
            }
            std::vector<Tensor> dm(P);
            for_each_projection(branches, [&](size_t p) {
                const int wi = static_cast<int>(2 + M + p);
                Tensor gy = io.gy(static_cast<int>(p));
                if (upv[p].defined()) {  // y = act(h) up: d act(h), d up, then dh
                    const int ui = up_index[p];
                    ops::MatmulGrads g = ops::matmul_backward(gy, activated[p], upv[p], false,
                                                              false, true, io.needs(ui));
                    io.set(ui, std::move(g.b));
                    gy = acts[p] ? ops::unary_backward(*acts[p], g.a, hidden[p]) : std::move(g.a);
                }
                // This entry runs the deferred weight gradients (for_each_projection), so its own
                // are computed here, not deferred.
                const Tensor& mix = mixes[which[p]];
                const bool need_w = io.needs(wi);
                if (!need_mix_grads && !need_w) return;
                auto [d, dw] =
                    project_backward(gy, mix, wv[p], transposed[p], need_mix_grads, need_w);
                if (need_w) io.set(wi, std::move(dw));
                dm[p] = std::move(d);
            }, /*with_deferred=*/true);
            if (!need_mix_grads) return;
            std::vector<fused::MixGrad> grads;
            for (size_t p = 0; p < P; ++p) grads.push_back({which[p], std::move(dm[p])});
            dm.clear();
            fused::TokenMixGrads g = fused::token_mix_backward(xv, pv, muv, grads, io.needs(0));
            if (io.needs(0)) io.set(0, std::move(g.dx));
            if (pv.defined() && io.needs(1)) io.set(1, std::move(g.dprev));
            for (size_t m = 0; m < M; ++m)
                if (io.needs(mu_index(m))) io.set(mu_index(m), std::move(g.dmu[m]));
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
