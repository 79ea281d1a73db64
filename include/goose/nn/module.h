// Module: a node of a model tree holding parameters (Var leaves) and child modules, with
// hierarchical names ("blocks.0.att.key.weight"), state-dict export/import and zero_grad.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "goose/autograd/var.h"

namespace goose::nn {

using StateDict = std::map<std::string, Tensor>;

class Module {
public:
    virtual ~Module() = default;
    Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // Depth-first in registration order: own parameters first, then each child's.
    std::vector<std::pair<std::string, Var>> named_parameters() const;
    std::vector<Var> parameters() const;
    int64_t num_parameters() const;  // total elements

    // Parameter values by name. The tensors share storage with the parameters.
    StateDict state_dict() const;
    // Copies values in (converting dtype). strict: every parameter must be present and no extra
    // key may exist. Errors name the missing/unexpected keys and any shape mismatch; on error
    // nothing is modified.
    void load_state_dict(const StateDict& sd, bool strict = true);

    void zero_grad();
    void set_requires_grad(bool r);
    // Moves every parameter's value to `dev` (gradients are dropped). The Vars stay the same
    // handles, so optimizers and other holders see the moved values.
    void to(Device dev);

protected:
    Var register_parameter(const std::string& name, Tensor init, bool requires_grad = true);
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
        add_child(name, m);
        return m;
    }

private:
    void add_child(const std::string& name, std::shared_ptr<Module> m);
    void collect(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const;

    std::vector<std::pair<std::string, Var>> params_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// A list of modules named "0", "1", ...
class ModuleList : public Module {
public:
    void push_back(std::shared_ptr<Module> m);
    size_t size() const { return items_.size(); }
    Module& operator[](size_t i) const { return *items_.at(i); }
    template <class M>
    M& at(size_t i) const { return dynamic_cast<M&>(*items_.at(i)); }

private:
    std::vector<std::shared_ptr<Module>> items_;
};

}  // namespace goose::nn
