// The vectorised row kernels at many rows (several row blocks, several rows per slot or warp and
// a partial last block): layer_norm forward and backward against the fast CPU backend, and the
// fused RWKV-7 token_mix / prep / out and add_layer_norm against the same functions on the CPU
// (f32 math there).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "cuda/ops_test_util.h"
#include "goose/autograd.h"
#include "goose/ops/norm.h"
#include "models/fused.h"

namespace goose::test {
namespace {

using namespace cuda_ops;
constexpr DType kDtypes[] = {DType::f32, DType::bf16};

TEST(CudaFusedRows, LayerNormManyRows) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kDtypes)
        for (const Shape& s : {Shape{3, 13339, 256}, Shape{2, 4099, 768}, Shape{5, 7, 1024}}) {
            const Tol t = tol_for(dt, 1e-4, 1e-4);
            const int64_t c = s[2];
            const Tensor x = randn(s, 60, 0.5, 2), gy = randn(s, 61);
            const Tensor w = randn(Shape{c}, 62, 1, 0.2), b = randn(Shape{c}, 63);
            const Tensor xh = as_seen(x, dt), gh = as_seen(gy, dt), wh = as_seen(w, dt),
                         bh = as_seen(b, dt);
            const std::string what = "layer_norm " + s.str() + " " + dname(dt);
            const auto f = ops::layer_norm_forward(gpu(x, dt), gpu(w, dt), gpu(b, dt));
            const auto fr = ops::layer_norm_forward(xh, wh, bh);
            expect_close(f.y, fr.y, t.atol, t.rtol, what + " y");
            expect_close(f.mean, fr.mean, 1e-5, 1e-5, what + " mean");
            expect_close(f.rstd, fr.rstd, 1e-5, 1e-4, what + " rstd");
            const auto g = ops::layer_norm_backward(gpu(gy, dt), gpu(x, dt), gpu(w, dt), f.mean,
                                                    f.rstd, true, true);
            const auto r = ops::layer_norm_backward(gh, xh, wh, fr.mean, fr.rstd, true, true);
            expect_close(g.dx, r.dx, t.atol, t.rtol, what + " dx");
            // dw, db sum up to 40017 rows of O(1) terms
            const double sum_atol = dt == DType::bf16 ? 2.0 : 2e-2;
            expect_close(g.dw, r.dw, sum_atol, t.rtol, what + " dw");
            expect_close(g.db, r.db, sum_atol, t.rtol, what + " db");
            // dx alone (no parameter gradients, no weight)
            const auto g2 = ops::layer_norm_backward(gpu(gy, dt), gpu(x, dt), Tensor(), f.mean,
                                                     f.rstd, false, false);
            const auto r2 = ops::layer_norm_backward(gh, xh, Tensor(), fr.mean, fr.rstd, false,
                                                     false);
            expect_close(g2.dx, r2.dx, t.atol, t.rtol, what + " dx without weight");
        }
}

using Fn = std::function<std::vector<Var>(const std::vector<Var>&)>;

// fn's outputs and the gradients of its inputs for Σ_i <out_i, seed_i>, on dev in dt, as f32
// CPU tensors; inputs and seeds are rounded to `seen` first.
std::vector<Tensor> outputs_and_grads(const Fn& fn, const std::vector<Tensor>& inputs, DType dt,
                                      Device dev, DType seen) {
    std::vector<Var> vars;
    for (const Tensor& t : inputs)
        vars.push_back(t.defined() ? Var(as_seen(t, seen).to(dt).to(dev), true) : Var());
    const std::vector<Var> outs = fn(vars);
    std::vector<Tensor> r;
    Var total;
    uint64_t seed = 90;
    for (const Var& o : outs) {
        r.push_back(host(o.value()));
        const Var sd(as_seen(randn(o.shape(), seed++), seen).to(dt).to(dev));
        const Var term = ag::sum(ag::mul(o, sd), {}, false);
        total = total.defined() ? ag::add(total, term) : term;
    }
    ag::backward(total);
    for (const Var& v : vars)
        if (v.defined()) r.push_back(host(v.grad()));
    return r;
}

// CUDA in dt against the CPU in f32 on the same dt-rounded inputs: elementwise for f32; relative
// norm of the error for bf16 (its outputs and saved activations are rounded).
void check(const std::string& name, const Fn& fn, const std::vector<Tensor>& inputs) {
    for (DType dt : kDtypes) {
        const auto want = outputs_and_grads(fn, inputs, DType::f32, Device::cpu(), dt);
        const auto got = outputs_and_grads(fn, inputs, dt, Device::cuda(), dt);
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < want.size(); ++i) {
            const std::string what = name + " " + dname(dt) + " result " + std::to_string(i);
            if (dt == DType::f32) {
                // parameter gradients (the small tensors) sum thousands of rows
                const bool param = want[i].numel() < inputs[0].numel() / 64;
                expect_close(got[i], want[i], param ? 5e-3 : 1e-4, 1e-3, what);
                continue;
            }
            const auto g = got[i].to_vector(), w = want[i].to_vector();
            double num = 0, den = 0;
            for (size_t j = 0; j < w.size(); ++j) {
                num += (g[j] - w[j]) * (g[j] - w[j]);
                den += w[j] * w[j];
            }
            EXPECT_LE(std::sqrt(num), 3e-2 * std::sqrt(den) + 1e-6) << what;
        }
    }
}

