// Argument checks shared by the front ends of the binary and select families: float operands
// of one dtype, three-way broadcasting, and the gradient's shape.
#pragma once
#include <algorithm>
#include <initializer_list>
#include <utility>

#include "goose/ops/check.h"

namespace goose::ops {

// Each tensor defined, f32 or f64, all of one dtype; `what` names it in messages.
inline void check_operands(const char* name,
                           std::initializer_list<std::pair<const Tensor*, const char*>> ts) {
    const Tensor* first = nullptr;
    for (auto [t, what] : ts) {
        check::defined(name, *t, what);
        check::float_dtype(name, *t);
        if (first) check::same_dtype(name, *first, *t);
        first = first ? first : t;
    }
}

// The broadcast shape of three tensors; the message names all three.
inline Shape broadcast3(const char* name, const Tensor& a, const Tensor& b, const Tensor& c) {
    const Shape& sa = a.shape();
    const Shape& sb = b.shape();
    const Shape& sc = c.shape();
    const int n = std::max({sa.ndim(), sb.ndim(), sc.ndim()});
    Shape out;
    for (int i = 0; i < n; ++i) {
        int64_t d = 1;
        bool ok = true;
        for (const Shape* s : {&sa, &sb, &sc}) {
            const int j = s->ndim() - n + i;
            const int64_t v = j >= 0 ? (*s)[j] : 1;
            if (v != 1 && d != 1 && v != d) ok = false;
            if (v != 1) d = v;
        }
        if (!ok)
            fail("{}: shapes cannot be broadcast together: {}, {} and {}", name, a.desc(),
                 b.desc(), c.desc());
        out.push_back(d);
    }
    return out;
}

// gy: defined, like's dtype, the output's shape.
inline void check_grad(const char* name, const Tensor& gy, const Shape& out, const Tensor& like) {
    check::defined(name, gy, "gradient");
    check::same_dtype(name, gy, like);
    if (gy.shape() != out)
        fail("{}: gradient {} does not have the output's shape {}", name, gy.desc(), out.str());
}

}  // namespace goose::ops
