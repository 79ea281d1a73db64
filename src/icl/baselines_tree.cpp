// ICL tree baseline: a greedy CART regression tree (squared error), as scikit-learn's
// DecisionTreeRegressor with min_samples_split 2 and min_samples_leaf 1, refitted per position.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "icl/baselines_common.h"

namespace goose::icl::detail {
namespace {

struct Node {
    int64_t feature = -1;  // -1: leaf
    double threshold = 0;  // x[feature] <= threshold goes left
    double value = 0;      // leaf: mean y
    int64_t left = -1, right = -1;
};

// Builds the tree over rows idx of the prompt. At each node every feature is scanned in sorted
// order; a split between two distinct consecutive values (threshold at their midpoint) that
// minimises the children's summed squared error wins (first feature, then lowest threshold, on
// ties). A node is a leaf at max_depth, with fewer than 2 rows, or when its rows' y are equal.
class TreeBuilder {
public:
    TreeBuilder(const Prompt& p, int max_depth) : p_(p), max_depth_(max_depth) {}

    std::vector<Node> build(int64_t m) {
        nodes_.clear();
        std::vector<int64_t> idx(static_cast<size_t>(m));
        std::iota(idx.begin(), idx.end(), 0);
        grow(idx, 0);
        return std::move(nodes_);
    }

private:
    int64_t grow(std::vector<int64_t>& idx, int depth) {
        const int64_t id = int64_t(nodes_.size());
        nodes_.emplace_back();
        const double cnt = double(idx.size());
        double sum = 0, sum_sq = 0;
        for (int64_t j : idx) {
            sum += p_.y[j];
            sum_sq += p_.y[j] * p_.y[j];
        }
        nodes_[id].value = sum / cnt;
        const double sse = sum_sq - sum * sum / cnt;
        const bool depth_left = max_depth_ < 0 || depth < max_depth_;
        if (!depth_left || idx.size() < 2 || sse <= 1e-12 * std::max(1.0, sum_sq)) return id;

        double best = sse;  // a split must lower the squared error
        int64_t best_f = -1;
        double best_t = 0;
        std::vector<int64_t> order(idx);
        for (int64_t f = 0; f < p_.d; ++f) {
            std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
                const double xa = p_.x[a * p_.d + f], xb = p_.x[b * p_.d + f];
                return xa < xb || (xa == xb && a < b);
            });
            double ls = 0, lsq = 0;
            for (size_t t = 0; t + 1 < order.size(); ++t) {
                const double yv = p_.y[order[t]];
                ls += yv;
                lsq += yv * yv;
                const double xa = p_.x[order[t] * p_.d + f], xb = p_.x[order[t + 1] * p_.d + f];
                if (!(xb > xa + 1e-7)) continue;  // scikit-learn's FEATURE_THRESHOLD
                const double nl = double(t + 1), nr = cnt - nl;
                const double rs = sum - ls, rsq = sum_sq - lsq;
                const double child = (lsq - ls * ls / nl) + (rsq - rs * rs / nr);
                if (child < best - 1e-12 * std::max(1.0, sum_sq)) {
                    best = child;
                    best_f = f;
                    best_t = 0.5 * (xa + xb);
                    if (best_t == xb) best_t = xa;  // midpoint rounded up: keep xa on the left
                }
            }
        }
        if (best_f < 0) return id;
        std::vector<int64_t> left, right;
        for (int64_t j : idx) (p_.x[j * p_.d + best_f] <= best_t ? left : right).push_back(j);
        idx.clear();
        idx.shrink_to_fit();
        nodes_[id].feature = best_f;
        nodes_[id].threshold = best_t;
        const int64_t l = grow(left, depth + 1);
        const int64_t r = grow(right, depth + 1);
        nodes_[id].left = l;
        nodes_[id].right = r;
        return id;
    }

    const Prompt& p_;
    int max_depth_;
    std::vector<Node> nodes_;
};

double evaluate(const std::vector<Node>& nodes, const double* x) {
    int64_t id = 0;
    while (nodes[id].feature >= 0)
        id = x[nodes[id].feature] <= nodes[id].threshold ? nodes[id].left : nodes[id].right;
    return nodes[id].value;
}

class Tree final : public PromptBaseline {
public:
    explicit Tree(int max_depth) : max_depth_(max_depth) {}
    std::string name() const override { return "tree"; }

protected:
    void predict_prompt(const Prompt& p, double* out) const override {
        TreeBuilder builder(p, max_depth_);
        for (int64_t i = 1; i < p.n; ++i) out[i] = evaluate(builder.build(i), p.row(i));
    }

private:
    int max_depth_;
};

}  // namespace

std::unique_ptr<Baseline> make_tree(const BaselineOptions& o) {
    return std::make_unique<Tree>(o.tree_max_depth);
}

}  // namespace goose::icl::detail
