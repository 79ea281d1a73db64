// Autograd functions of layer_norm, group_norm and l2_normalize. The norms save the per-row
// (per-group) mean and rstd; w and b join the tape only when defined.
#include "goose/autograd/norm.h"

namespace goose::ag {

namespace {
Tensor value_or_none(const Var& v) { return v.defined() ? v.value() : Tensor(); }

// Records a layer_norm or group_norm (groups 0: layer_norm) whose forward gave f.
Var record_norm(const char* op, const Var& x, int groups, const Var& w, const Var& b,
                ops::NormForward f) {
    std::vector<Var> inputs{x};
    int iw = -1, ib = -1;
    if (w.defined()) {
        iw = static_cast<int>(inputs.size());
        inputs.push_back(w);
    }
    if (b.defined()) {
        ib = static_cast<int>(inputs.size());
        inputs.push_back(b);
    }
    return record(op, std::move(inputs), std::move(f.y),
                  [xv = x.value(), wv = value_or_none(w), mean = std::move(f.mean),
                   rstd = std::move(f.rstd), groups, iw, ib](GradIO& io) {
                      const bool need_dw = iw >= 0 && io.needs(iw);
                      const bool need_db = ib >= 0 && io.needs(ib);
                      ops::NormGrads g =
                          groups == 0
                              ? ops::layer_norm_backward(io.gy(), xv, wv, mean, rstd, need_dw,
                                                         need_db)
                              : ops::group_norm_backward(io.gy(), xv, groups, wv, mean, rstd,
                                                         need_dw, need_db);
                      io.set(0, std::move(g.dx));
                      if (need_dw) io.set(iw, std::move(g.dw));
                      if (need_db) io.set(ib, std::move(g.db));
                  });
}
}  // namespace

Var layer_norm(const Var& x, const Var& w, const Var& b, double eps) {
    ops::NormForward f =
        ops::layer_norm_forward(x.value(), value_or_none(w), value_or_none(b), eps);
    return record_norm("layer_norm", x, 0, w, b, std::move(f));
}

Var group_norm(const Var& x, int groups, const Var& w, const Var& b, double eps) {
    ops::NormForward f =
        ops::group_norm_forward(x.value(), groups, value_or_none(w), value_or_none(b), eps);
    return record_norm("group_norm", x, groups, w, b, std::move(f));
}

Var l2_normalize(const Var& x, double eps) {
    Tensor y = ops::l2_normalize_forward(x.value(), eps);
    return record("l2_normalize", {x}, std::move(y), [xv = x.value(), eps](GradIO& io) {
        io.set(0, ops::l2_normalize_backward(io.gy(), xv, eps));
    });
}

}  // namespace goose::ag
