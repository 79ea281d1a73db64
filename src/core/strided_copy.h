// Blocked strided copy between two views of one element size: dimensions merged where both
// sides are contiguous across them, memcpy of contiguous runs, tiled copies for transposes,
// OpenMP over outer rows. Used by copy_strided (core) and so by every packed copy.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "goose/core/shape.h"

namespace goose::detail {

constexpr int64_t kParallelMin = 32768;  // elements; below this one thread copies faster
constexpr int64_t kTile = 32;            // transpose tile edge (elements)

// A copy of one shape between two stride sets, dims of size 1 dropped and mergeable dims merged.
struct CopyPlan {
    int nd = 0;
    int64_t n[kMaxDims] = {};
    int64_t ds[kMaxDims] = {};  // destination strides
    int64_t ss[kMaxDims] = {};  // source strides
};

inline CopyPlan make_plan(const Shape& shape, const Strides& dst, const Strides& src) {
    CopyPlan p;
    for (int d = 0; d < shape.ndim(); ++d) {
        if (shape[d] == 1) continue;
        if (p.nd > 0) {
            const int q = p.nd - 1;  // the previous (outer) kept dim
            if (p.ds[q] == dst[d] * shape[d] && p.ss[q] == src[d] * shape[d]) {
                p.n[q] *= shape[d];
                p.ds[q] = dst[d];
                p.ss[q] = src[d];
                continue;
            }
        }
        p.n[p.nd] = shape[d];
        p.ds[p.nd] = dst[d];
        p.ss[p.nd] = src[d];
        ++p.nd;
    }
    return p;
}

// Runs body(begin, end) over [0, units) split into one contiguous chunk per thread when the
// copy is large enough to pay for the threads.
template <class Body>
void parallel_chunks(int64_t units, int64_t elements, Body body) {
    if (units < 2 || elements < kParallelMin) {
        body(int64_t(0), units);
        return;
    }
#pragma omp parallel
    {
        const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int64_t b = units * t / nt, e = units * (t + 1) / nt;
        if (b < e) body(b, e);
    }
}

// Offsets of row `r` of the row-major space n[0..m).
inline void row_offsets(int m, const int64_t* n, const int64_t* ds, const int64_t* ss, int64_t r,
                        int64_t* idx, int64_t& d, int64_t& s) {
    d = s = 0;
    for (int i = m - 1; i >= 0; --i) {
        idx[i] = r % n[i];
        r /= n[i];
        d += idx[i] * ds[i];
        s += idx[i] * ss[i];
    }
}

// Steps idx (and the offsets) to the next row of the row-major space n[0..m).
inline void next_row(int m, const int64_t* n, const int64_t* ds, const int64_t* ss, int64_t* idx,
                     int64_t& d, int64_t& s) {
    for (int i = m - 1; i >= 0; --i) {
        if (++idx[i] < n[i]) {
            d += ds[i];
            s += ss[i];
            return;
        }
        d -= (n[i] - 1) * ds[i];
        s -= (n[i] - 1) * ss[i];
        idx[i] = 0;
    }
}

// dst[...] = src[...] over `shape`, both given as element pointers plus strides.
template <class T>
void copy_typed(T* dst, const T* src, const Shape& shape, const Strides& dstr,
                const Strides& sstr) {
    const int64_t total = shape.numel();
    if (total == 0) return;
    const CopyPlan p = make_plan(shape, dstr, sstr);
    if (p.nd == 0) {
        *dst = *src;
        return;
    }
    const int in = p.nd - 1;  // innermost dim
    const int64_t len = p.n[in];

    // Transpose-like: the destination runs along the innermost dim, the source along dim k.
    int k = -1;
    if (p.ds[in] == 1 && p.ss[in] != 1)
        for (int d = 0; d < in; ++d)
            if (p.ss[d] == 1) k = d;
    if (k >= 0) {
        // Outer space: every dim but k and the innermost.
        int m = 0;
        int64_t on[kMaxDims], ods[kMaxDims], oss[kMaxDims];
        for (int d = 0; d < in; ++d)
            if (d != k) on[m] = p.n[d], ods[m] = p.ds[d], oss[m] = p.ss[d], ++m;
        const int64_t rows_k = p.n[k], tiles_k = (rows_k + kTile - 1) / kTile;
        const int64_t outer = total / (rows_k * len);
        const int64_t dk = p.ds[k], sj = p.ss[in];
        parallel_chunks(outer * tiles_k, total, [&](int64_t begin, int64_t end) {
            int64_t idx[kMaxDims];
            for (int64_t u = begin; u < end; ++u) {
                int64_t d0, s0;
                row_offsets(m, on, ods, oss, u / tiles_k, idx, d0, s0);
                const int64_t i0 = (u % tiles_k) * kTile, i1 = std::min(i0 + kTile, rows_k);
                for (int64_t j0 = 0; j0 < len; j0 += kTile) {
                    const int64_t j1 = std::min(j0 + kTile, len);
                    for (int64_t i = i0; i < i1; ++i) {
                        T* drow = dst + d0 + i * dk;
                        const T* scol = src + s0 + i;
                        for (int64_t j = j0; j < j1; ++j) drow[j] = scol[j * sj];
                    }
                }
            }
        });
        return;
    }

    // Rows of `len` elements over the outer dims 0..in-1.
    const int64_t rows = total / len;
    const int64_t dj = p.ds[in], sj = p.ss[in];
    parallel_chunks(rows, total, [&](int64_t begin, int64_t end) {
        int64_t idx[kMaxDims];
        int64_t d, s;
        row_offsets(in, p.n, p.ds, p.ss, begin, idx, d, s);
        for (int64_t r = begin; r < end; ++r) {
            if (dj == 1 && sj == 1) {
                std::memcpy(dst + d, src + s, static_cast<size_t>(len) * sizeof(T));
            } else {
                T* dp = dst + d;
                const T* sp = src + s;
                for (int64_t j = 0; j < len; ++j) dp[j * dj] = sp[j * sj];
            }
            next_row(in, p.n, p.ds, p.ss, idx, d, s);
        }
    });
}

}  // namespace goose::detail
