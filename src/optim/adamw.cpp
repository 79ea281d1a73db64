// Adam / AdamW: argument checks, the per-parameter update (OpenMP over elements on the CPU; one
// multi-tensor kernel for all CUDA parameters) and the checkpoint state.
#include "goose/optim/adamw.h"

#include <cmath>
#include <map>
#include <set>

#include "goose/optim/clip.h"
#ifdef GOOSE_CUDA
#include "goose/core/cuda.h"
#include "optim/adamw_cuda.h"
#endif

namespace goose::optim {

namespace {

constexpr int64_t kParallelMin = 32768;  // elements; below this the update runs on one thread

// Coefficients of one update of one parameter, as in torch.optim.Adam/AdamW (single tensor).
struct Coeffs {
    double lr;       // lr * lr_scale
    double wd;       // weight decay
    bool decoupled;  // AdamW
    double beta1, beta2, eps;
    double step_size;  // lr / (1 - beta1^t)
    double bc2_sqrt;   // sqrt(1 - beta2^t)
};

// a * b + c, fused (one rounding) where the machine has FMA: the CUDA kernel fuses the same
// three products, so f32 results match it bit for bit (see src/ops/cuda/adamw_kernel.h).
template <class T>
inline T fmadd(T a, T b, T c) {
#if defined(__FMA__)
    return std::fma(a, b, c);
#else
    return a * b + c;
#endif
}

template <class T>
void update(T* p, const T* g, T* m, T* v, int64_t n, const Coeffs& c) {
    const T decay = static_cast<T>(1.0 - c.lr * c.wd), wd = static_cast<T>(c.wd);
    const T one_m_b1 = static_cast<T>(1.0 - c.beta1), b2 = static_cast<T>(c.beta2);
    const T one_m_b2 = static_cast<T>(1.0 - c.beta2), eps = static_cast<T>(c.eps);
    const T step_size = static_cast<T>(c.step_size), bc2_sqrt = static_cast<T>(c.bc2_sqrt);
    const bool decoupled = c.decoupled, any_wd = c.wd != 0;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
        T gi = g[i];
        if (any_wd) {
            if (decoupled)
                p[i] *= decay;
            else
                gi = fmadd(wd, p[i], gi);
        }
        m[i] = fmadd(one_m_b1, gi - m[i], m[i]);  // m.lerp_(g, 1 - beta1)
        v[i] = fmadd(v[i], b2, one_m_b2 * gi * gi);
        const T denom = std::sqrt(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

std::string param_desc(const std::string& prefix, const Var& p) {
    return fmt::format("parameter {} ({})", prefix, p.value().desc());
}

}  // namespace

Adam::Adam(std::vector<ParamGroup> groups, AdamConfig cfg) : groups_(std::move(groups)), cfg_(cfg) {
    if (!(cfg_.lr >= 0) || !std::isfinite(cfg_.lr)) fail("adam: lr must be >= 0, got {}", cfg_.lr);
    if (!(cfg_.beta1 >= 0 && cfg_.beta1 < 1))
        fail("adam: beta1 must be in [0, 1), got {}", cfg_.beta1);
    if (!(cfg_.beta2 >= 0 && cfg_.beta2 < 1))
        fail("adam: beta2 must be in [0, 1), got {}", cfg_.beta2);
    if (!(cfg_.eps >= 0)) fail("adam: eps must be >= 0, got {}", cfg_.eps);
    if (!(cfg_.max_grad_norm >= 0) || !std::isfinite(cfg_.max_grad_norm))
        fail("adam: max_grad_norm must be >= 0 (0: no clipping), got {}", cfg_.max_grad_norm);
    std::set<std::string> names;
    std::set<const VarImpl*> seen;
    exp_avg_.resize(groups_.size());
    exp_avg_sq_.resize(groups_.size());
    bf16_copy_.resize(groups_.size());
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
        const ParamGroup& g = groups_[gi];
        const std::string gname = g.name.empty() ? std::to_string(gi) : g.name;
        if (!names.insert(gname).second) fail("adam: two parameter groups are named '{}'", gname);
        if (!(g.lr_scale >= 0) || !std::isfinite(g.lr_scale))
            fail("adam: group '{}' has lr_scale {}; it must be >= 0", gname, g.lr_scale);
        if (!(g.weight_decay >= 0) || !std::isfinite(g.weight_decay))
            fail("adam: group '{}' has weight_decay {}; it must be >= 0", gname, g.weight_decay);
        for (size_t pi = 0; pi < g.params.size(); ++pi) {
            const Var& p = g.params[pi];
            const std::string pre = prefix(gi, pi);
            if (!p.defined() || !p.value().defined()) fail("adam: parameter {} is undefined", pre);
            const DType dt = p.value().dtype();
            if (dt != DType::f32 && dt != DType::f64)
                fail("adam: {} must be f32 or f64", param_desc(pre, p));
            if (p.value().device().is_cuda() && dt != DType::f32)
                fail("adam: {} must be f32 on CUDA (fp32 master weights)", param_desc(pre, p));
            if (!seen.insert(p.impl()).second)
                fail("adam: {} appears twice among the parameters", param_desc(pre, p));
            exp_avg_[gi].push_back(Tensor::zeros(p.shape(), dt, p.value().device()));
            exp_avg_sq_[gi].push_back(Tensor::zeros(p.shape(), dt, p.value().device()));
            bf16_copy_[gi].emplace_back();
        }
    }
}

std::string Adam::prefix(size_t group, size_t index) const {
    const std::string& n = groups_[group].name;
    return fmt::format("{}.{}", n.empty() ? std::to_string(group) : n, index);
}

void Adam::step() {
    // Check every parameter first, so that a bad one leaves the optimizer and all values as
    // they were.
    for (size_t gi = 0; gi < groups_.size(); ++gi)
        for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
            const Var& p = groups_[gi].params[pi];
            if (!p.grad().defined()) continue;
            const Tensor& value = p.value();
            if (value.shape() != exp_avg_[gi][pi].shape() ||
                value.dtype() != exp_avg_[gi][pi].dtype())
                fail("adam: {} changed shape or dtype since the optimizer was made (state {})",
                     param_desc(prefix(gi, pi), p), exp_avg_[gi][pi].desc());
            if (p.grad().shape() != value.shape())
                fail("adam: gradient {} does not match {}", p.grad().desc(),
                     param_desc(prefix(gi, pi), p));
            if (!value.is_contiguous())
                fail("adam: {} must be a packed tensor to be updated in place",
                     param_desc(prefix(gi, pi), p));
            if (!(p.grad().device() == value.device()))
                fail("adam: gradient {} is on another device than {}", p.grad().desc(),
                     param_desc(prefix(gi, pi), p));
#ifndef GOOSE_CUDA
            if (value.device().is_cuda())
                fail("adam: {} is on CUDA but this build has no CUDA backend",
                     param_desc(prefix(gi, pi), p));
#endif
        }
#ifdef GOOSE_CUDA
    // Under CUDA graph capture nothing runs now: the step count advances (and the coefficients
    // are uploaded) in prepare_replay() before each replay.
    const bool capturing = cuda::capturing();
    if (!capturing) ++steps_;
#else
    ++steps_;
#endif
    const double t = static_cast<double>(steps_);
    const double bc1 = 1.0 - std::pow(cfg_.beta1, t), bc2 = 1.0 - std::pow(cfg_.beta2, t);
    cpu_grad_norm_ = std::nan("");
    if (cfg_.max_grad_norm > 0) {  // one device for all: the CPU clips here, CUDA in its kernel
        std::vector<Var> with_grad;
        bool any_cpu = false, any_cuda = false;
        for (const ParamGroup& g : groups_)
            for (const Var& p : g.params)
                if (p.grad().defined()) {
                    with_grad.push_back(p);
                    (p.value().device().is_cuda() ? any_cuda : any_cpu) = true;
                }
        if (any_cpu && any_cuda)
            fail("adam: gradient clipping needs every parameter on one device (CPU and CUDA "
                 "parameters here)");
        if (any_cpu) cpu_grad_norm_ = clip_grad_norm(with_grad, cfg_.max_grad_norm);
    }
#ifdef GOOSE_CUDA
    std::vector<detail::CudaAdamParam> cuda_params;
#endif
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
        const ParamGroup& grp = groups_[gi];
        const double lr = cfg_.lr * grp.lr_scale;
        const Coeffs c{lr,         grp.weight_decay, cfg_.decoupled_weight_decay,
                       cfg_.beta1, cfg_.beta2,       cfg_.eps,
                       lr / bc1,   std::sqrt(bc2)};
        for (size_t pi = 0; pi < grp.params.size(); ++pi) {
            Var p = grp.params[pi];
            if (!p.grad().defined()) continue;
            Tensor& value = p.value_mut();
#ifdef GOOSE_CUDA
            if (value.device().is_cuda()) {  // batched into one multi-tensor launch below
                const Tensor& g = p.grad();
                const bool direct = g.dtype() == DType::f32 || g.dtype() == DType::bf16;
                cuda_params.push_back({value, direct ? g.contiguous() : g.to(DType::f32),
                                       exp_avg_[gi][pi], exp_avg_sq_[gi][pi],
                                       bf16_copy_[gi][pi], grp.lr_scale, grp.weight_decay});
                continue;
            }
#endif
#ifdef GOOSE_CUDA
            if (capturing)
                fail("adam: {} is on the CPU; a CUDA graph can only hold a step whose parameters "
                     "are all on CUDA", param_desc(prefix(gi, pi), p));
#endif
            const Tensor g = p.grad().to(value.dtype());  // packed, in the parameter's dtype
            Tensor& m = exp_avg_[gi][pi];
            Tensor& v = exp_avg_sq_[gi][pi];
            if (value.dtype() == DType::f32)
                update(value.data<float>(), g.data<float>(), m.data<float>(), v.data<float>(),
                       value.numel(), c);
            else
                update(value.data<double>(), g.data<double>(), m.data<double>(), v.data<double>(),
                       value.numel(), c);
            if (bf16_copy_[gi][pi].defined()) bf16_copy_[gi][pi].copy_(value);
        }
    }
#ifdef GOOSE_CUDA
    if (!cuda_params.empty()) {
        if (!cuda_state_) cuda_state_ = detail::make_cuda_adam_state();
        detail::adam_step_cuda(*std::static_pointer_cast<detail::CudaAdamState>(cuda_state_),
                               cuda_params, cfg_.lr, cfg_.beta1, cfg_.beta2, cfg_.eps,
                               cfg_.decoupled_weight_decay, bc1, bc2, !capturing,
                               cfg_.max_grad_norm);
    }
#endif
}

