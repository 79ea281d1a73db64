// Backend choice for op front ends. A front end checks shapes and dtypes, then dispatches on
// backend_of(inputs): `cuda` for CUDA tensors, otherwise the thread's CPU choice: `cpu` (fast
// kernels) by default, `ref` (naive scalar oracle) inside a BackendScope(Backend::ref).
// An op a backend lacks fails loudly through no_kernel(), naming the op and the backend.
#pragma once
#include <initializer_list>

#include "goose/core/tensor.h"

namespace goose {

enum class Backend : uint8_t { ref, cpu, cuda };

const char* backend_name(Backend b);

// The backend for an op whose inputs are `t` (all inputs must be on one device).
Backend backend_of(const Tensor& t);
// Checks that every defined tensor is on the same device (names the op otherwise) and returns
// the backend for them.
Backend backend_of(const char* op, std::initializer_list<const Tensor*> ts);

// Selects which kernels CPU tensors use in this thread for the scope's lifetime.
class BackendScope {
public:
    explicit BackendScope(Backend cpu_choice);
    ~BackendScope();
    BackendScope(const BackendScope&) = delete;
    BackendScope& operator=(const BackendScope&) = delete;

private:
    Backend prev_;
};

[[noreturn]] void no_kernel(const char* op, Backend b);

}  // namespace goose
