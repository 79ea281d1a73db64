// CUDA matmul and linear on cuBLASLt (host glue; kernels in gemm_lt.cu and matmul_kernels.cu).
// Operands go to cuBLASLt as they are when each matrix is row- or column-major with unit inner
// stride and the batch dims have one uniform stride; other views are packed first. Batches fold
// into one GEMM where the memory allows (shared b, or a summed weight gradient), else run as one
// strided-batched GEMM.
#include <algorithm>
#include <stdexcept>

#include "goose/core/cuda.h"
#include "ops/cuda/gemm_lt.h"
#include "ops/cuda/matmul_cuda.h"
#include "ops/cuda/matmul_kernels.h"
#include "ops/matmul_dims.h"

namespace goose::ops {

namespace {

using gemm_lt::GemmArgs;
using gemm_lt::GemmType;

void* stream() {
    return cuda::current_stream();
}

GemmType gemm_type(DType t) {
    switch (t) {
        case DType::f32:
            return GemmType::f32;
        case DType::f64:
            return GemmType::f64;
        case DType::bf16:
            return GemmType::bf16;
        default:
            fail("matmul (cuda): dtype {} is not supported (f32, f64, bf16)", dtype_name(t));
    }
}

// Runs a helper kernel, turning a launch failure into a goose::Error.
template <class F>
void run_kernel(F&& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        fail("matmul (cuda): {}", e.what());
    }
}
// Runs a GEMM, turning a cuBLASLt failure into a goose::Error.
void run_gemm(const GemmArgs& g) {
    try {
        gemm_lt::gemm(g, stream());
    } catch (const std::runtime_error& e) {
        fail("matmul (cuda): {}", e.what());
    }
}

// A batch of matrices as cuBLASLt reads them: each row-major (rows, cols) with leading dim ld;
// the operand is that matrix, or its transpose when trans. Batch n starts at n * bstride.
struct Operand {
    Tensor t;
    int64_t rows = 0, cols = 0, ld = 1, bstride = 0;
    bool trans = false;
    const void* ptr() const { return t.raw_data(); }
    // Batch n's matrix starts right after batch n-1's rows: the batch stacks into one matrix.
    bool stacks() const { return bstride == rows * ld; }
};

// One stride S for all batch dims of x (..., R, C) such that batch n starts at n * S, or -1.
int64_t uniform_batch_stride(const Tensor& x) {
    const int nb = x.ndim() - 2;
    int64_t stride = -1, inner = 1;  // inner: batches below the dim being checked
    for (int d = nb - 1; d >= 0; --d) {
        if (x.size(d) != 1) {
            const int64_t s = x.strides()[d];
            if (stride < 0) {
                if (s % inner != 0) return -1;
                stride = s / inner;
            } else if (s != stride * inner) {
                return -1;
            }
        }
        inner *= x.size(d);
    }
    return stride < 0 ? 0 : stride;
}

// x (..., R, C) used as op(x) = trans ? xᵀ : x.
Operand operand(const Tensor& x, bool trans) {
    const int nd = x.ndim();
    const int64_t r = x.size(-2), c = x.size(-1);
    const int64_t sr = x.strides()[nd - 2], sc = x.strides()[nd - 1];
    const int64_t bs = uniform_batch_stride(x);
    if (bs >= 0) {
        if ((sc == 1 || c == 1) && (r == 1 || sr >= std::max<int64_t>(1, c)))
            return {x, r, c, r == 1 ? std::max<int64_t>(1, c) : sr, bs, trans};  // row-major
        if ((sr == 1 || r == 1) && (c == 1 || sc >= std::max<int64_t>(1, r)))
            return {x, c, r, c == 1 ? std::max<int64_t>(1, r) : sc, bs, !trans};  // column-major
    }
    const Tensor p = x.contiguous();
    return {p, r, c, std::max<int64_t>(1, c), r * c, trans};
}

size_t elem_size(DType t) {
    return dtype_size(t);
}

// out[n] (m, n) = op(X[n]) op(Y[n]) for n < batch (packed, dtype dt). A shared operand has
// one matrix for every n. With `reduce`, out (m, n) = the sum over n (accumulated in f32 for
// bf16 results).
void batched_gemm(const Operand& x, bool x_shared, const Operand& y, bool y_shared, int64_t m,
                  int64_t n, int64_t k, int64_t batch, bool reduce, DType dt, void* out) {
    const int64_t outs = reduce ? 1 : batch;
    if (m == 0 || n == 0) return;
    GemmArgs g;
    g.ab_type = g.c_type = gemm_type(dt);
    g.m = m, g.n = n, g.k = k;
    g.trans_a = x.trans, g.trans_b = y.trans;
    g.a = x.ptr(), g.lda = x.ld, g.b = y.ptr(), g.ldb = y.ld;
    g.c = out, g.ldc = n;
    if (k == 0 || batch == 0) {
        run_kernel(
            [&] { matmul_kernels::zero(out, size_t(outs * m * n) * elem_size(dt), stream()); });
        return;
    }
    if (batch == 1) {
        run_gemm(g);
        return;
    }
    if (!reduce && y_shared && !x_shared && !x.trans && x.stacks()) {
        g.m = batch * m;  // rows of every batch of x stack into one (batch*m, k) matrix
        run_gemm(g);
        return;
    }
    if (reduce && !x_shared && !y_shared && x.trans && x.stacks() && !y.trans && y.stacks()) {
        g.k = batch * k;  // sum_b X_bᵀ Y_b = [X_1; X_2; ...]ᵀ [Y_1; Y_2; ...]
        run_gemm(g);
        return;
    }
    if (reduce) {  // accumulate the products in order (f32 for bf16 results)
        Tensor acc;
        if (dt == DType::bf16) {
            acc = Tensor::empty(Shape{m, n}, DType::f32, Device::cuda());
            g.c = acc.raw_data(), g.c_type = GemmType::f32;
        }
        for (int64_t b = 0; b < batch; ++b) {
            g.a =
                static_cast<const char*>(x.ptr()) + (x_shared ? 0 : b * x.bstride) * elem_size(dt);
            g.b =
                static_cast<const char*>(y.ptr()) + (y_shared ? 0 : b * y.bstride) * elem_size(dt);
            g.beta = b == 0 ? 0 : 1;
            run_gemm(g);
        }
        if (acc.defined())
            run_kernel([&] {
                matmul_kernels::f32_to_bf16(static_cast<const float*>(acc.raw_data()), out, m * n,
                                            stream());
            });
        return;
    }
    g.batch = batch;
    g.stride_a = x_shared ? 0 : x.bstride;
    g.stride_b = y_shared ? 0 : y.bstride;
    g.stride_c = m * n;
    run_gemm(g);
}

// Product of the leading dims of x (..., C).
int64_t leading(const Tensor& x) {
    int64_t r = 1;
    for (int d = 0; d < x.ndim() - 1; ++d) r *= x.size(d);
    return r;
}

// x (..., C) as a (R, C) operand, without a copy when x is 2-D or packed.
Operand rows_of(const Tensor& x) {
    if (x.ndim() == 2) return operand(x, false);
    if (x.ndim() == 1) return operand(x.reshape(Shape{1, x.size(0)}), false);
    return operand(x.reshape(Shape{leading(x), x.size(-1)}), false);
}

}  // namespace

