// ICL non-parametric baselines: 3-nearest-neighbours (uniform weights) and the zero estimator.
#include <algorithm>
#include <numeric>
#include <utility>
#include <vector>

#include "icl/baselines_common.h"

namespace goose::icl::detail {
namespace {

// Mean of the y of the min(i, 3) earlier x closest to x_i (Euclidean); ties go to the lower
// index.
class Knn3 final : public PromptBaseline {
public:
    std::string name() const override { return "knn3"; }

protected:
    void predict_prompt(const Prompt& p, double* out) const override {
        constexpr int64_t kNeighbours = 3;
        std::vector<std::pair<double, int64_t>> dist;  // (squared distance, index)
        for (int64_t i = 1; i < p.n; ++i) {
            dist.clear();
            const double* q = p.row(i);
            for (int64_t j = 0; j < i; ++j) {
                const double* xj = p.row(j);
                double s = 0;
                for (int64_t k = 0; k < p.d; ++k) s += (xj[k] - q[k]) * (xj[k] - q[k]);
                dist.emplace_back(s, j);
            }
            const int64_t k = std::min(i, kNeighbours);
            std::partial_sort(dist.begin(), dist.begin() + k, dist.end());  // pair order: ties
            double s = 0;                                                   // by lower index
            for (int64_t t = 0; t < k; ++t) s += p.y[dist[t].second];
            out[i] = s / double(k);
        }
    }
};

class Zero final : public PromptBaseline {
public:
    std::string name() const override { return "zero"; }

protected:
    void predict_prompt(const Prompt& p, double* out) const override {
        std::fill(out, out + p.n, 0.0);
    }
};

}  // namespace

std::unique_ptr<Baseline> make_knn3() { return std::make_unique<Knn3>(); }
std::unique_ptr<Baseline> make_zero() { return std::make_unique<Zero>(); }

}  // namespace goose::icl::detail
