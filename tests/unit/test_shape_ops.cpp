// Shape ops: known values, and the ops-level forwards that the autograd layer replaces by views
// (reshape, transpose, permute) compared between the reference and the fast CPU variants.
#include <gtest/gtest.h>

#include "goose/autograd/shape.h"
#include "goose/core/rng.h"
#include "goose/ops/backend.h"

namespace goose {
namespace {

std::vector<double> vec(const Tensor& t) {
    return t.to_vector();
}

TEST(ShapeOps, KnownValues) {
    Tensor a = Tensor::from(Shape{2, 2}, {1, 2, 3, 4});
    Tensor b = Tensor::from(Shape{2, 1}, {5, 6});
    EXPECT_EQ(vec(ops::concat_forward({a, b}, -1)), (std::vector<double>{1, 2, 5, 3, 4, 6}));
    EXPECT_EQ(vec(ops::concat_forward({a, a}, 0)), (std::vector<double>{1, 2, 3, 4, 1, 2, 3, 4}));
    auto parts = ops::split_forward(Tensor::arange(6).view(Shape{2, 3}), {1, 2}, 1);
    EXPECT_EQ(vec(parts[0]), (std::vector<double>{0, 3}));
    EXPECT_EQ(vec(parts[1]), (std::vector<double>{1, 2, 4, 5}));
    EXPECT_EQ(vec(ops::slice_forward(Tensor::arange(10), 0, -7, -1, 2)),
              (std::vector<double>{3, 5, 7}));
    EXPECT_EQ(vec(ops::slice_backward(Tensor::from(Shape{3}, {1, 2, 3}), Shape{10}, 0, -7, -1, 2)),
              (std::vector<double>{0, 0, 0, 1, 0, 2, 0, 3, 0, 0}));
    EXPECT_EQ(vec(ops::transpose_forward(Tensor::arange(6).view(Shape{2, 3}), 0, 1)),
              (std::vector<double>{0, 3, 1, 4, 2, 5}));
    EXPECT_EQ(ops::reshape_forward(Tensor::arange(6), Shape{3, -1}).shape(), (Shape{3, 2}));
}

TEST(ShapeOps, AutogradViewsAndGradients) {
    Var x(Tensor::arange(6).view(Shape{2, 3}), true);
    Var t = ag::transpose(x, 0, 1);
    EXPECT_TRUE(t.value().shares_storage(x.value()));
    Var r = ag::reshape(x, Shape{3, 2});
    EXPECT_TRUE(r.value().shares_storage(x.value()));
    Var c = ag::contiguous(x);
    EXPECT_TRUE(c.value().shares_storage(x.value()));
    // y = sum_ij w_ij t_ij with w = arange: dx[i][j] = w[j][i].
    ag::backward(t, Tensor::arange(6).view(Shape{3, 2}));
    EXPECT_TRUE(x.grad().is_contiguous());
    EXPECT_EQ(vec(x.grad()), (std::vector<double>{0, 2, 4, 1, 3, 5}));
    ag::clear_tape();
}

// Every ops-level copy, reference against fast, over strided inputs: bit-identical.
TEST(ShapeOps, VariantsAgreeOnStridedInputs) {
    Rng rng(7, "shape-ops");
    const Tensor base = Tensor::randn(Shape{3, 67, 37}, rng);
    const Tensor views[] = {base, base.transpose(0, 2), base.permute({1, 2, 0}),
                            base.slice(1, 1, 67, 3), base.transpose(1, 2).slice(2, 5, 60, 2)};
    for (const Tensor& x : views) {
        auto both = [&](auto fn) {
            Tensor r, f;
            {
                BackendScope s(Backend::ref);
                r = fn();
            }
            f = fn();
            EXPECT_TRUE(f.is_contiguous());
            EXPECT_EQ(r.shape(), f.shape()) << x.desc();
            EXPECT_EQ(vec(r), vec(f)) << x.desc();
        };
        both([&] { return ops::reshape_forward(x, Shape{-1, 3}); });
        both([&] { return ops::reshape_backward(x, Shape{x.numel()}); });
        both([&] { return ops::transpose_forward(x, 0, -1); });
        both([&] { return ops::transpose_backward(x, 1, 2); });
        both([&] { return ops::permute_forward(x, std::vector<int>{2, 0, 1}); });
        both([&] { return ops::permute_backward(x, std::vector<int>{2, 0, 1}); });
        both([&] { return ops::contiguous_backward(x); });
        both([&] { return ops::concat_backward(x, {1, x.size(1) - 1}, 1)[1]; });
        both([&] { return ops::split_backward({x, x}, 2); });
    }
}

}  // namespace
}  // namespace goose
