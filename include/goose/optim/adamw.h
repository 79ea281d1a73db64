// Adam and AdamW over groups of parameters (Var leaves updated in place), with the moment
// estimates kept per parameter and exported for checkpoints. Matches torch.optim.Adam/AdamW.
// Parameters on CUDA (f32 master weights; f32 or bf16 gradients) are updated together by one
// multi-tensor kernel per step, bit-identical to the CPU update in f32.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "goose/autograd/var.h"

namespace goose::optim {

// Parameters sharing hyperparameters. name labels the group's state entries ("<name>.<i>...");
// an empty name stands for the group's index.
struct ParamGroup {
    std::vector<Var> params = {};
    double lr_scale = 1.0;      // this group's learning rate is lr * lr_scale
    double weight_decay = 0.0;  // decoupled (AdamW) or L2 (Adam), see AdamConfig
    std::string name = {};
};

struct AdamConfig {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    // true: AdamW, p -= lr * lr_scale * weight_decay * p before the Adam update;
    // false: Adam with L2, g += weight_decay * p.
    bool decoupled_weight_decay = true;
    // > 0: before each update the gradients are clipped by their global L2 norm to this
    // (torch.nn.utils.clip_grad_norm_, the official RWKV-7 recipe's grad_clip 1.0), over every
    // parameter with a gradient; on CUDA without leaving the device (graph-safe).
    double max_grad_norm = 0;
};

class Adam {
  public:
    // Parameters: defined f32/f64 leaves (f32 on CUDA), each in one group only; moments start
    // at zero on the parameter's device.
    Adam(std::vector<ParamGroup> groups, AdamConfig cfg);

    // One update of every parameter whose grad() is defined (others are skipped). The step
    // count t (bias correction) is shared by all parameters and advances once per call.
    void step();
    // CUDA graphs: a step() captured into a graph runs nothing and leaves the step count; call
    // this before each replay of the graph: the count advances and that step's coefficients
    // (bias corrections, lr) are copied to the device array the captured kernel reads.
    void prepare_replay();
    void set_lr(double lr);
    double lr() const { return cfg_.lr; }
    int64_t steps() const { return steps_; }
    // The gradients' global L2 norm before the last step's clipping (on CUDA this waits for
    // it); NaN when the last step did not clip (max_grad_norm 0, or no step yet).
    double last_grad_norm() const;
    void zero_grad();  // drops every parameter's gradient

    // After each update of `param`, also write its value rounded to bf16 into `copy` (a packed
    // bf16 tensor of its shape on its device; on CUDA in the same kernel pass). An undefined
    // copy stops it. Fails when param is not one of this optimizer's parameters.
    void set_bf16_copy(const Var& param, Tensor copy);

    const AdamConfig& config() const { return cfg_; }
    const std::vector<ParamGroup>& groups() const { return groups_; }

    // Checkpoint state: "step" (i64 scalar) and "<group>.<index>.exp_avg" / ".exp_avg_sq"
    // (copies, in the parameter's dtype). load_state needs exactly these names and shapes.
    std::vector<std::pair<std::string, Tensor>> state() const;
    void load_state(const std::vector<std::pair<std::string, Tensor>>& state);

  private:
    std::string prefix(size_t group, size_t index) const;

    std::vector<ParamGroup> groups_;
    AdamConfig cfg_;
    int64_t steps_ = 0;
    double cpu_grad_norm_ = std::nan("");  // the last CPU step's, when it clipped
    std::vector<std::vector<Tensor>> exp_avg_, exp_avg_sq_;  // [group][param]
    std::vector<std::vector<Tensor>> bf16_copy_;             // [group][param], or undefined
    std::shared_ptr<void> cuda_state_;  // CUDA: the device coefficient array (adamw_cuda.h)
};

using AdamW = Adam;

// Adam with decoupled (AdamW) or L2 (Adam) weight decay; cfg.decoupled_weight_decay is set.
Adam make_adamw(std::vector<ParamGroup> groups, AdamConfig cfg = {});
Adam make_adam(std::vector<ParamGroup> groups, AdamConfig cfg = {});

}  // namespace goose::optim