Tensor matmul_forward_cuda(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
    const MatmulDims d = matmul_dims(a, b, trans_a, trans_b);
    Tensor y = Tensor::empty(d.out, a.dtype(), a.device());
    batched_gemm(operand(a, trans_a), false, operand(b, trans_b), d.b_shared, d.m, d.n, d.k,
                 d.batch, false, a.dtype(), y.raw_data());
    return y;
}

MatmulGrads matmul_backward_cuda(const Tensor& gy, const Tensor& a, const Tensor& b, bool trans_a,
                                 bool trans_b, bool need_a, bool need_b) {
    const MatmulDims d = matmul_dims(a, b, trans_a, trans_b);
    const Tensor g = gy.contiguous();  // (..., M, N)
    const bool bs = d.b_shared;
    const DType dt = a.dtype();
    MatmulGrads r;
    if (need_a) {
        r.a = Tensor::empty(a.shape(), dt, a.device());
        if (!trans_a)  // da (M, K) = gy op(b)ᵀ
            batched_gemm(operand(g, false), false, operand(b, !trans_b), bs, d.m, d.k, d.n, d.batch,
                         false, dt, r.a.raw_data());
        else  // da (K, M) = op(b) gyᵀ
            batched_gemm(operand(b, trans_b), bs, operand(g, true), false, d.k, d.m, d.n, d.batch,
                         false, dt, r.a.raw_data());
    }
    if (need_b) {
        r.b = Tensor::empty(b.shape(), dt, b.device());
        if (!trans_b)  // db (K, N) = op(a)ᵀ gy
            batched_gemm(operand(a, !trans_a), false, operand(g, false), false, d.k, d.n, d.m,
                         d.batch, bs, dt, r.b.raw_data());
        else  // db (N, K) = gyᵀ op(a)
            batched_gemm(operand(g, true), false, operand(a, trans_a), false, d.n, d.k, d.m,
                         d.batch, bs, dt, r.b.raw_data());
    }
    return r;
}

