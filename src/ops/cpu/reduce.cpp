// Fast CPU reductions. Packed input; the reduced axes are merged into runs, and each run is one
// (O, A, I) pass: sum over A of x[o, a, i]. I == 1 (reducing the last axes): SIMD sums of
// contiguous rows, long rows split into blocks; I > 1 (leading or middle axes): rows
// accumulated into column blocks, long A split into chunks. Partial sums of blocks and chunks
// are combined in a fixed order (in double), so results do not depend on the thread count.
// Several separate runs (axes {0, 2} of (B, T, C)) are reduced one after another.
#include <algorithm>
#include <vector>

#include "goose/ops/reduce.h"
#include "ops/cpu/binary_broadcast.h"
#include "ops/cpu/simd.h"

namespace goose::ops {

namespace {
constexpr int64_t kBlock = 4096;  // contiguous elements summed per task (I == 1)
constexpr int64_t kRows = 256;    // rows accumulated per task (I > 1)
constexpr int64_t kCols = 256;    // columns per task (I > 1)
constexpr int64_t kParallelMin = 16384;

inline float contiguous_sum(const float* x, int64_t n) { return simd::sum(x, n); }
inline double contiguous_sum(const double* x, int64_t n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += x[i];
    return s;
}

// y[o, i] = scale * sum_a x[o, a, i]   x (O, A, I), y (O, I), both packed
template <class T>
void sum_oai(const T* x, T* y, int64_t O, int64_t A, int64_t I, double scale) {
    const bool par = O * A * I > kParallelMin;
    if (A == 0) {
        for (int64_t e = 0; e < O * I; ++e) y[e] = static_cast<T>(0.0 * scale);
        return;
    }
    if (I == 1) {
        const int64_t nb = (A + kBlock - 1) / kBlock;
        if (nb == 1) {
#pragma omp parallel for schedule(static) if (par)
            for (int64_t o = 0; o < O; ++o)
                y[o] = static_cast<T>(scale * static_cast<double>(contiguous_sum(x + o * A, A)));
            return;
        }
        std::vector<double> part(static_cast<size_t>(O * nb));
#pragma omp parallel for schedule(static) if (par)
        for (int64_t t = 0; t < O * nb; ++t) {
            const int64_t o = t / nb, a0 = (t % nb) * kBlock;
            part[static_cast<size_t>(t)] = contiguous_sum(x + o * A + a0, std::min(kBlock, A - a0));
        }
        for (int64_t o = 0; o < O; ++o) {
            double s = 0;
            for (int64_t b = 0; b < nb; ++b) s += part[static_cast<size_t>(o * nb + b)];
            y[o] = static_cast<T>(scale * s);
        }
        return;
    }
    const int64_t nc = (A + kRows - 1) / kRows, ncb = (I + kCols - 1) / kCols;
    std::vector<double> part(nc > 1 ? static_cast<size_t>(nc * O * I) : 0);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t t = 0; t < nc * O * ncb; ++t) {
        const int64_t c = t / (O * ncb), o = t / ncb % O, j0 = t % ncb * kCols;
        const int64_t w = std::min(kCols, I - j0), a0 = c * kRows, a1 = std::min(A, a0 + kRows);
        T acc[kCols];
        const T* row = x + (o * A + a0) * I + j0;
        for (int64_t j = 0; j < w; ++j) acc[j] = row[j];
        for (int64_t a = a0 + 1; a < a1; ++a) {
            row += I;
#pragma omp simd
            for (int64_t j = 0; j < w; ++j) acc[j] += row[j];
        }
        if (nc == 1) {
            for (int64_t j = 0; j < w; ++j)
                y[o * I + j0 + j] = static_cast<T>(scale * static_cast<double>(acc[j]));
        } else {
            double* p = part.data() + (c * O + o) * I + j0;
            for (int64_t j = 0; j < w; ++j) p[j] = acc[j];
        }
    }
    if (nc == 1) return;
    const int64_t m = O * I;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t e = 0; e < m; ++e) {
        double s = 0;
        for (int64_t c = 0; c < nc; ++c) s += part[static_cast<size_t>(c * m + e)];
        y[e] = static_cast<T>(scale * s);
    }
}

