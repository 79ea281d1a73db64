// Gradient proof 1 of 2: every reference backward against central finite differences in f64.
// The objective is sum_k <gy_k, y_k> with fixed random gy_k (as in run_case), so every output
// and every input element that requires grad is exercised.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "common/op_cases.h"
#include "goose/core/element.h"
#include "goose/ops/op_list.h"

namespace goose::test {
namespace {

class FiniteDifference : public ::testing::TestWithParam<OpCase> {};

double objective(const OpCase& c, std::vector<Var>& x) {
    ag::NoGradGuard ng;
    std::vector<Var> y = c.fn(x);
    Rng rng(case_seed(c), "output-grads");  // the same seeds as run_case
    double total = 0;
    for (auto& v : y) {
        Tensor gy = Tensor::randn(v.shape(), rng, DType::f64);
        if (!dtype_is_float(v.dtype())) continue;
        const auto a = v.value().to_vector(), g = gy.to_vector();
        for (size_t i = 0; i < a.size(); ++i) total += a[i] * g[i];
    }
    return total;
}

TEST_P(FiniteDifference, ReferenceBackwardMatches) {
    const OpCase& c = GetParam();
    const auto analytic = run_case(c, Backend::ref, DType::f64);
    const size_t n_out = analytic.size() - c.inputs.size();
    BackendScope scope(Backend::ref);
    std::vector<Var> x = make_inputs(c, DType::f64, false);
    for (size_t i = 0; i < x.size(); ++i) {
        const Tensor& g = analytic[n_out + i];
        if (!g.defined()) continue;
        // Perturb in place through the input's strides (inputs may be views), visiting
        // elements in row-major order like the packed analytic gradient.
        const Tensor xi = x[i].value();
        std::vector<double*> elem;
        for_each_index(xi.shape(), [&](const int64_t* idx) {
            elem.push_back(static_cast<double*>(xi.raw_data()) + offset_of(idx, xi.strides()));
        });
        const int64_t n = xi.numel();
        const int64_t step = std::max<int64_t>(1, n / c.fd_max_elems);
        const auto gv = g.to_vector();
        int bad = 0;
        for (int64_t k = 0; k < n; k += step) {
            double& e = *elem[static_cast<size_t>(k)];
            const double orig = e;
            e = orig + c.fd_eps;
            const double up = objective(c, x);
            e = orig - c.fd_eps;
            const double down = objective(c, x);
            e = orig;
            const double num = (up - down) / (2 * c.fd_eps);
            const double ana = gv[static_cast<size_t>(k)];
            if (std::abs(num - ana) > c.fd_atol + c.fd_rtol * std::abs(num) && bad++ < 5)
                ADD_FAILURE() << c.op << " " << c.label << ": d/d input " << i << "[" << k
                              << "] analytic " << ana << " numeric " << num;
        }
        EXPECT_EQ(bad, 0) << c.op << " " << c.label << " input " << i;
    }
}

std::vector<OpCase> fd_cases() {
    std::vector<OpCase> v;
    for (const auto& c : all_cases())
        if (c.fd) v.push_back(c);
    return v;
}

std::string case_name(const ::testing::TestParamInfo<OpCase>& info) {
    std::string s = info.param.op + "_" + std::to_string(info.index);
    for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
}

INSTANTIATE_TEST_SUITE_P(Ops, FiniteDifference, ::testing::ValuesIn(fd_cases()), case_name);

TEST(Coverage, EveryOpHasAFiniteDifferenceCase) {
    std::set<std::string> covered;
    for (const auto& c : fd_cases()) covered.insert(c.op);
    for (auto name : kOpNames)
        EXPECT_TRUE(covered.count(std::string(name)))
            << "op '" << name << "' has no finite-difference case";
}

}  // namespace
}  // namespace goose::test
