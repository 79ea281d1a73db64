// ICL XGBoost baseline: gradient-boosted trees through the libxgboost C API, fitted per prompt
// and per position (spec §4.2: XGBRegressor() with library defaults).
//
// Settings: `xgb_rounds` (100 = XGBRegressor's n_estimators) calls of XGBoosterUpdateOneIter,
// objective reg:squarederror, nthread 1 (prompts already run in parallel), verbosity 0; all else
// is the C library's default, which for libxgboost 1.7 is: booster gbtree, eta 0.3,
// max_depth 6, min_child_weight 1, gamma 0, subsample 1, lambda 1, alpha 0, base_score 0.5,
// tree_method auto. Training rows are converted to float, as XGBoost stores them.
#include <xgboost/c_api.h>

#include <limits>
#include <string>
#include <vector>

#include "goose/core/error.h"
#include "icl/baselines_common.h"

namespace goose::icl::detail {
namespace {

void xgb_check(int rc, const char* what) {
    if (rc != 0) fail("icl baseline xgboost: {} failed: {}", what, XGBGetLastError());
}

struct DMatrix {
    DMatrixHandle h = nullptr;
    DMatrix(const std::vector<float>& data, int64_t rows, int64_t cols) {
        xgb_check(XGDMatrixCreateFromMat_omp(data.data(), bst_ulong(rows), bst_ulong(cols),
                                             std::numeric_limits<float>::quiet_NaN(), &h, 1),
                  "XGDMatrixCreateFromMat_omp");
    }
    ~DMatrix() {
        if (h) XGDMatrixFree(h);
    }
    DMatrix(const DMatrix&) = delete;
    DMatrix& operator=(const DMatrix&) = delete;
};

struct Booster {
    BoosterHandle h = nullptr;
    explicit Booster(const DMatrix& train) {
        xgb_check(XGBoosterCreate(&train.h, 1, &h), "XGBoosterCreate");
    }
    ~Booster() {
        if (h) XGBoosterFree(h);
    }
    Booster(const Booster&) = delete;
    Booster& operator=(const Booster&) = delete;
    void set(const char* key, const char* value) {
        xgb_check(XGBoosterSetParam(h, key, value), "XGBoosterSetParam");
    }
};

class XGBoost final : public PromptBaseline {
public:
    explicit XGBoost(int64_t rounds) : rounds_(rounds) {
        GOOSE_CHECK(rounds > 0, "icl baseline xgboost: xgb_rounds must be > 0, got {}", rounds);
    }
    std::string name() const override { return "xgboost"; }

protected:
    void predict_prompt(const Prompt& p, double* out) const override {
        const int64_t d = p.d;
        std::vector<float> x(p.x, p.x + p.n * d), y(p.y, p.y + p.n), q;
        std::vector<float> rows;
        for (int64_t i = 1; i < p.n; ++i) {
            rows.assign(x.begin(), x.begin() + i * d);
            DMatrix train(rows, i, d);
            xgb_check(XGDMatrixSetFloatInfo(train.h, "label", y.data(), bst_ulong(i)),
                      "XGDMatrixSetFloatInfo(label)");
            Booster booster(train);
            booster.set("objective", "reg:squarederror");
            booster.set("nthread", "1");
            booster.set("verbosity", "0");
            for (int64_t r = 0; r < rounds_; ++r)
                xgb_check(XGBoosterUpdateOneIter(booster.h, int(r), train.h),
                          "XGBoosterUpdateOneIter");
            q.assign(x.begin() + i * d, x.begin() + (i + 1) * d);
            DMatrix query(q, 1, d);
            bst_ulong len = 0;
            const float* result = nullptr;
            xgb_check(XGBoosterPredict(booster.h, query.h, 0, 0, 0, &len, &result),
                      "XGBoosterPredict");
            GOOSE_CHECK(len == 1, "icl baseline xgboost: expected 1 prediction, got {}", len);
            out[i] = double(result[0]);
        }
    }

private:
    int64_t rounds_;
};

}  // namespace

std::unique_ptr<Baseline> make_xgboost(const BaselineOptions& o) {
    return std::make_unique<XGBoost>(o.xgb_rounds);
}

}  // namespace goose::icl::detail
