// The per-thread tape and the reverse pass.
#include "goose/autograd/tape.h"

#include <algorithm>

#include "goose/core/cuda.h"
#include "goose/core/element.h"
#include "goose/ops/binary.h"

namespace goose {

Var::Var(Tensor value, bool requires_grad) : impl_(std::make_shared<VarImpl>()) {
    impl_->value = std::move(value);
    set_requires_grad(requires_grad);
}

void Var::set_requires_grad(bool r) {
    GOOSE_ASSERT(impl_ && impl_->is_leaf, "requires_grad can only be set on a leaf Var");
    if (r && !dtype_is_float(impl_->value.dtype()))
        fail("a {} tensor cannot require grad (integer dtype)", impl_->value.desc());
    impl_->requires_grad = r;
}

const Tensor& GradIO::gy(int i) const { return gys[static_cast<size_t>(i)]; }

void GradIO::defer(int i, std::function<Tensor()> make) {
    const auto k = static_cast<size_t>(i);
    GOOSE_ASSERT(k < gxs.size(), "{}: input {} out of range", op, i);
    if (!needs_[k] || !make) return;
    deferred_[k] = std::move(make);
}

void GradIO::set(int i, Tensor g) {
    const auto k = static_cast<size_t>(i);
    GOOSE_ASSERT(k < gxs.size(), "{}: input {} out of range", op, i);
    if (!needs_[k] || !g.defined()) return;
    GOOSE_ASSERT(g.shape() == input_shapes[k], "{}: gradient of input {} has shape {}, input has {}",
                 op, i, g.shape().str(), input_shapes[k].str());
    gxs[k] = std::move(g);
}

void GradIO::set_summed(int i, Tensor g) {
    const auto k = static_cast<size_t>(i);
    GOOSE_ASSERT(k < gxs.size() && priors_[k].defined(), "{}: input {} has no prior gradient", op,
                 i);
    set(i, std::move(g));
    summed_[k] = gxs[k].defined();
}

namespace ag {

namespace {
struct Entry {
    const char* op;
    std::vector<std::shared_ptr<VarImpl>> inputs;
    std::vector<std::shared_ptr<VarImpl>> outputs;
    BackwardFn backward;
};
thread_local std::vector<Entry> t_tape;
thread_local bool t_grad_enabled = true;
thread_local bool t_defer_weight_grads = false;
// The buffer of backward(root)'s default seed (exactly 1) while nothing has been added to it.
thread_local const void* t_unit_seed = nullptr;
// Gradient work handed over by GradIO::defer, for the Var it belongs to.
struct Deferred {
    std::shared_ptr<VarImpl> var;
    std::function<Tensor()> make;
};
thread_local std::vector<Deferred>* t_deferred = nullptr;  // the running backward pass's
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }
DeferWeightGrads::DeferWeightGrads(bool on) : prev_(t_defer_weight_grads) {
    t_defer_weight_grads = on;
}
DeferWeightGrads::~DeferWeightGrads() { t_defer_weight_grads = prev_; }
bool weight_grads_deferred() { return t_defer_weight_grads && t_grad_enabled; }

std::vector<Var> record(const char* op, std::vector<Var> inputs, std::vector<Tensor> outputs,
                        BackwardFn backward) {
    bool any = false;
    if (t_grad_enabled)
        for (const Var& v : inputs) any = any || v.requires_grad();
    std::vector<Var> outs;
    outs.reserve(outputs.size());
    Entry e{op, {}, {}, any ? std::move(backward) : BackwardFn()};
    for (Tensor& t : outputs) {
        auto impl = std::make_shared<VarImpl>();
        impl->value = std::move(t);
        impl->requires_grad = any && dtype_is_float(impl->value.dtype());
        impl->is_leaf = !any;
        if (any) e.outputs.push_back(impl);
        outs.emplace_back(std::move(impl));
    }
    if (any) {
        for (const Var& v : inputs) e.inputs.push_back(v.impl_ptr());
        t_tape.push_back(std::move(e));
    }
    return outs;
}

Var record(const char* op, std::vector<Var> inputs, Tensor output, BackwardFn backward) {
    std::vector<Tensor> outs;
    outs.push_back(std::move(output));
    return record(op, std::move(inputs), std::move(outs), std::move(backward))[0];
}

void accumulate(Tensor& dst, const Tensor& src) {
    if (dst.shape() != src.shape())
        fail("gradient accumulation: shapes differ ({} += {})", dst.desc(), src.desc());
    if (dst.device().is_cuda()) {  // a new sum on the device (the CUDA add kernel)
        dst = ops::binary_forward(BinaryOp::add, dst,
                                  src.dtype() == dst.dtype() ? src : src.to(dst.dtype()));
        return;
    }
    if (!dst.is_contiguous() || dst.dtype() != src.dtype()) {
        dst = dst.clone();
    }
    const Tensor s = src.dtype() == dst.dtype() ? src.contiguous() : src.to(dst.dtype());
    const int64_t n = dst.numel();
    if (dst.dtype() == DType::f32) {
        float* d = dst.data<float>();
        const float* p = s.data<float>();
#pragma omp parallel for simd if (n > 32768)
        for (int64_t i = 0; i < n; ++i) d[i] += p[i];
    } else if (dst.dtype() == DType::f64) {
        double* d = dst.data<double>();
        const double* p = s.data<double>();
#pragma omp parallel for simd if (n > 32768)
        for (int64_t i = 0; i < n; ++i) d[i] += p[i];
    } else {
        fail("gradient accumulation: unsupported dtype {}", dst.desc());
    }
}

namespace {
// Adds g into v's gradient. Leaves own their gradient storage (it may be updated in place by
// optimizers and clipping): a leaf adopts a g that is the whole of a buffer nothing else holds,
// else takes a copy; intermediate gradients may alias other tensors and are replaced, never
// written in place.
void add_grad(VarImpl& v, Tensor g) {
    if (v.grad.defined() && v.grad.raw_data() == t_unit_seed) t_unit_seed = nullptr;
    if (!v.grad.defined()) {
        const bool adopt = g.storage().use_count() == 1 && g.is_contiguous() &&
                           g.nbytes() == g.storage()->nbytes();  // not a piece of a buffer
        v.grad = v.is_leaf && !adopt ? g.clone() : std::move(g);
    } else if (v.is_leaf || v.grad.device().is_cuda()) {
        accumulate(v.grad, g);  // on CUDA a new sum: the old gradient is left as it was
    } else {
        Tensor sum = v.grad.clone();
        accumulate(sum, g);
        v.grad = std::move(sum);
    }
}
}  // namespace

namespace {
// Replays the thread's tape backwards (the roots' seeds already added) and frees it.
void run_tape() {
    std::vector<Entry> tape = std::move(t_tape);
    t_tape.clear();
    std::vector<Deferred> deferred;  // this pass's (a nested pass has its own)
    struct Scope {
        std::vector<Deferred>* outer;
        ~Scope() { t_deferred = outer; }
    } scope{t_deferred};
    t_deferred = &deferred;
    for (auto it = tape.rbegin(); it != tape.rend(); ++it) {
        Entry& e = *it;
        bool any_grad = false;
        for (auto& o : e.outputs) any_grad = any_grad || o->grad.defined();
        if (!any_grad) continue;
        GradIO io;
        io.op = e.op;
        for (auto& o : e.outputs) {
            io.unit_.push_back(o->grad.defined() && t_unit_seed &&
                               o->grad.raw_data() == t_unit_seed);
            io.gys.push_back(o->grad.defined() ? o->grad
                                               : Tensor::zeros(o->value.shape(), o->value.dtype(),
                                                               o->value.device()));
        }
        io.gxs.resize(e.inputs.size());
        io.deferred_.resize(e.inputs.size());
        io.priors_.resize(e.inputs.size());
        io.summed_.assign(e.inputs.size(), false);
        for (size_t i = 0; i < e.inputs.size(); ++i) {
            const auto& in = e.inputs[i];  // an undefined input (an absent bias) has no gradient
            io.needs_.push_back(in && in->requires_grad);
            io.input_shapes.push_back(in ? in->value.shape() : Shape());
            if (in && !in->is_leaf && in->grad.defined() && in->grad.raw_data() != t_unit_seed &&
                std::count(e.inputs.begin(), e.inputs.end(), in) == 1)
                io.priors_[i] = in->grad;
        }
        e.backward(io);
        for (size_t i = 0; i < e.inputs.size(); ++i) {
            if (!io.gxs[i].defined() || !e.inputs[i]) continue;
            if (io.summed_[i])
                e.inputs[i]->grad = std::move(io.gxs[i]);  // the prior is in it
            else
                add_grad(*e.inputs[i], std::move(io.gxs[i]));
        }
        for (size_t i = 0; i < e.inputs.size(); ++i) {
            if (!io.deferred_[i] || !e.inputs[i]) continue;
            if (e.inputs[i]->is_leaf)
                deferred.push_back({e.inputs[i], std::move(io.deferred_[i])});
            else  // an entry later in the pass reads this gradient: no waiting
                add_grad(*e.inputs[i], io.deferred_[i]());
        }
        for (auto& o : e.outputs)
            if (!o->is_leaf) o->grad = Tensor();
        e.backward = nullptr;  // frees saved tensors as we go
    }
    for (Deferred& d : deferred) add_grad(*d.var, d.make());  // what nothing ran beside
}

// backward(roots, seeds); unit_seed: the buffer of a default seed of 1 (GradIO::gy_is_one), or
// null.
void run_backward(const std::vector<Var>& roots, std::vector<Tensor> seeds,
                  const void* unit_seed) {
    if (roots.size() != seeds.size())
        fail("backward: {} roots but {} seeds", roots.size(), seeds.size());
    for (size_t i = 0; i < roots.size(); ++i) {
        const Var& r = roots[i];
        if (!r.defined()) fail("backward: root {} is undefined", i);
        if (!r.requires_grad()) fail("backward: root {} does not require grad", i);
        if (seeds[i].shape() != r.shape())
            fail("backward: seed {} of root {} does not match it ({})", seeds[i].desc(), i,
                 r.value().desc());
    }
    for (size_t i = 0; i < roots.size(); ++i) add_grad(*roots[i].impl(), std::move(seeds[i]));
    // A nested backward (a recompute inside a backward) keeps the outer one's unit seed.
    const void* outer = t_unit_seed;
    t_unit_seed = unit_seed ? unit_seed : outer;
    try {
        run_tape();
    } catch (...) {
        t_unit_seed = outer;
        throw;
    }
    t_unit_seed = outer;
    for (const Var& r : roots)
        if (!r.impl()->is_leaf) r.impl()->grad = Tensor();
}
}  // namespace

void backward(const Var& root, Tensor seed) {
    if (!root.defined()) fail("backward: the root Var is undefined");
    if (!root.requires_grad())
        fail("backward: the root does not require grad (no input required grad, or grad mode "
             "was off when it was computed)");
    if (!seed.defined()) {
        if (root.numel() != 1)
            fail("backward: root {} has {} elements; pass a seed gradient of its shape",
                 root.value().desc(), root.numel());
        seed = Tensor::full(root.shape(), 1.0, root.dtype(), root.value().device());
        const void* unit = seed.raw_data();
        run_backward(std::vector<Var>{root}, std::vector<Tensor>{std::move(seed)}, unit);
        return;
    }
    run_backward(std::vector<Var>{root}, std::vector<Tensor>{std::move(seed)}, nullptr);
}

void backward(const std::vector<Var>& roots, std::vector<Tensor> seeds) {
    run_backward(roots, std::move(seeds), nullptr);
}

void run_beside_deferred(const std::function<void()>& work, int free_sms) {
    if (!t_deferred || t_deferred->empty()) {
        work();
        return;
    }
    std::vector<Deferred> todo = std::move(*t_deferred);
    t_deferred->clear();
    std::vector<Tensor> grads(todo.size());
    cuda::run_parallel({work, [&] {
                            const cuda::SmTarget sms(free_sms);
                            for (size_t i = 0; i < todo.size(); ++i) grads[i] = todo[i].make();
                        }});
    for (size_t i = 0; i < todo.size(); ++i) add_grad(*todo[i].var, std::move(grads[i]));
}

void run_parallel_with_deferred(const std::vector<std::function<void()>>& branches) {
    if (branches.empty() || !t_deferred || t_deferred->empty()) {
        cuda::run_parallel(branches);
        return;
    }
    std::vector<Deferred> todo = std::move(*t_deferred);
    t_deferred->clear();
    std::vector<Tensor> grads(todo.size());
    std::vector<std::function<void()>> work = branches;
    work[0] = [&] {
        branches[0]();
        for (size_t i = 0; i < todo.size(); ++i) grads[i] = todo[i].make();
    };
    cuda::run_parallel(work);
    for (size_t i = 0; i < todo.size(); ++i) add_grad(*todo[i].var, std::move(grads[i]));
}

size_t tape_size() { return t_tape.size(); }
void clear_tape() { t_tape.clear(); }

}  // namespace ag
}  // namespace goose