TEST(CudaFusedRows, TokenMixManyRows) {
    GOOSE_REQUIRE_GPU();
    const int64_t b = 4, t = 4100, c = 128;
    // 6 and 1 mixing vectors: kernels with the count at compile time; 3: any count
    for (int mixes : {6, 1, 3})
        for (bool with_prev : {false, true}) {
            std::vector<Tensor> in{randn(Shape{b, t, c}, 70), with_prev ? randn(Shape{b, c}, 71)
                                                                        : Tensor()};
            for (int i = 0; i < mixes; ++i) in.push_back(randn(Shape{1, 1, c}, 72 + i, 0, 0.5));
            const Fn fn = [](const std::vector<Var>& v) {
                return models::fused::token_mix(v[0], v[1],
                                                std::vector<Var>(v.begin() + 2, v.end()));
            };
            check("token_mix M" + std::to_string(mixes) + (with_prev ? " prev" : ""), fn, in);
        }
}

TEST(CudaFusedRows, PrepAndOutManyRows) {
    GOOSE_REQUIRE_GPU();
    const int64_t b = 4, t = 4100, h = 2, n = 64, c = h * n;
    const Shape flat{b, t, c}, vec{1, 1, c};
    for (bool gate : {false, true}) {
        std::vector<Tensor> in{randn(flat, 80),           randn(flat, 81),
                               randn(flat, 82),           randn(flat, 83),
                               gate ? randn(flat, 84) : Tensor(),
                               gate ? randn(flat, 85) : Tensor(),
                               randn(vec, 86),            randn(vec, 87),
                               gate ? randn(vec, 88) : Tensor(),
                               randn(vec, 89, 0, 0.5),    randn(vec, 90, 0, 0.5)};
        const Fn fn = [n](const std::vector<Var>& v) {
            const auto p = models::fused::rwkv7_prep(v[0], v[1], v[2], v[3], v[4], v[5], v[6],
                                                     v[7], v[8], v[9], v[10], n);
            return std::vector<Var>{p.w, p.k, p.v, p.a, p.b};
        };
        check(std::string("rwkv7_prep") + (gate ? " gate" : ""), fn, in);
    }
    std::vector<Tensor> in{randn(Shape{b, t, h, n}, 91), randn(flat, 92), randn(flat, 93),
                           randn(flat, 94),  randn(Shape{h, n}, 95, 0, 0.5),
                           randn(Shape{c}, 96), randn(Shape{c}, 97), randn(flat, 98)};
    const Fn fn = [](const std::vector<Var>& v) {
        return std::vector<Var>{
            models::fused::rwkv7_out(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], 64e-5)};
    };
    check("rwkv7_out", fn, in);
}

TEST(CudaFusedRows, AddLayerNorm) {
    GOOSE_REQUIRE_GPU();
    for (const Shape& s : {Shape{3, 1001, 512}, Shape{2, 2049, 768}, Shape{2, 3, 24}}) {
        const int64_t c = s[2];
        const std::vector<Tensor> in{randn(s, 100, 0.3, 1.5), randn(s, 101),
                                     randn(Shape{c}, 102, 1, 0.2), randn(Shape{c}, 103)};
        const Fn fn = [](const std::vector<Var>& v) {
            const auto r = models::fused::add_layer_norm(v[0], v[1], v[2], v[3], 1e-5);
            return std::vector<Var>{r.sum, r.normed};
        };
        check("add_layer_norm " + s.str(), fn, in);
    }
}

// Many rows: each warp runs several rows, starting inside sequences (its first row rebuilds
// the previous row's norm) and crossing sequence starts.
TEST(CudaFusedRows, AddLayerNormMix) {
    GOOSE_REQUIRE_GPU();
    for (const Shape& s : {Shape{3, 1001, 512}, Shape{2, 2049, 768}, Shape{700, 5, 64}}) {
        const int64_t b = s[0], c = s[2];
        for (bool with_prev : {false, true}) {
            const std::vector<Tensor> in{randn(s, 110, 0.3, 1.5), randn(s, 111),
                                         randn(Shape{c}, 112, 1, 0.2), randn(Shape{c}, 113),
                                         randn(Shape{1, 1, c}, 114, 0.5, 0.5),
                                         with_prev ? randn(Shape{b, c}, 115) : Tensor()};
            const Fn fn = [](const std::vector<Var>& v) {
                const auto r =
                    models::fused::add_layer_norm_mix(v[0], v[1], v[2], v[3], 1e-5, v[4], v[5]);
                return std::vector<Var>{r.sum, r.mixed};
            };
            check("add_layer_norm_mix " + s.str() + (with_prev ? " prev" : ""), fn, in);
        }
    }
}

}  // namespace
}  // namespace goose::test
