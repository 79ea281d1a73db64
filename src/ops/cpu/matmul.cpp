// Fast CPU matmul and linear on OpenBLAS. A view whose matrices are row- or column-major with
// unit inner stride goes to BLAS as it is (CblasTrans and the right leading dim); other views
// are packed first. Batches fold into one GEMM where the memory allows, else loop (OpenMP
// over the batch when each GEMM is small). OpenBLAS runs on the calling thread only: a large
// GEMM is split into blocks of output rows (or columns) over Goose's OpenMP threads, so one
// pool of threads exists. linear with bf16 weights: a direct kernel for a few rows (decoding),
// else the weights widened to f32 and the GEMM.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "goose/core/threads.h"
#include "goose/ops/matmul.h"
#include "ops/cpu/simd.h"
#include "ops/matmul_dims.h"

namespace goose::ops {

namespace {
// Below this M*N*K a batch of GEMMs runs with threads over the batch, each GEMM on one thread.
constexpr int64_t kSmallGemm = int64_t(1) << 18;
// Multiply-adds of one GEMM per thread below which splitting it costs more than it saves: 2^20
// take ~20 us on one core; the LSTM's per-step 64x256x64 products ran slower split in two
// (measured on 2 cores), the ICL models' 1408-row products gain from it.
constexpr int64_t kGemmPartMin = int64_t(1) << 20;
// The same for one row (a GEMV, decoding): it streams the weights, so threads pay off sooner
// (a 768x768 decode GEMV on 2 threads: 0.046 ms, on one: 0.065 ms).
constexpr int64_t kGemvPartMin = int64_t(1) << 17;

// OpenBLAS's own threads would spin between calls beside OpenMP's and, with as many threads
// as cores, fight them for the cores (measured: the ICL training step ~10x slower on 2 threads
// than on 1). Every entry point turns them off; Goose threads the GEMMs itself.
void blas_on_caller() {
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

// C (M, N) = alpha op(A) op(B) + beta C, row-major, on the calling thread.
void gemm_serial(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    if (m == 1) {  // one row (decoding): a GEMV reads the weights once at full bandwidth
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, static_cast<blasint>(tb ? n : k),
                    static_cast<blasint>(tb ? k : n), alpha, b, static_cast<blasint>(ldb), a,
                    static_cast<blasint>(ta ? lda : 1), beta, c, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
                static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
                static_cast<blasint>(ldc));
}
void gemm_serial(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
    if (m == 1) {
        cblas_dgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, static_cast<blasint>(tb ? n : k),
                    static_cast<blasint>(tb ? k : n), alpha, b, static_cast<blasint>(ldb), a,
                    static_cast<blasint>(ta ? lda : 1), beta, c, 1);
        return;
    }
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
                static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
                static_cast<blasint>(ldc));
}
// gemm_serial split into blocks of C over the OpenMP threads (rows when M >= N, else columns;
// K is never split, so every element sums in the same order as on one thread). One thread
// inside a parallel region or for a small product.
template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
    const int64_t work = m * n * k;
    const int64_t part_min = m == 1 ? kGemvPartMin : kGemmPartMin;
    const int64_t parts = omp_in_parallel() ? 1
                                            : std::min<int64_t>(num_threads(), work / part_min);
    if (parts <= 1) {
        gemm_serial(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    const bool by_rows = m >= n;
    const int64_t len = by_rows ? m : n;
    const int64_t chunk = ((len + parts - 1) / parts + 15) & ~int64_t(15);  // whole 16-blocks
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(parts))
    for (int64_t p = 0; p < parts; ++p) {
        const int64_t lo = std::min(len, p * chunk), hi = std::min(len, lo + chunk);
        if (lo >= hi) continue;
        if (by_rows)  // rows lo..hi of op(A) and of C
            gemm_serial(ta, tb, hi - lo, n, k, alpha, ta ? a + lo : a + lo * lda, lda, b, ldb,
                        beta, c + lo * ldc, ldc);
        else  // columns lo..hi of op(B) and of C
            gemm_serial(ta, tb, m, hi - lo, k, alpha, a, lda, tb ? b + lo * ldb : b + lo, ldb,
                        beta, c + lo, ldc);
    }
}

// y (N) = A (M, N)ᵀ x (M): column sums when x is all ones.
void gemv_t(int64_t m, int64_t n, const float* a, int64_t lda, const float* x, float* y) {
    cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<blasint>(m), static_cast<blasint>(n), 1.f, a,
                static_cast<blasint>(lda), x, 1, 0.f, y, 1);
}
void gemv_t(int64_t m, int64_t n, const double* a, int64_t lda, const double* x, double* y) {
    cblas_dgemv(CblasRowMajor, CblasTrans, static_cast<blasint>(m), static_cast<blasint>(n), 1.0, a,
                static_cast<blasint>(lda), x, 1, 0.0, y, 1);
}

