// Op conformance on CUDA: every case of tests/cases/ runs with its inputs on the GPU
// (Backend::cuda) in f32 and in bf16, outputs and input gradients compared with the reference
// (Backend::ref, f32, on the same bf16-rounded inputs for the bf16 run). A case whose op has no
// CUDA kernel yet (or no bf16 support yet) is skipped and listed at the end, not failed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <set>

#include "common/op_cases.h"
#include "cuda/cuda_test_util.h"

namespace goose::test {
namespace {

struct Param {
    const OpCase* c;
    DType dtype;
};

// Ops seen per status, printed after the run.
struct Summary {
    std::map<std::string, std::set<std::string>> not_yet;  // "op dtype" -> reasons
    std::set<std::string> passed, failed;
};
Summary& summary() {
    static Summary s;
    return s;
}

class SummaryPrinter : public ::testing::Environment {
  public:
    void TearDown() override {
        const Summary& s = summary();
        if (s.passed.empty() && s.failed.empty() && s.not_yet.empty()) return;
        std::printf(
            "\n[cuda conformance] op/dtype pairs: %zu all cases passed, %zu with failures,"
            " %zu not yet on CUDA\n",
            s.passed.size(), s.failed.size(), s.not_yet.size());
        auto line = [](const char* what, const std::set<std::string>& v) {
            std::string l;
            for (const auto& x : v) l += (l.empty() ? "" : ", ") + x;
            std::printf("  %s: %s\n", what, l.empty() ? "-" : l.c_str());
        };
        line("passed", s.passed);
        line("FAILED", s.failed);
        for (const auto& [op, why] : s.not_yet)
            std::printf("  not yet: %-24s (%s)\n", op.c_str(), why.begin()->c_str());
    }
};
[[maybe_unused]] ::testing::Environment* const g_summary =
    ::testing::AddGlobalTestEnvironment(new SummaryPrinter);

// An error that means "this op is not on CUDA (in this dtype) yet", not a wrong result.
bool is_not_yet(const std::string& msg) {
    for (const char* p :
         {"has no kernel", "needs the CUDA backend", "is not on the CPU", "expected an f32 or f64"})
        if (msg.find(p) != std::string::npos) return true;
    return false;
}

struct Tolerance {
    double atol, rtol;
};

// f32: the case's own tolerance (as the fast CPU backend). bf16 (docs/numerics.md): outputs
// are rounded to 8 significant bits, and composed cases round between ops, so 2% relative
// plus 1% of the tensor's largest magnitude.
Tolerance tolerance(const OpCase& c, DType dtype, const std::vector<double>& ref) {
    if (dtype == DType::f32) return {c.atol, c.rtol};
    double scale = 1;
    for (double v : ref)
        if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
    return {std::max(10 * c.atol, 1e-2 * scale), std::max(10 * c.rtol, 2e-2)};
}

void expect_close(const Tensor& got, const Tensor& ref, const OpCase& c, DType dtype,
                  const std::string& what) {
    ASSERT_EQ(got.defined(), ref.defined()) << what;
    if (!ref.defined()) return;
    ASSERT_TRUE(got.device().is_cuda()) << what << ": result " << got.desc() << " left the GPU";
    ASSERT_EQ(got.shape(), ref.shape()) << what << ": cuda " << got.desc() << " ref " << ref.desc();
    const auto g = got.to_vector(), r = ref.to_vector();
    const Tolerance tol = tolerance(c, dtype, r);
    int bad = 0;
    for (size_t i = 0; i < r.size(); ++i) {
        if (!std::isfinite(r[i]) || !std::isfinite(g[i])) {
            EXPECT_TRUE(c.allow_nonfinite)
                << what << "[" << i << "] is not finite: ref " << r[i] << " cuda " << g[i];
            const bool same = (std::isnan(r[i]) && std::isnan(g[i])) || r[i] == g[i];
            if (!same && bad++ < 5)
                ADD_FAILURE() << what << "[" << i << "]: ref " << r[i] << " cuda " << g[i];
            continue;
        }
        const double d = std::abs(g[i] - r[i]);
        if (d > tol.atol + tol.rtol * std::abs(r[i]) && bad++ < 5)
            ADD_FAILURE() << what << "[" << i << "]: ref " << r[i] << " cuda " << g[i] << " |d| "
                          << d;
    }
    EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << r.size() << " elements outside atol "
                      << tol.atol << " rtol " << tol.rtol;
}

class CudaConformance : public ::testing::TestWithParam<Param> {};

TEST_P(CudaConformance, MatchesReference) {
    GOOSE_REQUIRE_GPU();
    const OpCase& c = *GetParam().c;
    const DType dtype = GetParam().dtype;
    const std::string key = c.op + " " + std::string(dtype_name(dtype));
    const bool bf16 = dtype == DType::bf16;
    std::vector<Tensor> got;
    try {
        got = run_case_on(c, Backend::cuda, dtype, Device::cuda(), bf16);
    } catch (const Error& e) {
        if (!is_not_yet(e.what())) {
            summary().failed.insert(key);
            summary().passed.erase(key);
            FAIL() << c.op << " " << c.label << " on CUDA threw: " << e.what();
        }
        summary().not_yet[key].insert(e.what());
        GTEST_SKIP() << "not yet on CUDA: " << e.what();
    }
    const auto ref = run_case_on(c, Backend::ref, DType::f32, Device::cpu(), bf16);
    ASSERT_EQ(ref.size(), got.size());
    const size_t n_in = c.inputs.size(), n_out = ref.size() - n_in;
    for (size_t k = 0; k < ref.size(); ++k) {
        const std::string what = k < n_out ? "output " + std::to_string(k)
                                           : "grad of input " + std::to_string(k - n_out);
        expect_close(got[k], ref[k], c, dtype, c.op + " " + c.label + " " + what);
    }
    if (HasFailure()) {
        summary().failed.insert(key);
        summary().passed.erase(key);
    } else if (!summary().failed.count(key)) {
        summary().passed.insert(key);
    }
}

std::vector<Param> params() {
    std::vector<Param> v;
    for (const OpCase& c : all_cases())
        for (DType dt : {DType::f32, DType::bf16}) v.push_back({&c, dt});
    return v;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
    std::string s = info.param.c->op + "_" + std::to_string(info.index / 2) + "_" +
                    std::string(dtype_name(info.param.dtype));
    for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
}

INSTANTIATE_TEST_SUITE_P(Ops, CudaConformance, ::testing::ValuesIn(params()), param_name);

}  // namespace
}  // namespace goose::test
