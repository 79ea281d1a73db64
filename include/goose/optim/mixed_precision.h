// Mixed-precision AdamW (bf16 training with f32 master weights, as DeepSpeed's bf16 mode does
// for the official trainer): the model's parameters become bf16 (the forward and backward run in
// bf16), this optimizer keeps an f32 master copy of each and the Adam moments in f32. step():
// each master takes its parameter's bf16 gradient, Adam updates the masters, and every bf16
// parameter receives its updated master rounded to bf16 in the same pass (one kernel on CUDA).
#pragma once
#include <vector>

#include "goose/optim/adamw.h"

namespace goose::optim {

class MixedPrecisionAdam {
  public:
    // groups: the model's f32 parameters. Their values are kept as the masters and the
    // parameters themselves are replaced by bf16 copies (same Var handles).
    MixedPrecisionAdam(std::vector<ParamGroup> groups, AdamConfig cfg);
    void step();       // masters <- Adam(masters, params' gradients); params <- bf16(masters)
    void zero_grad();  // drops the parameters' gradients
    void prepare_replay() { adam_.prepare_replay(); }  // before each replay of a captured step
    void set_lr(double lr) { adam_.set_lr(lr); }
    Adam& adam() { return adam_; }  // over the masters (state() for checkpoints)
    const std::vector<Var>& masters() const { return masters_; }

  private:
    static std::vector<ParamGroup> master_groups(std::vector<ParamGroup>& groups,
                                                 std::vector<Var>& params,
                                                 std::vector<Var>& masters);
    std::vector<Var> params_, masters_;  // parallel lists
    Adam adam_;
};

}  // namespace goose::optim
