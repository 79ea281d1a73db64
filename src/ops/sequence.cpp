// Front end of the sequence ops (embedding, token_shift): argument checks, then dispatch.
#include "goose/ops/sequence.h"

#include "goose/core/element.h"
#include "goose/ops/backend.h"
#include "goose/ops/check.h"
#ifdef GOOSE_CUDA
#include "ops/cuda/cuda_ops.h"
#endif

namespace goose::ops {

namespace {
void check_ids(const Tensor& ids, int64_t vocab) {
    check::defined("embedding", ids, "ids");
    check::index_dtype("embedding", ids);
    if (ids.ndim() > kMaxDims - 1)
        fail("embedding: ids may have at most {} dims (the output adds one), got {}", kMaxDims - 1,
             ids.desc());
    if (!ids.device().is_cpu()) return;  // device kernels check their own ids
    const void* p = ids.raw_data();
    for_each_index(ids.shape(), [&](const int64_t* idx) {
        const int64_t o = offset_of(idx, ids.strides());
        const int64_t id = ids.dtype() == DType::i32 ? static_cast<const int32_t*>(p)[o]
                                                     : static_cast<const int64_t*>(p)[o];
        if (id < 0 || id >= vocab) {
            Shape at;
            for (int d = 0; d < ids.ndim(); ++d) at.push_back(idx[d]);
            fail("embedding: id {} at position {} of ids {} is outside [0, {}) (V = {})", id,
                 at.str(), ids.desc(), vocab, vocab);
        }
    });
}

void check_token_shift(const Tensor& x, const Tensor& prev) {
    check::defined("token_shift", x, "x");
    check::float_dtype("token_shift", x);
    check::ndim("token_shift", x, 3, "x (B, T, C)");
    if (prev.defined()) {
        check::same_dtype("token_shift", x, prev);
        if (prev.shape() != Shape{x.size(0), x.size(2)})
            fail("token_shift: prev must be (B, C) = [{}, {}] for x {}, got {}", x.size(0),
                 x.size(2), x.desc(), prev.desc());
    }
}
}  // namespace

Tensor embedding_forward(const Tensor& weight, const Tensor& ids) {
    check::defined("embedding", weight, "weight");
    check::float_dtype("embedding", weight);
    check::ndim("embedding", weight, 2, "weight (V, C)");
    check_ids(ids, weight.size(0));
    const Backend be = backend_of("embedding", {&weight, &ids});
    switch (be) {
        case Backend::ref:
            return embedding_forward_ref(weight, ids);
        case Backend::cpu:
            return embedding_forward_cpu(weight, ids);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return embedding_forward_cuda(weight, ids);
#endif
        default:
            no_kernel("embedding", be);
    }
}

Tensor embedding_backward(const Tensor& gy, const Tensor& ids, int64_t vocab) {
    check::defined("embedding", gy, "the output gradient");
    check::float_dtype("embedding", gy);
    if (vocab < 0) fail("embedding: vocabulary size must be >= 0, got {}", vocab);
    check_ids(ids, vocab);
    if (gy.ndim() != ids.ndim() + 1 || gy.shape().without(gy.ndim() - 1) != ids.shape())
        fail("embedding: output gradient {} must be ids.shape + (C) for ids {}", gy.desc(),
             ids.desc());
    const Backend be = backend_of("embedding", {&gy, &ids});
    switch (be) {
        case Backend::ref:
            return embedding_backward_ref(gy, ids, vocab);
        case Backend::cpu:
            return embedding_backward_cpu(gy, ids, vocab);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return embedding_backward_cuda(gy, ids, vocab);
#endif
        default:
            no_kernel("embedding", be);
    }
}

Tensor token_shift_forward(const Tensor& x, const Tensor& prev) {
    check_token_shift(x, prev);
    const Backend be = backend_of("token_shift", {&x, &prev});
    switch (be) {
        case Backend::ref:
            return token_shift_forward_ref(x, prev);
        case Backend::cpu:
            return token_shift_forward_cpu(x, prev);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return token_shift_forward_cuda(x, prev);
#endif
        default:
            no_kernel("token_shift", be);
    }
}

TokenShiftGrads token_shift_backward(const Tensor& gy, bool want_prev) {
    check_token_shift(gy, Tensor());
    const Backend be = backend_of(gy);
    switch (be) {
        case Backend::ref:
            return token_shift_backward_ref(gy, want_prev);
        case Backend::cpu:
            return token_shift_backward_cpu(gy, want_prev);
#ifdef GOOSE_CUDA
        case Backend::cuda:
            return token_shift_backward_cuda(gy, want_prev);
#endif
        default:
            no_kernel("token_shift", be);
    }
}

}  // namespace goose::ops
