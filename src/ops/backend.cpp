// Backend selection and the "no kernel" failure.
#include "goose/ops/backend.h"

namespace goose {

namespace {
thread_local Backend t_cpu_choice = Backend::cpu;
}

const char* backend_name(Backend b) {
    switch (b) {
        case Backend::ref: return "ref";
        case Backend::cpu: return "cpu";
        case Backend::cuda: return "cuda";
    }
    return "?";
}

Backend backend_of(const Tensor& t) {
    return t.device().is_cuda() ? Backend::cuda : t_cpu_choice;
}

Backend backend_of(const char* op, std::initializer_list<const Tensor*> ts) {
    const Tensor* first = nullptr;
    for (const Tensor* t : ts) {
        if (!t || !t->defined()) continue;
        if (!first) {
            first = t;
        } else if (!(t->device() == first->device())) {
            fail("{}: inputs are on different devices ({} and {})", op, first->desc(), t->desc());
        }
    }
    return first ? backend_of(*first) : t_cpu_choice;
}

BackendScope::BackendScope(Backend cpu_choice) : prev_(t_cpu_choice) {
    GOOSE_ASSERT(cpu_choice != Backend::cuda, "BackendScope selects CPU kernels only");
    t_cpu_choice = cpu_choice;
}

BackendScope::~BackendScope() { t_cpu_choice = prev_; }

void no_kernel(const char* op, Backend b) {
    if (b == Backend::cuda && !cuda_compiled())
        fail("{}: this build has no CUDA backend (rebuild with `make build CUDA=1`)", op);
    fail("{}: the {} backend has no kernel for this op", op, backend_name(b));
}

}  // namespace goose
