// Argument errors of the shape ops: goose::Error whose message names the op and the shapes.
#include <gtest/gtest.h>

#include <string>

#include "common/expect_error.h"
#include "goose/autograd/shape.h"

namespace goose {
namespace {

using goose::test::expect_error;

Var var(Shape s, DType dt = DType::f32) {
    return Var(Tensor::zeros(s, dt), true);
}

TEST(ShapeErrors, ConcatMismatchedShapes) {
    expect_error(
        [] {
            ag::concat({var(Shape{2, 3}), var(Shape{4, 5})}, 1);
        },
        {"concat", "f32[2, 3]", "f32[4, 5]"});
    expect_error(
        [] {
            ag::concat({var(Shape{2, 3}), var(Shape{2, 3, 1})}, 0);
        },
        {"concat", "[2, 3]", "[2, 3, 1]"});
    expect_error(
        [] {
            ops::concat_forward({Tensor::zeros(Shape{2}), Tensor::zeros(Shape{2}, DType::f64)}, 0);
        },
        {"concat", "f32[2]", "f64[2]"});
}

TEST(ShapeErrors, ConcatEmptyList) {
    expect_error([] { ag::concat({}, 0); }, {"concat", "empty"});
}

TEST(ShapeErrors, SplitSizesNotSumming) {
    expect_error([] { ag::split(var(Shape{2, 5}), {1, 2}, 1); }, {"split", "[1, 2]", "f32[2, 5]"});
    expect_error([] { ag::split(var(Shape{2, 5}), {6, -1}, 1); }, {"split", "negative"});
}

TEST(ShapeErrors, BadAxis) {
    expect_error([] { ag::split(var(Shape{2, 5}), {2}, 2); }, {"split", "axis 2", "f32[2, 5]"});
    expect_error([] { ag::concat({var(Shape{2, 5})}, -3); }, {"concat", "axis -3", "f32[2, 5]"});
    expect_error([] { ag::slice(var(Shape{2, 5}), 3, 0, 1); }, {"slice", "axis 3", "f32[2, 5]"});
    expect_error(
        [] {
            ag::transpose(var(Shape{2, 5}), 0, 2);
        },
        {"transpose", "axis 2", "f32[2, 5]"});
    expect_error([] { ag::slice(var(Shape{2, 5}), 1, 0, 5, 0); }, {"slice", "step", "f32[2, 5]"});
}

TEST(ShapeErrors, ReshapeIncompatible) {
    expect_error(
        [] {
            ag::reshape(var(Shape{2, 3}), Shape{4, 2});
        },
        {"reshape", "f32[2, 3]", "[4, 2]"});
    expect_error(
        [] {
            ag::reshape(var(Shape{2, 3}), Shape{-1, 4});
        },
        {"reshape", "f32[2, 3]", "[-1, 4]"});
    expect_error([] { ag::reshape(var(Shape{2, 3}), Shape{-1, -1}); }, {"reshape", "-1"});
    expect_error(
        [] {
            ops::reshape_forward(Tensor::zeros(Shape{2, 3}), Shape{7});
        },
        {"reshape", "f32[2, 3]", "[7]"});
}

TEST(ShapeErrors, PermuteRepeatedAxis) {
    expect_error(
        [] {
            ag::permute(var(Shape{2, 3, 4}), {0, 0, 1});
        },
        {"permute", "[0, 0, 1]", "f32[2, 3, 4]"});
    expect_error(
        [] {
            ag::permute(var(Shape{2, 3, 4}), {0, 1});
        },
        {"permute", "[0, 1]", "f32[2, 3, 4]"});
    expect_error(
        [] {
            ops::permute_forward(Tensor::zeros(Shape{2, 3}), std::vector<int>{1, -1});
        },
        {"permute", "f32[2, 3]"});
}

TEST(ShapeErrors, NonFloatAndBackwardShapes) {
    expect_error([] { ops::contiguous_forward(Tensor::zeros(Shape{2}, DType::i64)); },
                 {"contiguous", "i64[2]"});
    expect_error(
        [] {
            ag::reshape(Var(Tensor::zeros(Shape{2}, DType::i32)), Shape{2, 1});
        },
        {"reshape", "i32[2]"});
    expect_error(
        [] {
            ops::slice_backward(Tensor::zeros(Shape{2, 2}), Shape{2, 5}, 1, 0, 3);
        },
        {"slice", "f32[2, 2]", "[2, 3]", "[2, 5]"});
}

}  // namespace
}  // namespace goose