double Adam::last_grad_norm() const {
#ifdef GOOSE_CUDA
    if (cfg_.max_grad_norm > 0 && cuda_state_)
        return detail::last_grad_norm(
            *std::static_pointer_cast<detail::CudaAdamState>(cuda_state_));
#endif
    return cpu_grad_norm_;
}

void Adam::prepare_replay() {
#ifdef GOOSE_CUDA
    if (!cuda_state_)
        fail("adam: prepare_replay: no step on CUDA parameters has been captured or run");
    ++steps_;
    const double t = static_cast<double>(steps_);
    detail::upload_adam_coefficients(
        *std::static_pointer_cast<detail::CudaAdamState>(cuda_state_), cfg_.lr,
        1.0 - std::pow(cfg_.beta1, t), 1.0 - std::pow(cfg_.beta2, t));
#else
    fail("adam: prepare_replay needs the CUDA backend (make build CUDA=1)");
#endif
}

void Adam::set_bf16_copy(const Var& param, Tensor copy) {
    for (size_t gi = 0; gi < groups_.size(); ++gi)
        for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
            const Var& p = groups_[gi].params[pi];
            if (p.impl() != param.impl()) continue;
            if (copy.defined()) {
                if (copy.dtype() != DType::bf16 || copy.shape() != p.shape() ||
                    !(copy.device() == p.value().device()) || !copy.is_contiguous())
                    fail("adam: the bf16 copy of {} must be a packed bf16 tensor of its shape "
                         "on its device, got {}",
                         param_desc(prefix(gi, pi), p), copy.desc());
            }
            bf16_copy_[gi][pi] = std::move(copy);
            return;
        }
    fail("adam: set_bf16_copy: {} is not a parameter of this optimizer",
         param.defined() ? param.value().desc() : std::string("an undefined Var"));
}