// The first index of the maximum of x[0..n) (n >= 1); the first NaN wins over everything.
template <class T>
int64_t argmax_scalar(const T* x, int64_t n) {
    int64_t arg = 0;
    for (int64_t i = 1; i < n; ++i) {
        const T b = x[arg], v = x[i];
        if (b != b) break;
        if (v > b || v != v) arg = i;
    }
    return arg;
}

inline float row_max(const float* x, int64_t n) { return simd::max_of(x, n); }
inline double row_max(const double* x, int64_t n) {
    double m = x[0];
#pragma omp simd reduction(max : m)
    for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

// Argmax of a contiguous row: a SIMD max, a vectorised check for NaN, then the first position
// of the max; rows with NaN take the scalar path.
template <class T>
int64_t row_argmax(const T* x, int64_t n) {
    const T m = row_max(x, n);
    int nan = 0;
#pragma omp simd reduction(| : nan)
    for (int64_t i = 0; i < n; ++i) nan |= x[i] != x[i];
    if (nan || m != m) return argmax_scalar(x, n);
    int64_t i = 0;
    while (x[i] != m) ++i;
    return i;
}

// The maximum over a of x[o, a, i] for one o and columns [j0, j0 + w): values and first index.
template <class T>
void max_columns(const T* x, int64_t A, int64_t I, int64_t j0, int64_t w, T* m, int64_t* arg) {
    for (int64_t j = 0; j < w; ++j) {
        m[j] = x[j0 + j];
        arg[j] = 0;
    }
    for (int64_t a = 1; a < A; ++a) {
        const T* row = x + a * I + j0;
        for (int64_t j = 0; j < w; ++j) {
            const T v = row[j], b = m[j];
            if (b == b && (v > b || v != v)) {
                m[j] = v;
                arg[j] = a;
            }
        }
    }
}

// x's dims as (O, A, I) around one axis.
void split_at(const Shape& s, int axis, int64_t& O, int64_t& A, int64_t& I) {
    O = 1;
    I = 1;
    for (int d = 0; d < axis; ++d) O *= s[d];
    for (int d = axis + 1; d < s.ndim(); ++d) I *= s[d];
    A = s[axis];
}
}  // namespace

Tensor sum_forward_cpu(const Tensor& x, std::span<const int> axes, double scale) {
    Shape keep = x.shape();
    for (int a : axes) keep[a] = 1;
    const Tensor xc = x.contiguous();
    // Merge x's dims (size-1 dims dropped) into alternating runs of kept and reduced dims.
    struct Run {
        int64_t size;
        bool reduced;
    };
    std::vector<Run> runs;
    for (int d = 0; d < x.ndim(); ++d) {
        if (x.size(d) == 1) continue;
        const bool red = std::find(axes.begin(), axes.end(), d) != axes.end();
        if (!runs.empty() && runs.back().reduced == red)
            runs.back().size *= x.size(d);
        else
            runs.push_back({x.size(d), red});
    }
    Tensor cur = xc;
    bool scaled = false;
    while (true) {
        // The last reduced run; reduced one at a time, from the innermost.
        int g = static_cast<int>(runs.size()) - 1;
        while (g >= 0 && !runs[static_cast<size_t>(g)].reduced) --g;
        if (g < 0) break;
        int64_t O = 1, I = 1;
        bool more = false;
        for (int k = 0; k < g; ++k) {
            O *= runs[static_cast<size_t>(k)].size;
            more = more || runs[static_cast<size_t>(k)].reduced;
        }
        for (size_t k = static_cast<size_t>(g) + 1; k < runs.size(); ++k) I *= runs[k].size;
        const int64_t A = runs[static_cast<size_t>(g)].size;
        Tensor next = Tensor::empty(Shape{O * I}, x.dtype());
        const double s = more ? 1.0 : scale;
        bcast::float_dispatch(x.dtype(), [&](auto tag) {
            using T = decltype(tag);
            sum_oai(cur.data<T>(), next.data<T>(), O, A, I, s);
        });
        scaled = scaled || !more;
        runs.erase(runs.begin() + g);
        if (g > 0 && static_cast<size_t>(g) < runs.size()) {  // two kept runs now touch
            runs[static_cast<size_t>(g) - 1].size *= runs[static_cast<size_t>(g)].size;
            runs.erase(runs.begin() + g);
        }
        cur = next;
    }
    if (!scaled) {  // nothing (of size > 1) reduced: y = scale * x
        Tensor next = Tensor::empty(Shape{x.numel()}, x.dtype());
        bcast::float_dispatch(x.dtype(), [&](auto tag) {
            using T = decltype(tag);
            sum_oai(cur.data<T>(), next.data<T>(), 1, 1, x.numel(), scale);
        });
        cur = next;
    }
    return cur.view(keep);
}