// A batch of matrices as BLAS reads them. Each is stored row-major as (rows, cols) with
// leading dim `ld` in `t` (the input view, or a packed copy); the operand is that matrix, or
// its transpose when `trans`.
struct Operand {
    Tensor t;
    int64_t rows = 0, cols = 0, ld = 1;
    bool trans = false;

    // Element offset of batch n's matrix (n over t's batch dims).
    int64_t offset(int64_t n) const {
        int64_t off = 0;
        for (int d = t.ndim() - 3; d >= 0; --d) {
            off += (n % t.size(d)) * t.strides()[d];
            n /= t.size(d);
        }
        return off;
    }
    // Batch n's matrix starts at n * rows * ld, so the batch stacks into one (batch*rows, cols).
    bool stacks() const {
        int64_t expect = rows * ld;
        for (int d = t.ndim() - 3; d >= 0; --d) {
            if (t.size(d) != 1 && t.strides()[d] != expect) return false;
            expect *= t.size(d);
        }
        return true;
    }
    template <class T>
    const T* at(int64_t n) const {
        return t.data<T>() + offset(n);
    }
};

// x (..., R, C) used as op(x) = trans ? xᵀ : x.
Operand operand(const Tensor& x, bool trans) {
    const int nd = x.ndim();
    const int64_t r = x.size(-2), c = x.size(-1);
    const int64_t sr = x.strides()[nd - 2], sc = x.strides()[nd - 1];
    if ((sc == 1 || c == 1) && (r == 1 || sr >= std::max<int64_t>(1, c)))
        return {x, r, c, r == 1 ? std::max<int64_t>(1, c) : sr, trans};  // row-major
    if ((sr == 1 || r == 1) && (c == 1 || sc >= std::max<int64_t>(1, r)))
        return {x, c, r, c == 1 ? std::max<int64_t>(1, r) : sc, !trans};  // column-major
    const Tensor p = x.contiguous();
    return {p, r, c, std::max<int64_t>(1, c), trans};
}