Tensor linear_forward_cuda(const Tensor& x, const Tensor& w, const Tensor& b) {
    if (x.dtype() == DType::f32 && w.dtype() == DType::bf16)  // inference form: widen w
        return linear_forward_cuda(x, w.to(DType::f32), b);
    if (x.dtype() != w.dtype())
        fail("linear (cuda): x {} and w {} must share a dtype (f32, f64 or bf16) on CUDA", x.desc(),
             w.desc());
    const int64_t cout = w.size(0), cin = x.size(-1), rows = leading(x);
    Shape out = x.shape();
    out[out.ndim() - 1] = cout;
    Tensor y = Tensor::empty(out, x.dtype(), x.device());
    if (rows == 0 || cout == 0) return y;
    const Operand xo = rows_of(x), wo = operand(w, true);  // (R, Cin), (Cin, Cout)
    GemmArgs g;
    g.ab_type = g.c_type = gemm_type(x.dtype());
    g.m = rows, g.n = cout, g.k = cin;
    g.a = xo.ptr(), g.lda = xo.ld, g.trans_a = xo.trans;
    g.b = wo.ptr(), g.ldb = wo.ld, g.trans_b = wo.trans;
    g.c = y.raw_data(), g.ldc = cout;
    Tensor bc;
    if (b.defined()) {
        bc = b.contiguous();
        if (x.dtype() == DType::f64 || cin == 0) {  // bias rows first, then C += x wᵀ
            run_kernel([&] {
                matmul_kernels::fill_rows(y.raw_data(), bc.raw_data(), rows, cout, g.c_type,
                                          stream());
            });
            g.beta = 1;
        } else {
            g.bias = bc.raw_data();  // cuBLASLt's bias epilogue
        }
    }
    run_gemm(g);
    return y;
}

LinearGrads linear_backward_cuda(const Tensor& gy, const Tensor& x, const Tensor& w, bool has_bias,
                                 bool need_x, bool need_w, bool need_b) {
    if (x.dtype() == DType::f32 && w.dtype() == DType::bf16)  // dx and db only (front end)
        return linear_backward_cuda(gy, x, w.to(DType::f32), has_bias, need_x, false, need_b);
    if (x.dtype() != w.dtype())
        fail("linear (cuda): x {} and w {} must share a dtype (f32, f64 or bf16) on CUDA", x.desc(),
             w.desc());
    const int64_t cin = x.size(-1), cout = w.size(0), rows = leading(x);
    const DType dt = x.dtype();
    const Tensor g = gy.contiguous();
    const Tensor g2 = g.reshape(Shape{rows, cout});
    LinearGrads r;
    if (need_x) {  // dx (R, Cin) = gy (R, Cout) w (Cout, Cin)
        r.x = Tensor::empty(x.shape(), dt, x.device());
        batched_gemm(operand(g2, false), false, operand(w, false), false, rows, cin, cout, 1, false,
                     dt, r.x.raw_data());
    }
    if (need_w) {  // dw (Cout, Cin) = gyᵀ (Cout, R) x (R, Cin)
        r.w = Tensor::empty(w.shape(), dt, w.device());
        batched_gemm(operand(g2, true), false, rows_of(x), false, cout, cin, rows, 1, false, dt,
                     r.w.raw_data());
    }
    if (need_b && has_bias) {  // db (Cout) = column sums of gy
        r.b = Tensor::empty(Shape{cout}, dt, x.device());
        run_kernel([&] {
            matmul_kernels::column_sum(g2.raw_data(), r.b.raw_data(), rows, cout, gemm_type(dt),
                                       stream());
        });
    }
    return r;
}

}  // namespace goose::ops
