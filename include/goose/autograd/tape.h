// The tape: a per-thread list of recorded ops, replayed backwards by backward().
//
// Writing the autograd function of an op (see docs/adding-an-op.md):
//
//   Var exp(const Var& x) {
//       Tensor y = ops::unary_forward(UnaryOp::exp, x.value());
//       return ag::record("exp", {x}, y, [x = x.value()](GradIO& io) {
//           io.set(0, ops::unary_backward(UnaryOp::exp, io.gy(), x));
//       });
//   }
//
// The closure captures what the backward needs (the saved tensors) and is destroyed with the
// tape. io.gy(i) is the gradient of output i (zeros if it received none); io.needs(i) tells
// whether input i wants a gradient; io.set(i, g) hands it over (shape checked).
#pragma once
#include <functional>
#include <span>
#include <vector>

#include "goose/autograd/var.h"

namespace goose {

class GradIO {
public:
    const Tensor& gy(int i = 0) const;
    // True when output i's gradient is backward(root)'s default seed, exactly 1 (the root's own
    // entry, nothing added to it): a backward may skip scaling by it.
    bool gy_is_one(int i = 0) const { return unit_[static_cast<size_t>(i)]; }
    bool needs(int i) const { return needs_[static_cast<size_t>(i)]; }
    void set(int i, Tensor g);
    // Hands input i's gradient over as work for later (instead of set): the tape calls `make`
    // beside the next ag::run_beside_deferred or in the next ag::run_parallel_with_deferred, or
    // when the backward pass ends, and adds what it returns to input i's gradient. For weight
    // gradients nothing downstream waits for, which can then fill SMs or a stream that would be
    // idle (the input of a non-leaf gets its gradient at once). `make` must hold what it reads.
    void defer(int i, std::function<Tensor()> make);
    int num_inputs() const { return static_cast<int>(needs_.size()); }
    // The gradient input i has gathered so far from the entries already run backwards (undefined
    // when none, or when i is a leaf or appears more than once among the inputs). A backward that
    // adds it into its own result in the same pass hands the sum over with set_summed: the tape
    // then takes that as input i's whole gradient instead of adding the two with a kernel.
    const Tensor& prior(int i) const { return priors_[static_cast<size_t>(i)]; }
    void set_summed(int i, Tensor g);

    // used by the tape
    std::vector<Tensor> gys, gxs, priors_;
    std::vector<bool> summed_;
    std::vector<std::function<Tensor()>> deferred_;
    std::vector<bool> needs_, unit_;
    std::vector<Shape> input_shapes;
    const char* op = "";
};

using BackwardFn = std::function<void(GradIO&)>;

namespace ag {

bool grad_enabled();

// Inside a backward function: runs `work` on the current stream while the gradient work
// deferred so far in this backward pass (GradIO::defer) runs beside it on a side stream of low
// priority (cuda::run_parallel; one after the other without a device), then adds those
// gradients. Outside a backward pass it just runs `work`. free_sms > 0: the SMs `work` leaves
// free, which the deferred GEMMs are planned for (cuda::SmTarget).
void run_beside_deferred(const std::function<void()>& work, int free_sms = 0);

// Inside a backward function: runs the branches as cuda::run_parallel does, branch 0 (the
// current stream) also computing the gradient work deferred so far in this backward pass after
// its own work, then adds those gradients. For a main branch that would otherwise wait for its
// side branches (the RWKV-7 time mix's projections waiting for their LoRA chains). Outside a
// backward pass, or with nothing deferred, just cuda::run_parallel.
void run_parallel_with_deferred(const std::vector<std::function<void()>>& branches);

// While one lives, the linear layers recorded (ag::linear and the models' lean projections)
// hand their weight gradients over as deferred work (GradIO::defer) instead of computing them
// with the input gradient: a model turns this on where its backward has a latency-bound kernel
// that leaves SMs idle (ag::wkv7 runs the deferred work beside its backward kernel) or a stream
// that waits for others (ag::run_parallel_with_deferred).
class DeferWeightGrads {
public:
    explicit DeferWeightGrads(bool on);
    ~DeferWeightGrads();
    DeferWeightGrads(const DeferWeightGrads&) = delete;
    DeferWeightGrads& operator=(const DeferWeightGrads&) = delete;

private:
    bool prev_;
};
bool weight_grads_deferred();

// Turns recording off for a scope (inference, evaluation, optimizer updates).
class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool prev_;
};

// Wraps op outputs in Vars and, when grad mode is on and an input requires grad, records the
// backward closure. Returns the output Vars (requires_grad set accordingly).
std::vector<Var> record(const char* op, std::vector<Var> inputs, std::vector<Tensor> outputs,
                        BackwardFn backward);
Var record(const char* op, std::vector<Var> inputs, Tensor output, BackwardFn backward);

// Reverse pass from `root`. `seed` is d(objective)/d(root); it defaults to 1 for a
// one-element root. Gradients accumulate (+=) into leaves that require grad; intermediate
// gradients and the whole tape are freed at the end.
void backward(const Var& root, Tensor seed = Tensor());
// The same from several roots at once, seeds[i] = d(objective)/d(roots[i]) (shapes checked).
void backward(const std::vector<Var>& roots, std::vector<Tensor> seeds);

size_t tape_size();  // entries recorded in this thread since the last backward/clear
void clear_tape();   // drops the tape without a reverse pass

// In-place dst += src for gradient accumulation (same shape; f32/f64).
void accumulate(Tensor& dst, const Tensor& src);

}  // namespace ag
}  // namespace goose