// out[n] (m, n) = op(X[n]) (m, k) op(Y[n]) (k, n) for n < batch, packed. A shared operand
// (x_shared, y_shared) has one matrix for every n. With `reduce`, out (m, n) = the sum over n.
template <class T>
void batched_gemm(const Operand& x, bool x_shared, const Operand& y, bool y_shared, int64_t m,
                  int64_t n, int64_t k, int64_t batch, bool reduce, T* out) {
    GOOSE_ASSERT(!(x_shared && y_shared), "batched_gemm: at most one shared operand");
    const int64_t outs = reduce ? 1 : batch;
    if (m == 0 || n == 0) return;
    if (k == 0 || batch == 0) {
        std::memset(out, 0, static_cast<size_t>(outs * m * n) * sizeof(T));
        return;
    }
    if (batch == 1) {
        gemm(x.trans, y.trans, m, n, k, T(1), x.at<T>(0), x.ld, y.at<T>(0), y.ld, T(0), out, n);
        return;
    }
    if (!reduce && y_shared && !x_shared && !x.trans && x.stacks()) {
        // Rows of every batch of x stack into one (batch*m, k) matrix.
        gemm(false, y.trans, batch * m, n, k, T(1), x.at<T>(0), x.ld, y.at<T>(0), y.ld, T(0), out,
             n);
        return;
    }
    if (reduce && !x_shared && !y_shared && x.trans && x.stacks() && !y.trans && y.stacks()) {
        // sum_b X_bᵀ Y_b = [X_1; X_2; ...]ᵀ [Y_1; Y_2; ...]: one GEMM with inner size batch*k.
        gemm(true, false, m, n, batch * k, T(1), x.at<T>(0), x.ld, y.at<T>(0), y.ld, T(0), out, n);
        return;
    }
    if (reduce) {  // accumulate in order: deterministic, BLAS threads each product
        for (int64_t b = 0; b < batch; ++b)
            gemm(x.trans, y.trans, m, n, k, T(1), x.at<T>(x_shared ? 0 : b), x.ld,
                 y.at<T>(y_shared ? 0 : b), y.ld, b == 0 ? T(0) : T(1), out, n);
        return;
    }
    const bool small = m * n * k <= kSmallGemm;
#pragma omp parallel for schedule(static) if (small && batch > 1)
    for (int64_t b = 0; b < batch; ++b)
        gemm(x.trans, y.trans, m, n, k, T(1), x.at<T>(x_shared ? 0 : b), x.ld,
             y.at<T>(y_shared ? 0 : b), y.ld, T(0), out + b * m * n, n);
}

template <class T>
Tensor forward_typed(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
    const MatmulDims d = matmul_dims(a, b, trans_a, trans_b);
    Tensor y = Tensor::empty(d.out, a.dtype());
    batched_gemm<T>(operand(a, trans_a), false, operand(b, trans_b), d.b_shared, d.m, d.n, d.k,
                    d.batch, false, y.data<T>());
    return y;
}

template <class T>
MatmulGrads backward_typed(const Tensor& gy, const Tensor& a, const Tensor& b, bool trans_a,
                           bool trans_b, bool need_a, bool need_b) {
    const MatmulDims d = matmul_dims(a, b, trans_a, trans_b);
    const Tensor g = gy.contiguous();  // (..., M, N)
    const bool bs = d.b_shared;
    MatmulGrads r;
    if (need_a) {
        r.a = Tensor::empty(a.shape(), a.dtype());
        if (!trans_a)  // da (M, K) = gy op(b)ᵀ
            batched_gemm<T>(operand(g, false), false, operand(b, !trans_b), bs, d.m, d.k, d.n,
                            d.batch, false, r.a.data<T>());
        else  // da (K, M) = op(b) gyᵀ
            batched_gemm<T>(operand(b, trans_b), bs, operand(g, true), false, d.k, d.m, d.n,
                            d.batch, false, r.a.data<T>());
    }
    if (need_b) {
        r.b = Tensor::empty(b.shape(), b.dtype());
        if (!trans_b)  // db (K, N) = op(a)ᵀ gy
            batched_gemm<T>(operand(a, !trans_a), false, operand(g, false), false, d.k, d.n, d.m,
                            d.batch, bs, r.b.data<T>());
        else  // db (N, K) = gyᵀ op(a)
            batched_gemm<T>(operand(g, true), false, operand(a, trans_a), false, d.n, d.k, d.m,
                            d.batch, bs, r.b.data<T>());
    }
    return r;
}

// Product of the leading dims of x (..., C): the rows of x seen as a matrix.
int64_t leading(const Tensor& x) {
    int64_t r = 1;
    for (int d = 0; d < x.ndim() - 1; ++d) r *= x.size(d);
    return r;
}

// x (..., Cin) as a (R, Cin) operand, without a copy when x is 2-D or packed.
Operand rows_of(const Tensor& x) {
    if (x.ndim() == 2) return operand(x, false);
    return operand(x.reshape(Shape{leading(x), x.size(-1)}), false);
}

