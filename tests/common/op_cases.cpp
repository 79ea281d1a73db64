// Op case registry, input generation and running a case on one backend.
#include "common/op_cases.h"

#include <gtest/gtest.h>

#include "goose/core/element.h"

namespace goose::test {

namespace {
std::vector<OpCase>& registry() {
    static std::vector<OpCase> r;
    return r;
}
}  // namespace

uint64_t case_seed(const OpCase& c) {
    uint64_t h = 1469598103934665603ull;
    for (char ch : c.op + "|" + c.label) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
    return h;
}

int register_cases(std::vector<OpCase> cases) {
    for (auto& c : cases) registry().push_back(std::move(c));
    return 0;
}

const std::vector<OpCase>& all_cases() { return registry(); }

std::vector<Var> make_inputs(const OpCase& c, DType dtype, bool requires_grad,
                             bool round_to_bf16) {
    Rng rng(case_seed(c), "inputs");
    std::vector<Var> vars;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
        const Input& in = c.inputs[i];
        Rng r = rng.fork(std::to_string(i));
        Tensor t;
        bool is_float = true;
        switch (in.init) {
            case Init::normal: t = Tensor::randn(in.shape, r, DType::f64); break;
            case Init::positive: t = Tensor::uniform(in.shape, r, DType::f64, 0.5, 2.0); break;
            case Init::unit_interval: t = Tensor::uniform(in.shape, r, DType::f64, 0.0, 1.0); break;
            case Init::index: {
                t = Tensor::empty(in.shape, in.index_dtype);
                for (int64_t k = 0; k < t.numel(); ++k)
                    store_from_double(t.raw_data(), t.dtype(), k,
                                      static_cast<double>(r.randint(0, in.hi)));
                is_float = false;
                break;
            }
            case Init::mask: {
                t = Tensor::empty(in.shape, DType::u8);
                for (int64_t k = 0; k < t.numel(); ++k) t.data<uint8_t>()[k] = r.uniform() < 0.5;
                is_float = false;
                break;
            }
            case Init::custom:
                t = in.make(dtype, r);
                is_float = dtype_is_float(t.dtype());
                break;
        }
        if (in.keep_dtype) is_float = false;  // as made: no conversion, no gradient
        if (is_float && round_to_bf16 && t.dtype() != DType::bf16) t = t.to(DType::bf16);
        if (is_float && t.dtype() != dtype) t = t.to(dtype);
        vars.emplace_back(t, requires_grad && is_float && in.grad);
    }
    return vars;
}

std::vector<Tensor> run_case(const OpCase& c, Backend backend, DType dtype) {
    return run_case_on(c, backend, dtype, Device::cpu());
}

std::vector<Tensor> run_case_on(const OpCase& c, Backend backend, DType dtype, Device device,
                                bool round_to_bf16) {
    // CUDA tensors pick the cuda backend by themselves; the scope picks CPU kernels.
    BackendScope scope(backend == Backend::cuda ? Backend::cpu : backend);
    ag::clear_tape();
    std::vector<Var> x = make_inputs(c, dtype, true, round_to_bf16);
    if (!device.is_cpu())
        for (auto& v : x) v = Var(v.value().to(device), v.requires_grad());
    std::vector<Var> y = c.fn(x);
    std::vector<Tensor> result;
    Rng rng(case_seed(c), "output-grads");
    Var objective;
    for (size_t k = 0; k < y.size(); ++k) {
        result.push_back(y[k].value());
    }
    // Seed each output with a fixed random gradient; one reverse pass over all of them.
    bool any = false;
    for (size_t k = 0; k < y.size(); ++k) any = any || y[k].requires_grad();
    if (any) {
        // Combine outputs into one objective through the tape: backward from each output in turn
        // would replay the tape several times, so record a sum of <gy_k, y_k>.
        std::vector<Var> req;
        std::vector<Tensor> seeds;
        for (size_t k = 0; k < y.size(); ++k) {
            Tensor gy = Tensor::randn(y[k].shape(), rng, y[k].dtype() == DType::f64 ? DType::f64 : DType::f32);
            if (round_to_bf16) gy = gy.to(DType::bf16);
            gy = gy.to(y[k].dtype()).to(y[k].value().device());
            if (y[k].requires_grad()) {
                req.push_back(y[k]);
                seeds.push_back(gy);
            }
        }
        Tensor one = Tensor::full(Shape{}, 1.0, dtype);
        Var total = ag::record("test_objective", req, one, [seeds](GradIO& io) {
            for (int i = 0; i < io.num_inputs(); ++i) io.set(i, seeds[static_cast<size_t>(i)]);
        });
        ag::backward(total);
    }
    for (auto& v : x) result.push_back(v.requires_grad() ? v.grad() : Tensor());
    ag::clear_tape();
    return result;
}

}  // namespace goose::test