void Adam::set_lr(double lr) {
    if (!(lr >= 0) || !std::isfinite(lr)) fail("adam: lr must be >= 0, got {}", lr);
    cfg_.lr = lr;
}

void Adam::zero_grad() {
    for (ParamGroup& g : groups_)
        for (Var& p : g.params) p.zero_grad();
}

std::vector<std::pair<std::string, Tensor>> Adam::state() const {
    std::vector<std::pair<std::string, Tensor>> s;
    s.emplace_back("step", Tensor::scalar(static_cast<double>(steps_), DType::i64));
    for (size_t gi = 0; gi < groups_.size(); ++gi)
        for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
            const std::string pre = prefix(gi, pi);
            s.emplace_back(pre + ".exp_avg", exp_avg_[gi][pi].clone());
            s.emplace_back(pre + ".exp_avg_sq", exp_avg_sq_[gi][pi].clone());
        }
    return s;
}

void Adam::load_state(const std::vector<std::pair<std::string, Tensor>>& state) {
    std::map<std::string, const Tensor*> given;
    for (const auto& [name, t] : state) {
        if (!given.emplace(name, &t).second)
            fail("adam: load_state: entry '{}' appears twice", name);
        if (!t.defined()) fail("adam: load_state: entry '{}' is undefined", name);
    }
    auto take = [&](const std::string& name, const Shape& shape) -> const Tensor& {
        auto it = given.find(name);
        if (it == given.end()) fail("adam: load_state: entry '{}' is missing", name);
        const Tensor& t = *it->second;
        if (t.shape() != shape)
            fail("adam: load_state: entry '{}' is {}, expected shape {}", name, t.desc(),
                 shape.str());
        given.erase(it);
        return t;
    };
    // Check everything before changing anything.
    const Tensor& step = take("step", Shape{});
    const double sv = step.item();
    if (!(sv >= 0) || sv != std::floor(sv))
        fail("adam: load_state: 'step' is {}; it must be a whole number >= 0", sv);
    std::vector<std::vector<const Tensor*>> m(groups_.size()), v(groups_.size());
    for (size_t gi = 0; gi < groups_.size(); ++gi)
        for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
            const std::string pre = prefix(gi, pi);
            const Shape& s = exp_avg_[gi][pi].shape();
            m[gi].push_back(&take(pre + ".exp_avg", s));
            v[gi].push_back(&take(pre + ".exp_avg_sq", s));
        }
    if (!given.empty())
        fail("adam: load_state: unexpected entry '{}' ({}): no such parameter state",
             given.begin()->first, given.begin()->second->desc());
    steps_ = static_cast<int64_t>(sv);
    for (size_t gi = 0; gi < groups_.size(); ++gi)
        for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
            exp_avg_[gi][pi].copy_(*m[gi][pi]);
            exp_avg_sq_[gi][pi].copy_(*v[gi][pi]);
        }
}

Adam make_adamw(std::vector<ParamGroup> groups, AdamConfig cfg) {
    cfg.decoupled_weight_decay = true;
    return Adam(std::move(groups), cfg);
}

Adam make_adam(std::vector<ParamGroup> groups, AdamConfig cfg) {
    cfg.decoupled_weight_decay = false;
    return Adam(std::move(groups), cfg);
}

}  // namespace goose::optim
