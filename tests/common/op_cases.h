// The op case registry shared by the conformance suite (tests/ops: fast CPU kernels against
// the reference, forward and backward, f32) and the gradient suite (tests/grad: the reference
// backward against central finite differences, f64). A case names its op (op_list.h), its
// inputs and a function from input Vars to output Vars; it is written once, in tests/cases/.
//
//   GOOSE_OP_CASES(unary) {
//       std::vector<OpCase> v;
//       v.push_back({.op = "exp", .label = "T=1", .inputs = {{Shape{1}}},
//                    .fn = [](Vars x) { return Vars{ag::exp(x[0])}; }});
//       return v;
//   }
#pragma once
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "goose/autograd/tape.h"
#include "goose/core/rng.h"
#include "goose/ops/backend.h"

namespace goose::test {

using Vars = std::vector<Var>;

enum class Init : uint8_t {
    normal,         // N(0, 1)
    positive,       // U(0.5, 2): for log, sqrt, div denominators
    unit_interval,  // U(0, 1)
    index,          // integers in [0, hi) of index_dtype; never require grad
    mask,           // u8 0/1, about half set; never require grad
    custom,         // make(dtype, rng)
};

struct Input {
    Shape shape;
    Init init = Init::normal;
    int64_t hi = 0;                 // exclusive upper bound for Init::index
    bool grad = true;               // float inputs: include in gradient checks
    DType index_dtype = DType::i64;
    std::function<Tensor(DType, Rng&)> make = nullptr;  // for Init::custom
    // Keep the dtype `make` returned (e.g. bf16 weights next to f32 activations) instead of
    // converting to the case dtype; such an input never requires grad.
    bool keep_dtype = false;
};

struct OpCase {
    std::string op;     // a name from kOpNames
    std::string label;  // what makes this case different: shapes, flags
    std::vector<Input> inputs;
    std::function<Vars(Vars&)> fn;
    // Fast CPU (f32) against the reference (f32 in, double inside): |d| <= atol + rtol |ref|.
    double atol = 1e-5, rtol = 1e-4;
    bool allow_nonfinite = false;  // outputs may hold inf/NaN (then both backends must agree)
    // Finite differences in f64 on the reference backward.
    bool fd = true;
    double fd_eps = 1e-6, fd_atol = 1e-6, fd_rtol = 1e-5;
    int fd_max_elems = 48;  // checked elements per input (spread over the tensor)
};

// gtest prints a case as "op label" in test names' failure lines.
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.op << " " << c.label; }

int register_cases(std::vector<OpCase> cases);
uint64_t case_seed(const OpCase& c);  // from op and label
const std::vector<OpCase>& all_cases();

// Builds the inputs of a case in `dtype` (float inputs; index and mask inputs, and inputs with
// keep_dtype, keep theirs).
// The values depend only on the case's op and label, so both backends and both dtypes see the
// same numbers (up to rounding).
// round_to_bf16: float inputs pass through bf16 first (the reference side of a bf16 comparison
// sees exactly the values the bf16 run sees).
std::vector<Var> make_inputs(const OpCase& c, DType dtype, bool requires_grad,
                             bool round_to_bf16 = false);

// Runs a case under `backend` (ref or cpu): outputs, then the input gradients of
// sum_k <gy_k, y_k> with fixed random seeds gy_k. Returned as [outputs..., grads...] where an
// input without gradient contributes an undefined tensor.
std::vector<Tensor> run_case(const OpCase& c, Backend backend, DType dtype);

// run_case on any device (Backend::cuda with Device::cuda(): inputs and output-gradient seeds
// are moved there; results stay there). round_to_bf16 as make_inputs (seeds too).
std::vector<Tensor> run_case_on(const OpCase& c, Backend backend, DType dtype, Device device,
                                bool round_to_bf16 = false);

}  // namespace goose::test

#define GOOSE_CAT_INNER(a, b) a##b
#define GOOSE_CAT(a, b) GOOSE_CAT_INNER(a, b)
#define GOOSE_OP_CASES(family)                                                            \
    static std::vector<::goose::test::OpCase> goose_cases_##family();                     \
    [[maybe_unused]] static const int goose_registered_##family =                          \
        ::goose::test::register_cases(goose_cases_##family());                             \
    static std::vector<::goose::test::OpCase> goose_cases_##family()
