// Module tree: parameter registration, hierarchical names, state dicts.
#include "goose/nn/module.h"

#include <set>

namespace goose::nn {

Var Module::register_parameter(const std::string& name, Tensor init, bool requires_grad) {
    GOOSE_ASSERT(name.find('.') == std::string::npos, "parameter name '{}' contains '.'", name);
    for (auto& [n, v] : params_) GOOSE_ASSERT(n != name, "parameter '{}' registered twice", name);
    Var v(std::move(init), requires_grad);
    params_.emplace_back(name, v);
    return v;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
    GOOSE_ASSERT(m != nullptr && name.find('.') == std::string::npos, "bad child '{}'", name);
    for (auto& [n, c] : children_) GOOSE_ASSERT(n != name, "module '{}' registered twice", name);
    children_.emplace_back(name, std::move(m));
}

void Module::collect(const std::string& prefix,
                     std::vector<std::pair<std::string, Var>>& out) const {
    for (const auto& [n, v] : params_) out.emplace_back(prefix + n, v);
    for (const auto& [n, c] : children_) c->collect(prefix + n + ".", out);
}

std::vector<std::pair<std::string, Var>> Module::named_parameters() const {
    std::vector<std::pair<std::string, Var>> out;
    collect("", out);
    return out;
}

std::vector<Var> Module::parameters() const {
    std::vector<Var> out;
    for (auto& [n, v] : named_parameters()) out.push_back(v);
    return out;
}

int64_t Module::num_parameters() const {
    int64_t n = 0;
    for (auto& [name, v] : named_parameters()) n += v.numel();
    return n;
}

StateDict Module::state_dict() const {
    StateDict sd;
    for (auto& [n, v] : named_parameters()) sd.emplace(n, v.value());
    return sd;
}

void Module::load_state_dict(const StateDict& sd, bool strict) {
    auto params = named_parameters();
    std::vector<std::string> missing, unexpected, mismatched;
    std::set<std::string> known;
    for (auto& [n, v] : params) {
        known.insert(n);
        auto it = sd.find(n);
        if (it == sd.end()) {
            missing.push_back(n);
        } else if (it->second.shape() != v.shape()) {
            mismatched.push_back(fmt::format("{}: checkpoint {} vs model {}", n,
                                             it->second.shape().str(), v.shape().str()));
        }
    }
    for (auto& [n, t] : sd)
        if (!known.count(n)) unexpected.push_back(n);
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (size_t i = 0; i < v.size() && i < 20; ++i) s += (i ? ", " : "") + v[i];
        if (v.size() > 20) s += fmt::format(", ... ({} in all)", v.size());
        return s;
    };
    if (!mismatched.empty()) fail("load_state_dict: shape mismatch: {}", join(mismatched));
    if (strict && (!missing.empty() || !unexpected.empty()))
        fail("load_state_dict: missing keys [{}]; unexpected keys [{}]", join(missing),
             join(unexpected));
    for (auto& [n, v] : params) {
        auto it = sd.find(n);
        if (it != sd.end()) v.value_mut().copy_(it->second);
    }
}

void Module::zero_grad() {
    for (auto& [n, v] : named_parameters()) v.zero_grad();
}

void Module::to(Device dev) {
    for (auto& [n, v] : named_parameters()) {
        if (v.value().device() == dev) continue;
        v.value_mut() = v.value().to(dev);
        v.zero_grad();
    }
}

void Module::set_requires_grad(bool r) {
    for (auto& [n, v] : named_parameters()) v.set_requires_grad(r);
}

void ModuleList::push_back(std::shared_ptr<Module> m) {
    register_module(std::to_string(items_.size()), m);
    items_.push_back(std::move(m));
}

}  // namespace goose::nn
