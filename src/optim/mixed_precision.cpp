// Mixed-precision AdamW: f32 masters, bf16 parameters written by the update itself.
#include "goose/optim/mixed_precision.h"

#include <utility>

namespace goose::optim {

std::vector<ParamGroup> MixedPrecisionAdam::master_groups(std::vector<ParamGroup>& groups,
                                                          std::vector<Var>& params,
                                                          std::vector<Var>& masters) {
    std::vector<ParamGroup> out;
    for (ParamGroup& g : groups) {
        ParamGroup m = g;
        m.params.clear();
        for (Var& p : g.params) {
            if (!p.defined() || p.dtype() != DType::f32)
                fail("mixed-precision adam: parameters must be f32 to start with, got {}",
                     p.defined() ? p.value().desc() : "undefined");
            Var master(p.value().contiguous().clone(), true);
            params.push_back(p);
            masters.push_back(master);
            m.params.push_back(master);
        }
        out.push_back(std::move(m));
    }
    return out;
}

MixedPrecisionAdam::MixedPrecisionAdam(std::vector<ParamGroup> groups, AdamConfig cfg)
    : adam_(master_groups(groups, params_, masters_), cfg) {
    for (size_t i = 0; i < params_.size(); ++i) {
        Var& p = params_[i];
        p.value_mut() = masters_[i].value().to(DType::bf16);
        p.zero_grad();
        adam_.set_bf16_copy(masters_[i], p.value());
    }
}

void MixedPrecisionAdam::step() {
    for (size_t i = 0; i < params_.size(); ++i) masters_[i].grad_mut() = params_[i].grad();
    adam_.step();  // also writes the bf16 parameters
    for (Var& m : masters_) m.zero_grad();
}

void MixedPrecisionAdam::zero_grad() {
    for (Var& p : params_) p.zero_grad();
}

}  // namespace goose::optim