template <class T>
Tensor linear_forward_typed(const Tensor& x, const Tensor& w, const Tensor& b) {
    const int64_t cout = w.size(0);
    Shape out = x.shape();
    out[out.ndim() - 1] = cout;
    Tensor y = Tensor::empty(out, x.dtype());
    const Operand xo = rows_of(x), wo = operand(w, true);  // (R, Cin), (Cin, Cout)
    const int64_t rows = leading(x);
    if (rows == 0 || cout == 0) return y;
    T* yp = y.data<T>();
    if (!b.defined()) {
        batched_gemm<T>(xo, false, wo, false, rows, cout, x.size(-1), 1, false, yp);
        return y;
    }
    const Tensor bc = b.contiguous();
    const T* bp = bc.data<T>();
#pragma omp parallel for schedule(static) if (rows * cout > 65536)
    for (int64_t r = 0; r < rows; ++r) std::memcpy(yp + r * cout, bp, sizeof(T) * size_t(cout));
    if (x.size(-1) > 0)
        gemm(xo.trans, wo.trans, rows, cout, x.size(-1), T(1), xo.at<T>(0), xo.ld, wo.at<T>(0),
             wo.ld, T(1), yp, cout);
    return y;
}

template <class T>
LinearGrads linear_backward_typed(const Tensor& gy, const Tensor& x, const Tensor& w, bool need_x,
                                  bool need_w, bool need_b) {
    const int64_t cin = x.size(-1), cout = w.size(0);
    const int64_t rows = leading(x);
    const Tensor g = gy.contiguous();
    const Operand go(operand(g.reshape(Shape{rows, cout}), false));
    LinearGrads r;
    if (need_x) {  // dx (R, Cin) = gy (R, Cout) w (Cout, Cin)
        r.x = Tensor::empty(x.shape(), x.dtype());
        batched_gemm<T>(go, false, operand(w, false), false, rows, cin, cout, 1, false,
                        r.x.data<T>());
    }
    if (need_w) {  // dw (Cout, Cin) = gyᵀ (Cout, R) x (R, Cin)
        r.w = Tensor::empty(w.shape(), w.dtype());
        batched_gemm<T>(operand(g.reshape(Shape{rows, cout}), true), false, rows_of(x), false, cout,
                        cin, rows, 1, false, r.w.data<T>());
    }
    if (need_b) {  // db (Cout) = gyᵀ 1
        r.b = Tensor::zeros(Shape{cout}, gy.dtype());
        if (rows > 0 && cout > 0) {
            const std::vector<T> ones(static_cast<size_t>(rows), T(1));
            gemv_t(rows, cout, g.data<T>(), cout, ones.data(), r.b.data<T>());
        }
    }
    return r;
}

// ---- bf16 weights (f32 x) ----

// Up to this many rows of x (decoding), linear with bf16 weights runs the direct kernel, which
// widens each weight again for every row; beyond, w is widened once into a temporary and the
// f32 GEMM runs (prefill: the widening is shared by many rows).
constexpr int64_t kBf16DirectRows = 16;  // measured: the direct kernel beats widening + GEMM up to ~16 rows
// Rows of w per OpenMP chunk in the direct kernel, and the weight count (Cout * Cin) from which
// it runs in parallel.
constexpr int64_t kBf16ChunkRows = 64;
constexpr int64_t kBf16Parallel = int64_t(1) << 16;

// The bf16 elements of t (CPU).
const uint16_t* bf16_data(const Tensor& t) {
    return static_cast<const uint16_t*>(t.raw_data());
}

// w (Cout, Cin) bf16, any strides -> packed f32 copy (a pool-allocated temporary).
Tensor widen_bf16(const Tensor& w) {
    const Tensor wc = w.contiguous();
    Tensor wf = Tensor::empty(w.shape(), DType::f32);
    const uint16_t* src = bf16_data(wc);
    float* dst = wf.data<float>();
    const int64_t n = wc.numel();
    constexpr int64_t kChunk = int64_t(1) << 14;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 4)
    for (int64_t c = 0; c < chunks; ++c) {
        const int64_t end = std::min(n, (c + 1) * kChunk);
        int64_t i = c * kChunk;
        for (; i + simd::kLanes <= end; i += simd::kLanes)
            simd::store(dst + i, simd::load_bf16(src + i));
        for (; i < end; ++i) dst[i] = simd::bf16_to_f32(src[i]);
    }
    return wf;
}

