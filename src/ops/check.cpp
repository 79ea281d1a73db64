// Front-end argument checks with messages that name the op and the tensors.
#include "goose/ops/check.h"

namespace goose::check {

void defined(const char* op, const Tensor& t, const char* what) {
    if (!t.defined()) fail("{}: {} is undefined", op, what);
}

void float_dtype(const char* op, const Tensor& t) {
    if (t.dtype() == DType::bf16 && t.device().is_cuda()) return;  // CUDA kernels compute in f32
    if (t.dtype() != DType::f32 && t.dtype() != DType::f64)
        fail("{}: expected an f32 or f64 tensor, got {} (convert with .to(DType::f32))", op,
             t.desc());
}

void stats_dtype(const char* op, const Tensor& stat, const Tensor& x, const char* what) {
    if (stat.dtype() == x.dtype() || (x.dtype() == DType::bf16 && stat.dtype() == DType::f32))
        return;
    fail("{}: {} {} must have the dtype of {} (or f32 for bf16)", op, what, stat.desc(), x.desc());
}

void index_dtype(const char* op, const Tensor& t) {
    if (t.dtype() != DType::i32 && t.dtype() != DType::i64)
        fail("{}: expected an i32 or i64 index tensor, got {}", op, t.desc());
}

void same_dtype(const char* op, const Tensor& a, const Tensor& b) {
    if (a.dtype() != b.dtype()) fail("{}: dtypes differ: {} and {}", op, a.desc(), b.desc());
}

void same_shape(const char* op, const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) fail("{}: shapes differ: {} and {}", op, a.desc(), b.desc());
}

void ndim(const char* op, const Tensor& t, int n, const char* what) {
    if (t.ndim() != n) fail("{}: {} must be {}-d, got {}", op, what, n, t.desc());
}

void ndim_between(const char* op, const Tensor& t, int lo, int hi, const char* what) {
    if (t.ndim() < lo || t.ndim() > hi)
        fail("{}: {} must have {} to {} dims, got {}", op, what, lo, hi, t.desc());
}

void dim_equals(const char* op, const Tensor& t, int dim, int64_t size, const char* what) {
    if (t.ndim() == 0 || t.size(dim) != size)
        fail("{}: {} must have size {} in dim {}, got {}", op, what, size, dim, t.desc());
}

}  // namespace goose::check
