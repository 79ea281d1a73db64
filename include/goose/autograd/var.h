// Var: a tensor that takes part in reverse-mode differentiation. Leaves (parameters, inputs)
// are made by the user; every op applied to Vars while grad mode is on and some input requires
// grad appends an entry to the thread's tape (see tape.h). backward() walks the tape in reverse
// and accumulates gradients into the leaves' grad(); the tape, and every tensor it saved, is
// freed afterwards.
#pragma once
#include <memory>

#include "goose/core/tensor.h"

namespace goose {

struct VarImpl {
    Tensor value;
    Tensor grad;  // undefined until a gradient arrives
    bool requires_grad = false;
    bool is_leaf = true;
};

class Var {
public:
    Var() = default;
    explicit Var(Tensor value, bool requires_grad = false);
    explicit Var(std::shared_ptr<VarImpl> impl) : impl_(std::move(impl)) {}

    bool defined() const { return impl_ != nullptr; }
    const Tensor& value() const { return impl_->value; }
    Tensor& value_mut() { return impl_->value; }  // in-place updates (optimizer steps)
    const Tensor& grad() const { return impl_->grad; }
    Tensor& grad_mut() { return impl_->grad; }
    void zero_grad() { impl_->grad = Tensor(); }
    bool requires_grad() const { return impl_ && impl_->requires_grad; }
    void set_requires_grad(bool r);  // leaves only
    bool is_leaf() const { return impl_->is_leaf; }

    const Shape& shape() const { return impl_->value.shape(); }
    int64_t size(int dim) const { return impl_->value.size(dim); }
    int ndim() const { return impl_->value.ndim(); }
    int64_t numel() const { return impl_->value.numel(); }
    DType dtype() const { return impl_->value.dtype(); }
    double item() const { return impl_->value.item(); }

    VarImpl* impl() const { return impl_.get(); }
    const std::shared_ptr<VarImpl>& impl_ptr() const { return impl_; }

private:
    std::shared_ptr<VarImpl> impl_;
};

}  // namespace goose
