// A restricted unpickler for PyTorch state dicts (pickle protocol 2, plus the few protocol 4
// opcodes a user-chosen protocol may add): builds Python values, calls only an allowlist of
// globals (collections.OrderedDict, torch._utils._rebuild_tensor[_v2], _rebuild_parameter) and
// knows the legacy storage classes; rebuilds tensors over the storages `load_storage` returns.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "goose/core/tensor.h"
#include "io/le_bytes.h"

namespace goose::io {

// Returns the bytes of storage `key` (the persistent id ('storage', <class>, key, location,
// numel)) holding at least numel elements of `dtype`; `type_name` is "torch.FloatStorage"...
using StorageLoader = std::function<std::shared_ptr<Storage>(
    DType dtype, const std::string& type_name, const std::string& key, int64_t numel)>;

// Runs the pickle program `pkl` (errors name pkl.who and pkl.path) whose result must be a dict
// (plain or OrderedDict) of str -> tensor; returns its entries in pickle order.
std::vector<std::pair<std::string, Tensor>> unpickle_state_dict(const ByteView& pkl,
                                                                const StorageLoader& load_storage);

}  // namespace goose::io
