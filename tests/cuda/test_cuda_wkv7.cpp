// WKV-7 on CUDA against the double reference: forward (y, final state) and every gradient
// (r, w, k, v, a, b, state in), f32 and bf16, head sizes 16/32/64 (and 8, 37 through zero
// padding), T not a multiple of 16, with and without carried state, each forward kernel
// (sequential with one or two blocks per head below T 512, two-pass chunked from T 512) and
// each backward (sequential below T 512, two-pass chunked on tensor cores from T 512); gradients
// gathered elsewhere added into dr, dk, dv; the backward without saved data; a bf16 state;
// clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common/expect_error.h"
#include "cuda/cuda_test_util.h"
#include "goose/core/cuda.h"
#include "goose/core/rng.h"
#include "goose/core/tensor.h"
#include "goose/ops/binary.h"
#include "goose/ops/wkv7.h"

namespace goose {
namespace {

struct Inputs {  // f64 on the CPU, already rounded to the dtype under test
    Tensor r, w, k, v, a, b, gy;
    Tensor state, gstate;  // undefined when the case has no carried state
};

// Realistic values: w_raw in [-6, 2], r, v in (-1, 1), k in (-0.5, 0.5), a = -kk and
// b = kk * gate with kk a unit vector per (b, t, h) and gate in (0.02, 0.98).
Inputs make_inputs(int64_t B, int64_t T, int64_t H, int64_t N, DType dt, bool state,
                   uint64_t seed) {
    Rng rng(seed, "wkv7-cuda");
    const Shape s{B, T, H, N};
    auto round = [&](const Tensor& x) { return x.to(dt).to(DType::f64); };
    Inputs in;
    in.r = round(Tensor::uniform(s, rng, DType::f64, -1, 1));
    in.w = round(Tensor::uniform(s, rng, DType::f64, -6, 2));
    in.k = round(Tensor::uniform(s, rng, DType::f64, -0.5, 0.5));
    in.v = round(Tensor::uniform(s, rng, DType::f64, -1, 1));
    in.gy = round(Tensor::uniform(s, rng, DType::f64, -1, 1));
    Tensor kk = Tensor::randn(s, rng, DType::f64);
    const Tensor gate = Tensor::uniform(s, rng, DType::f64, 0.02, 0.98);
    Tensor a = Tensor::empty(s, DType::f64), b = Tensor::empty(s, DType::f64);
    double *pk = kk.data<double>(), *pa = a.data<double>(), *pb = b.data<double>();
    const double* pg = gate.data<double>();
    for (int64_t row = 0; row < B * T * H; ++row) {
        double norm = 0;
        for (int64_t j = 0; j < N; ++j) norm += pk[row * N + j] * pk[row * N + j];
        norm = std::sqrt(norm);
        for (int64_t j = 0; j < N; ++j) {
            const double u = pk[row * N + j] / norm;
            pa[row * N + j] = -u;
            pb[row * N + j] = u * pg[row * N + j];
        }
    }
    in.a = round(a);
    in.b = round(b);
    if (state) {  // the state is f32 on CUDA for both dtypes
        const Shape ss{B, H, N, N};
        in.state = Tensor::uniform(ss, rng, DType::f64, -1, 1).to(DType::f32).to(DType::f64);
        in.gstate = Tensor::uniform(ss, rng, DType::f64, -0.1, 0.1).to(DType::f32).to(DType::f64);
    }
    return in;
}

Tensor on_gpu(const Tensor& x, DType dt) {
    return x.defined() ? x.to(dt).to(Device::cuda()) : Tensor();
}

// ||x - ref|| / ||ref|| with x copied back from the GPU; NaN (e.g. an unwritten element) fails.
double rel_err(const Tensor& x, const Tensor& ref) {
    EXPECT_TRUE(x.device().is_cuda());
    EXPECT_EQ(x.shape(), ref.shape());
    const Tensor xc = x.to(Device::cpu()).to(DType::f64), rc = ref.to(DType::f64);
    const double *px = xc.data<double>(), *pr = rc.data<double>();
    double num = 0, den = 0;
    for (int64_t i = 0; i < xc.numel(); ++i) {
        if (!std::isfinite(px[i])) return NAN;
        num += (px[i] - pr[i]) * (px[i] - pr[i]);
        den += pr[i] * pr[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

void check_case(int64_t B, int64_t T, int64_t H, int64_t N, DType dt, bool state,
                uint64_t seed) {
    SCOPED_TRACE("B" + std::to_string(B) + " T" + std::to_string(T) + " H" + std::to_string(H) +
                 " N" + std::to_string(N) + " " + std::string(dtype_name(dt)) +
                 (state ? " state" : ""));
    const Inputs in = make_inputs(B, T, H, N, dt, state, seed);
    const ops::Wkv7Forward ref =
        ops::wkv7_forward_ref(in.r, in.w, in.k, in.v, in.a, in.b, in.state);
    const ops::Wkv7Grads gref = ops::wkv7_backward_ref(in.gy, in.gstate, in.r, in.w, in.k, in.v,
                                                       in.a, in.b, in.state, ref);
    const Tensor r = on_gpu(in.r, dt), w = on_gpu(in.w, dt), k = on_gpu(in.k, dt),
                 v = on_gpu(in.v, dt), a = on_gpu(in.a, dt), b = on_gpu(in.b, dt),
                 gy = on_gpu(in.gy, dt), s0 = on_gpu(in.state, DType::f32),
                 gs = on_gpu(in.gstate, DType::f32);
    const ops::Wkv7Forward out = ops::wkv7_forward(r, w, k, v, a, b, s0);
    const ops::Wkv7Grads g = ops::wkv7_backward(gy, gs, r, w, k, v, a, b, s0, out);
    cuda::synchronize();
    EXPECT_EQ(out.y.dtype(), dt);
    EXPECT_EQ(out.state.dtype(), DType::f32);
    EXPECT_EQ(g.state.dtype(), DType::f32);
    // f32: the kernels' f32 arithmetic (the backward inverts up to 15 decays between exact
    // states); bf16: rounding of the bf16 outputs (about 2e-3).
    const double tol_fwd = dt == DType::f32 ? 1e-5 : 5e-3, tol_bwd = dt == DType::f32 ? 1e-4 : 1e-2;
    EXPECT_LT(rel_err(out.y, ref.y), tol_fwd) << "y";
    EXPECT_LT(rel_err(out.state, ref.state), 1e-5) << "state out";
    const char* names[] = {"dr", "dw", "dk", "dv", "da", "db"};
    const Tensor* got[] = {&g.r, &g.w, &g.k, &g.v, &g.a, &g.b};
    const Tensor* want[] = {&gref.r, &gref.w, &gref.k, &gref.v, &gref.a, &gref.b};
    for (int i = 0; i < 6; ++i) EXPECT_LT(rel_err(*got[i], *want[i]), tol_bwd) << names[i];
    EXPECT_LT(rel_err(g.state, gref.state), 1e-4) << "dstate_in";
}

TEST(CudaWkv7, MatchesReferenceF32) {
    GOOSE_REQUIRE_GPU();
    check_case(2, 45, 2, 64, DType::f32, true, 1);
    check_case(1, 37, 3, 64, DType::f32, false, 2);
    check_case(2, 33, 2, 32, DType::f32, true, 3);
    check_case(2, 20, 4, 16, DType::f32, true, 4);
    check_case(1, 1, 2, 64, DType::f32, true, 5);
    check_case(1, 21, 2, 8, DType::f32, true, 6);   // padded to 16
    check_case(2, 18, 1, 37, DType::f32, true, 7);  // padded to 64
    check_case(16, 19, 12, 64, DType::f32, true, 8);  // 192 heads: two blocks per head
    check_case(1, 2051, 2, 64, DType::f32, true, 9);  // T >= 512: two-pass chunked
}

TEST(CudaWkv7, MatchesReferenceBf16) {
    GOOSE_REQUIRE_GPU();
    check_case(2, 45, 2, 64, DType::bf16, true, 11);
    check_case(1, 64, 2, 64, DType::bf16, false, 12);
    check_case(2, 33, 2, 32, DType::bf16, true, 13);
    check_case(2, 20, 4, 16, DType::bf16, false, 14);
    check_case(16, 21, 12, 64, DType::bf16, false, 15);  // 192 heads: two blocks per head
    check_case(2, 2063, 3, 64, DType::bf16, true, 16);   // two-pass chunked forward
    check_case(16, 515, 12, 64, DType::bf16, false, 17);  // the same at 192 heads
}

// ops::Wkv7AddIn: dr, dk, dv come back with the given tensors added (inside the two-pass
// backward's kernel from T 512, by an add below), the other gradients unchanged.
TEST(CudaWkv7, BackwardAddsGatheredGradients) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : {DType::f32, DType::bf16})
        for (int64_t T : {45, 515}) {
            SCOPED_TRACE(std::string(dtype_name(dt)) + " T" + std::to_string(T));
            const Inputs in = make_inputs(2, T, 3, 64, dt, true, 40 + T);
            const Tensor r = on_gpu(in.r, dt), w = on_gpu(in.w, dt), k = on_gpu(in.k, dt),
                         v = on_gpu(in.v, dt), a = on_gpu(in.a, dt), b = on_gpu(in.b, dt),
                         gy = on_gpu(in.gy, dt), s0 = on_gpu(in.state, DType::f32);
            Rng rng(50 + T, "wkv7-add");
            auto extra = [&] {
                return on_gpu(Tensor::uniform(r.shape(), rng, DType::f64, -1, 1), dt);
            };
            const ops::Wkv7AddIn add{extra(), extra(), extra()};
            const ops::Wkv7Forward f = ops::wkv7_forward(r, w, k, v, a, b, s0);
            const ops::Wkv7Grads plain = ops::wkv7_backward(gy, Tensor(), r, w, k, v, a, b, s0, f);
            const ops::Wkv7Grads added =
                ops::wkv7_backward(gy, Tensor(), r, w, k, v, a, b, s0, f, add);
            // f32: the same sum; bf16: one rounding of the sum against two (an ulp, ~4e-3)
            const double tol = dt == DType::f32 ? 1e-6 : 5e-3;
            auto sum = [](const Tensor& x, const Tensor& y) {
                return ops::binary_forward(BinaryOp::add, x.to(Device::cpu()).to(DType::f64),
                                           y.to(Device::cpu()).to(DType::f64));
            };
            EXPECT_LT(rel_err(added.r, sum(plain.r, add.r)), tol) << "dr";
            EXPECT_LT(rel_err(added.k, sum(plain.k, add.k)), tol) << "dk";
            EXPECT_LT(rel_err(added.v, sum(plain.v, add.v)), tol) << "dv";
            for (auto [x, y] : {std::pair{&added.w, &plain.w}, {&added.a, &plain.a},
                                {&added.b, &plain.b}, {&added.state, &plain.state}})
                EXPECT_EQ(rel_err(*x, y->to(Device::cpu()).to(DType::f64)), 0.0);
        }
}

TEST(CudaWkv7, BackwardWithoutSavedDataRecomputes) {
    GOOSE_REQUIRE_GPU();
    const Inputs in = make_inputs(1, 40, 2, 64, DType::f32, true, 21);
    auto gpu = [](const Tensor& x) { return on_gpu(x, DType::f32); };
    const Tensor r = gpu(in.r), w = gpu(in.w), k = gpu(in.k), v = gpu(in.v), a = gpu(in.a),
                 b = gpu(in.b), gy = gpu(in.gy), s0 = gpu(in.state), gs = gpu(in.gstate);
    const ops::Wkv7Forward out = ops::wkv7_forward(r, w, k, v, a, b, s0);
    const ops::Wkv7Grads saved = ops::wkv7_backward(gy, gs, r, w, k, v, a, b, s0, out);
    const ops::Wkv7Forward unsaved{out.y, out.state, {}, {}};
    const ops::Wkv7Grads again = ops::wkv7_backward(gy, gs, r, w, k, v, a, b, s0, unsaved);
    EXPECT_EQ(rel_err(again.w, saved.w.to(Device::cpu())), 0.0);
    EXPECT_EQ(rel_err(again.state, saved.state.to(Device::cpu())), 0.0);
}

TEST(CudaWkv7, Bf16StateIsConverted) {
    GOOSE_REQUIRE_GPU();
    const Inputs in = make_inputs(1, 20, 2, 32, DType::bf16, true, 31);
    const Tensor s16 = in.state.to(DType::bf16).to(DType::f64);  // the state as bf16 holds it
    const ops::Wkv7Forward ref = ops::wkv7_forward_ref(in.r, in.w, in.k, in.v, in.a, in.b, s16);
    const ops::Wkv7Grads gref = ops::wkv7_backward_ref(in.gy, in.gstate, in.r, in.w, in.k, in.v,
                                                       in.a, in.b, s16, ref);
    auto gpu = [](const Tensor& x) { return on_gpu(x, DType::bf16); };
    const Tensor r = gpu(in.r), w = gpu(in.w), k = gpu(in.k), v = gpu(in.v), a = gpu(in.a),
                 b = gpu(in.b), gy = gpu(in.gy), s0 = gpu(in.state),
                 gs = on_gpu(in.gstate, DType::f32);
    const ops::Wkv7Forward out = ops::wkv7_forward(r, w, k, v, a, b, s0);
    const ops::Wkv7Grads g = ops::wkv7_backward(gy, gs, r, w, k, v, a, b, s0, out);
    EXPECT_EQ(out.state.dtype(), DType::f32);
    EXPECT_EQ(g.state.dtype(), DType::bf16);  // the gradient has the input's dtype
    EXPECT_LT(rel_err(out.y, ref.y), 5e-3);
    EXPECT_LT(rel_err(out.state, ref.state), 1e-5);
    EXPECT_LT(rel_err(g.state, gref.state), 1e-2);
    EXPECT_LT(rel_err(g.a, gref.a), 1e-2);
}

TEST(CudaWkv7, ClearErrors) {
    GOOSE_REQUIRE_GPU();
    const Tensor x80 = Tensor::zeros(Shape{1, 4, 2, 80}, DType::f32).to(Device::cuda());
    test::expect_error([&] { ops::wkv7_forward(x80, x80, x80, x80, x80, x80, Tensor()); },
                       {"wkv7", "head size", "at most 64", "80"});
    const Tensor x64 = Tensor::zeros(Shape{1, 4, 2, 16}, DType::f64).to(Device::cuda());
    test::expect_error([&] { ops::wkv7_forward(x64, x64, x64, x64, x64, x64, Tensor()); },
                       {"wkv7", "f32 or bf16", "f64"});
}

}  // namespace
}  // namespace goose
