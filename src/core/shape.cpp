// Dims: small inline shapes and strides; broadcasting rules.
#include "goose/core/shape.h"

#include <algorithm>

#include "goose/core/error.h"

namespace goose {

Dims::Dims(std::initializer_list<int64_t> d) : Dims(std::span<const int64_t>(d.begin(), d.size())) {}

Dims::Dims(std::span<const int64_t> d) {
    if (d.size() > static_cast<size_t>(kMaxDims))
        fail("a tensor has at most {} dimensions, got {}", kMaxDims, d.size());
    n_ = static_cast<int>(d.size());
    std::copy(d.begin(), d.end(), d_.begin());
}

int64_t Dims::dim(int i) const {
    const int j = i < 0 ? i + n_ : i;
    GOOSE_ASSERT(j >= 0 && j < n_, "dim {} of {}", i, str());
    return d_[static_cast<size_t>(j)];
}

int64_t Dims::numel() const {
    int64_t p = 1;
    for (int i = 0; i < n_; ++i) p *= d_[static_cast<size_t>(i)];
    return p;
}

void Dims::push_back(int64_t v) {
    if (n_ >= kMaxDims) fail("a tensor has at most {} dimensions", kMaxDims);
    d_[static_cast<size_t>(n_++)] = v;
}

Dims Dims::without(int i) const {
    GOOSE_ASSERT(i >= 0 && i < n_);
    Dims r;
    for (int k = 0; k < n_; ++k)
        if (k != i) r.push_back(d_[static_cast<size_t>(k)]);
    return r;
}

Dims Dims::with_inserted(int i, int64_t v) const {
    GOOSE_ASSERT(i >= 0 && i <= n_);
    Dims r;
    for (int k = 0; k < n_; ++k) {
        if (k == i) r.push_back(v);
        r.push_back(d_[static_cast<size_t>(k)]);
    }
    if (i == n_) r.push_back(v);
    return r;
}

std::string Dims::str() const {
    std::string s = "[";
    for (int i = 0; i < n_; ++i) s += (i ? ", " : "") + std::to_string(d_[static_cast<size_t>(i)]);
    return s + "]";
}

bool Dims::operator==(const Dims& o) const {
    return n_ == o.n_ && std::equal(begin(), end(), o.begin());
}

Strides contiguous_strides(const Shape& s) {
    Strides st = s;
    int64_t acc = 1;
    for (int i = s.ndim() - 1; i >= 0; --i) {
        st[i] = acc;
        acc *= s[i];
    }
    return st;
}

int normalize_axis(int axis, int ndim, const char* op) {
    const int a = axis < 0 ? axis + ndim : axis;
    if (a < 0 || a >= ndim) fail("{}: axis {} is out of range for a {}-d tensor", op, axis, ndim);
    return a;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const int n = std::max(a.ndim(), b.ndim());
    std::vector<int64_t> out(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        const int ia = a.ndim() - n + i, ib = b.ndim() - n + i;
        const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da != db && da != 1 && db != 1)
            fail("{}: shapes {} and {} cannot be broadcast together", op, a.str(), b.str());
        out[static_cast<size_t>(i)] = da == 1 ? db : da;
    }
    return Shape(out);
}

}  // namespace goose