Tensor sum_backward_cpu(const Tensor& gy, const Shape& x_shape, double scale) {
    const Tensor gc = gy.contiguous();
    Tensor gx = Tensor::empty(x_shape, gy.dtype());
    bcast::float_dispatch(gy.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T s = static_cast<T>(scale);
        bcast::map(gx.data<T>(), x_shape, [s](T g) { return s * g; },
                   bcast::In<T>{gc.data<T>(), gc.shape()});
    });
    return gx;
}

MaxResult max_forward_cpu(const Tensor& x, int axis) {
    const Shape keep = x.shape().without(axis).with_inserted(axis, 1);
    const Tensor xc = x.contiguous();
    MaxResult r{Tensor::empty(keep, x.dtype()), Tensor::empty(keep, DType::i64)};
    int64_t O, A, I;
    split_at(x.shape(), axis, O, A, I);
    int64_t* ip = r.indices.data<int64_t>();
    const bool par = x.numel() > kParallelMin;
    bcast::float_dispatch(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* xp = xc.data<T>();
        T* vp = r.values.data<T>();
        if (I == 1) {
#pragma omp parallel for schedule(static) if (par)
            for (int64_t o = 0; o < O; ++o) {
                const int64_t a = row_argmax(xp + o * A, A);
                ip[o] = a;
                vp[o] = xp[o * A + a];
            }
            return;
        }
        const int64_t ncb = (I + kCols - 1) / kCols;
#pragma omp parallel for schedule(static) if (par)
        for (int64_t t = 0; t < O * ncb; ++t) {
            const int64_t o = t / ncb, j0 = t % ncb * kCols;
            max_columns(xp + o * A * I, A, I, j0, std::min(kCols, I - j0), vp + o * I + j0,
                        ip + o * I + j0);
        }
    });
    return r;
}

Tensor max_backward_cpu(const Tensor& gy, const Tensor& indices, const Shape& x_shape, int axis) {
    const Tensor gc = gy.contiguous(), ic = indices.contiguous();
    Tensor gx = Tensor::zeros(x_shape, gy.dtype());
    int64_t O, A, I;
    split_at(x_shape, axis, O, A, I);
    const int64_t* ip = ic.data<int64_t>();
    bcast::float_dispatch(gy.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* g = gc.data<T>();
        T* out = gx.data<T>();
#pragma omp parallel for schedule(static) if (O * I > kParallelMin)
        for (int64_t o = 0; o < O; ++o)
            for (int64_t i = 0; i < I; ++i)
                out[(o * A + ip[o * I + i]) * I + i] = g[o * I + i];
    });
    return gx;
}

Tensor sum_to_shape_cpu(const Tensor& g, const Shape& shape) {
    const std::vector<int> axes = broadcast_axes(shape, g.shape());
    return sum_forward_cpu(g, axes, 1.0).view(shape);
}

}  // namespace goose::ops
