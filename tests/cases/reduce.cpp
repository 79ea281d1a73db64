// Cases of the reduce family: sum and mean over axis sets (last, leading, middle, several
// separate runs, all, keepdim, negative), long rows and columns (the blocked paths), a
// transposed input; max along each kind of axis (normal inputs: no ties).
#include "cases/binary_inputs.h"
#include "common/op_cases.h"
#include "goose/autograd/reduce.h"

namespace goose::test {

namespace {
std::string axes_label(const std::vector<int>& axes, bool keepdim) {
    std::string s = "axes {";
    for (size_t i = 0; i < axes.size(); ++i) {
        if (i) s += ",";
        s += std::to_string(axes[i]);
    }
    s += "}";
    if (keepdim) s += " keepdim";
    return s;
}
}  // namespace

GOOSE_OP_CASES(reduce) {
    std::vector<OpCase> v;
    struct Sum {
        Shape x;
        std::vector<int> axes;
        bool keepdim;
    };
    const Sum sums[] = {
        {Shape{1}, {}, false},
        {Shape{7}, {}, false},
        {Shape{7}, {0}, true},
        {Shape{3, 37}, {1}, false},           // last axis
        {Shape{3, 37}, {0}, false},           // leading axis
        {Shape{3, 37}, {-1}, true},
        {Shape{3, 37}, {}, true},
        {Shape{2, 5, 67}, {0, 1}, false},     // (B, T, C) -> (C): a bias gradient
        {Shape{2, 5, 67}, {1}, false},        // middle axis
        {Shape{2, 5, 67}, {0, 2}, true},      // two separate runs
        {Shape{2, 5, 67}, {2, 0}, false},     // unsorted
        {Shape{1, 5, 1}, {0, 2}, false},      // size-1 axes only
        {Shape{1, 5, 1}, {1}, true},
        {Shape{2, 3, 4, 5}, {1, 3}, false},   // runs between kept dims
        {Shape{2, 3, 4, 5}, {0, 2, 3}, false},
        {Shape{}, {}, false},                 // 0-d
        {Shape{2, 4500}, {1}, false},         // long rows: blocks of the last axis
        {Shape{9000}, {}, false},
        {Shape{600, 7}, {0}, false},          // many rows: chunks of the leading axis
        {Shape{3, 300, 37}, {1}, true},
        {Shape{3, 0, 4}, {1}, false},         // an empty reduced axis
    };
    for (const char* op : {"sum", "mean"}) {
        const bool mean = std::string(op) == "mean";
        for (const Sum& s : sums) {
            const int64_t n = s.x.numel();
            v.push_back({.op = op,
                         .label = s.x.str() + " " + axes_label(s.axes, s.keepdim),
                         .inputs = {{.shape = s.x}},
                         .fn = [s, mean](Vars& x) {
                             return Vars{mean ? ag::mean(x[0], s.axes, s.keepdim)
                                              : ag::sum(x[0], s.axes, s.keepdim)};
                         },
                         .atol = n > 1000 ? 2e-4 : 1e-5,
                         .allow_nonfinite = mean && n == 0,  // the mean of nothing is NaN
                         .fd = n > 0,
                         .fd_max_elems = n > 5000 ? 16 : 48});
        }
        v.push_back({.op = op,
                     .label = "transposed [37, 3] axes {0}",
                     .inputs = {transposed(3, 37)},
                     .fn = [mean](Vars& x) {
                         return Vars{mean ? ag::mean(x[0], {0}) : ag::sum(x[0], {0})};
                     },
                     .fd = false});
        v.push_back({.op = op,
                     .label = "transposed [37, 3] axes {1}",
                     .inputs = {transposed(3, 37)},
                     .fn = [mean](Vars& x) {
                         return Vars{mean ? ag::mean(x[0], {1}) : ag::sum(x[0], {1})};
                     },
                     .fd = false});
    }

    struct Max {
        Shape x;
        int axis;
        bool keepdim;
    };
    const Max maxes[] = {
        {Shape{1}, 0, false},
        {Shape{7}, 0, false},
        {Shape{3, 37}, 1, false},        // last axis
        {Shape{3, 37}, 0, true},         // leading axis
        {Shape{2, 5, 67}, 1, false},     // middle axis
        {Shape{2, 5, 67}, -1, true},
        {Shape{1, 5, 1}, 1, false},
        {Shape{2, 1, 37}, 1, false},     // a size-1 axis
        {Shape{40, 300}, 1, false},      // parallel rows
        {Shape{300, 40}, 0, false},      // parallel columns
    };
    for (const Max& m : maxes)
        v.push_back({.op = "max",
                     .label = m.x.str() + " axis " + std::to_string(m.axis) +
                              (m.keepdim ? " keepdim" : ""),
                     .inputs = {{.shape = m.x}},
                     .fn = [m](Vars& x) { return Vars{ag::max(x[0], m.axis, m.keepdim)}; },
                     .fd_max_elems = m.x.numel() > 5000 ? 16 : 48});
    for (int axis : {0, 1})
        v.push_back({.op = "max",
                     .label = "transposed [37, 3] axis " + std::to_string(axis),
                     .inputs = {transposed(3, 37)},
                     .fn = [axis](Vars& x) { return Vars{ag::max(x[0], axis)}; },
                     .fd = false});
    return v;
}

}  // namespace goose::test
