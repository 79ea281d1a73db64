// Op conformance: every case of tests/cases/ runs on the fast CPU backend and on the reference;
// outputs and input gradients must agree within the case's tolerance, with NaN/Inf checks.
// A coverage test fails when an op of op_list.h has no case.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "common/op_cases.h"
#include "goose/ops/op_list.h"

namespace goose::test {
namespace {

class Conformance : public ::testing::TestWithParam<OpCase> {};

void expect_close(const Tensor& fast, const Tensor& ref, const OpCase& c, const std::string& what) {
    ASSERT_EQ(fast.defined(), ref.defined()) << what;
    if (!ref.defined()) return;
    ASSERT_EQ(fast.shape(), ref.shape()) << what << ": fast " << fast.desc() << " ref " << ref.desc();
    ASSERT_EQ(fast.dtype(), ref.dtype()) << what;
    const auto f = fast.to_vector(), r = ref.to_vector();
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < r.size(); ++i) {
        if (!std::isfinite(r[i]) || !std::isfinite(f[i])) {
            EXPECT_TRUE(c.allow_nonfinite) << what << "[" << i << "] is not finite: ref " << r[i]
                                           << " fast " << f[i];
            const bool same = (std::isnan(r[i]) && std::isnan(f[i])) || r[i] == f[i];
            if (!same && bad++ < 5) ADD_FAILURE() << what << "[" << i << "]: ref " << r[i] << " fast " << f[i];
            continue;
        }
        const double d = std::abs(f[i] - r[i]);
        worst = std::max(worst, d / (c.atol + c.rtol * std::abs(r[i])));
        if (d > c.atol + c.rtol * std::abs(r[i]) && bad++ < 5)
            ADD_FAILURE() << what << "[" << i << "]: ref " << r[i] << " fast " << f[i] << " |d| " << d;
    }
    EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << r.size() << " elements outside "
                      << "atol " << c.atol << " rtol " << c.rtol;
}

TEST_P(Conformance, FastMatchesReference) {
    const OpCase& c = GetParam();
    const auto ref = run_case(c, Backend::ref, DType::f32);
    const auto fast = run_case(c, Backend::cpu, DType::f32);
    ASSERT_EQ(ref.size(), fast.size());
    const size_t n_in = c.inputs.size(), n_out = ref.size() - n_in;
    for (size_t k = 0; k < ref.size(); ++k) {
        const std::string what = k < n_out ? "output " + std::to_string(k)
                                           : "grad of input " + std::to_string(k - n_out);
        expect_close(fast[k], ref[k], c, c.op + " " + c.label + " " + what);
    }
}

std::string case_name(const ::testing::TestParamInfo<OpCase>& info) {
    std::string s = info.param.op + "_" + std::to_string(info.index);
    for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
}

INSTANTIATE_TEST_SUITE_P(Ops, Conformance, ::testing::ValuesIn(all_cases()), case_name);

TEST(Coverage, EveryOpHasAConformanceCase) {
    std::set<std::string> covered;
    for (const auto& c : all_cases()) covered.insert(c.op);
    for (auto name : kOpNames)
        EXPECT_TRUE(covered.count(std::string(name))) << "op '" << name << "' has no conformance case";
    for (const auto& c : all_cases()) {
        bool known = false;
        for (auto name : kOpNames) known = known || name == c.op;
        EXPECT_TRUE(known) << "case names unknown op '" << c.op << "' (add it to op_list.h)";
    }
}

TEST(Coverage, ShapeGridHasAwkwardSizes) {
    // The grid must include a size-1 batch/time and widths that are not multiples of 8 or 16.
    bool one = false, odd = false;
    for (const auto& c : all_cases())
        for (const auto& in : c.inputs)
            for (int d = 0; d < in.shape.ndim(); ++d) {
                one = one || in.shape[d] == 1;
                odd = odd || (in.shape[d] > 16 && in.shape[d] % 8 != 0);
            }
    EXPECT_TRUE(one);
    EXPECT_TRUE(odd);
}

}  // namespace
}  // namespace goose::test