// y (M, Cout) = x (M, Cin) wᵀ + b for a few rows M: each output is a dot product of a row of x
// with a row of w widened on the fly, so w is read once from memory (OpenMP over rows of w).
Tensor linear_bf16_direct(const Tensor& x, const Tensor& w, const Tensor& b) {
    const int64_t cin = x.size(-1), cout = w.size(0), rows = leading(x);
    Shape out = x.shape();
    out[out.ndim() - 1] = cout;
    Tensor y = Tensor::empty(out, DType::f32);
    if (rows == 0 || cout == 0) return y;
    const Tensor xc = x.contiguous();                                        // (M, Cin)
    const Tensor wc = w.strides()[1] == 1 || cin <= 1 ? w : w.contiguous();  // unit inner stride
    const int64_t ldw = wc.strides()[0];
    const Tensor bc = b.defined() ? b.contiguous() : Tensor();
    const float* xp = xc.data<float>();
    const uint16_t* wp = bf16_data(wc);
    const float* bp = bc.defined() ? bc.data<float>() : nullptr;
    float* yp = y.data<float>();
    const int64_t chunks = (cout + kBf16ChunkRows - 1) / kBf16ChunkRows;
#pragma omp parallel for schedule(static) if (cout * cin > kBf16Parallel && chunks > 1)
    for (int64_t c = 0; c < chunks; ++c) {
        const int64_t end = std::min(cout, (c + 1) * kBf16ChunkRows);
        for (int64_t o = c * kBf16ChunkRows; o < end; ++o) {
            const uint16_t* wr = wp + o * ldw;
            const float bias = bp ? bp[o] : 0.f;
            for (int64_t r = 0; r < rows; ++r)
                yp[r * cout + o] = simd::dot_bf16(xp + r * cin, wr, cin) + bias;
        }
    }
    return y;
}

Tensor linear_forward_bf16(const Tensor& x, const Tensor& w, const Tensor& b) {
    if (leading(x) <= kBf16DirectRows) return linear_bf16_direct(x, w, b);
    return linear_forward_typed<float>(x, widen_bf16(w), b);
}
}  // namespace

Tensor matmul_forward_cpu(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
    blas_on_caller();
    return a.dtype() == DType::f32 ? forward_typed<float>(a, b, trans_a, trans_b)
                                   : forward_typed<double>(a, b, trans_a, trans_b);
}

MatmulGrads matmul_backward_cpu(const Tensor& gy, const Tensor& a, const Tensor& b, bool trans_a,
                                bool trans_b, bool need_a, bool need_b) {
    blas_on_caller();
    return a.dtype() == DType::f32
               ? backward_typed<float>(gy, a, b, trans_a, trans_b, need_a, need_b)
               : backward_typed<double>(gy, a, b, trans_a, trans_b, need_a, need_b);
}

Tensor linear_forward_cpu(const Tensor& x, const Tensor& w, const Tensor& b) {
    blas_on_caller();
    if (w.dtype() == DType::bf16) return linear_forward_bf16(x, w, b);
    return x.dtype() == DType::f32 ? linear_forward_typed<float>(x, w, b)
                                   : linear_forward_typed<double>(x, w, b);
}

LinearGrads linear_backward_cpu(const Tensor& gy, const Tensor& x, const Tensor& w, bool has_bias,
                                bool need_x, bool need_w, bool need_b) {
    blas_on_caller();
    need_b = need_b && has_bias;
    if (w.dtype() == DType::bf16)  // dx = gy w with w widened; no dw (checked by the front end)
        return linear_backward_typed<float>(gy, x, need_x ? widen_bf16(w) : w, need_x, false,
                                            need_b);
    return x.dtype() == DType::f32
               ? linear_backward_typed<float>(gy, x, w, need_x, need_w, need_b)
               : linear_backward_typed<double>(gy, x, w, need_x, need_w, need_b);
}

}  // namespace goose::ops
