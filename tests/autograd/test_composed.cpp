// Autograd on composed graphs against gradients derived by hand (written out below in plain
// loops, in double): a two-layer tanh MLP with an MSE loss, and a single-head causal attention
// block with an output projection.
#include <gtest/gtest.h>

#include <cmath>

#include "goose/autograd.h"
#include "goose/core/rng.h"
#include "goose/ops/backend.h"

namespace goose {
namespace {

using Mat = std::vector<std::vector<double>>;

Mat to_mat(const Tensor& t) {
    const int64_t r = t.size(0), c = t.size(1);
    const auto v = t.to_vector();
    Mat m(static_cast<size_t>(r), std::vector<double>(static_cast<size_t>(c)));
    for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j) m[i][j] = v[static_cast<size_t>(i * c + j)];
    return m;
}

// a (n, k) times b (m, k) transposed -> (n, m)
Mat mul_t(const Mat& a, const Mat& b) {
    Mat c(a.size(), std::vector<double>(b.size()));
    for (size_t i = 0; i < a.size(); ++i)
        for (size_t j = 0; j < b.size(); ++j)
            for (size_t k = 0; k < a[0].size(); ++k) c[i][j] += a[i][k] * b[j][k];
    return c;
}
// a (n, k) times b (k, m) -> (n, m)
Mat mul(const Mat& a, const Mat& b) {
    Mat c(a.size(), std::vector<double>(b[0].size()));
    for (size_t i = 0; i < a.size(); ++i)
        for (size_t k = 0; k < b.size(); ++k)
            for (size_t j = 0; j < b[0].size(); ++j) c[i][j] += a[i][k] * b[k][j];
    return c;
}
Mat transpose(const Mat& a) {
    Mat t(a[0].size(), std::vector<double>(a.size()));
    for (size_t i = 0; i < a.size(); ++i)
        for (size_t j = 0; j < a[0].size(); ++j) t[j][i] = a[i][j];
    return t;
}

void expect_mat_near(const Tensor& got, const Mat& want, double tol, const char* what) {
    const Mat g = to_mat(got);
    ASSERT_EQ(g.size(), want.size()) << what;
    for (size_t i = 0; i < g.size(); ++i)
        for (size_t j = 0; j < g[0].size(); ++j)
            EXPECT_NEAR(g[i][j], want[i][j], tol) << what << "[" << i << "][" << j << "]";
}

TEST(Composed, TwoLayerMlpWithMse) {
    Rng rng(11, "mlp");
    const int64_t n = 4, d = 5, h = 7, o = 3;
    Var x(Tensor::randn(Shape{n, d}, rng, DType::f64), true);
    Var w1(Tensor::randn(Shape{h, d}, rng, DType::f64), true);
    Var b1(Tensor::randn(Shape{h}, rng, DType::f64), true);
    Var w2(Tensor::randn(Shape{o, h}, rng, DType::f64), true);
    Var b2(Tensor::randn(Shape{o}, rng, DType::f64), true);
    Var target(Tensor::randn(Shape{n, o}, rng, DType::f64));

    Var loss = ag::mse(ag::linear(ag::tanh(ag::linear(x, w1, b1)), w2, b2), target);
    ag::backward(loss);

    // By hand: hid = x W1ᵀ + b1, a = tanh(hid), y = a W2ᵀ + b2, L = mean((y - t)^2).
    const Mat X = to_mat(x.value()), W1 = to_mat(w1.value()), W2 = to_mat(w2.value()),
              T = to_mat(target.value());
    const auto B1 = b1.value().to_vector(), B2 = b2.value().to_vector();
    Mat A = mul_t(X, W1);
    for (size_t i = 0; i < A.size(); ++i)
        for (size_t j = 0; j < A[0].size(); ++j) A[i][j] = std::tanh(A[i][j] + B1[j]);
    Mat Y = mul_t(A, W2), dY = Y;
    double l = 0;
    for (size_t i = 0; i < Y.size(); ++i)
        for (size_t j = 0; j < Y[0].size(); ++j) {
            const double e = Y[i][j] + B2[j] - T[i][j];
            l += e * e / (n * o);
            dY[i][j] = 2 * e / (n * o);
        }
    EXPECT_NEAR(loss.item(), l, 1e-12);
    const Mat dW2 = mul(transpose(dY), A);
    Mat dA = mul(dY, W2), dH = dA;
    for (size_t i = 0; i < dA.size(); ++i)
        for (size_t j = 0; j < dA[0].size(); ++j) dH[i][j] = dA[i][j] * (1 - A[i][j] * A[i][j]);
    const Mat dW1 = mul(transpose(dH), X), dX = mul(dH, W1);
    std::vector<double> db1(static_cast<size_t>(h)), db2(static_cast<size_t>(o));
    for (size_t i = 0; i < dH.size(); ++i) {
        for (size_t j = 0; j < dH[0].size(); ++j) db1[j] += dH[i][j];
        for (size_t j = 0; j < dY[0].size(); ++j) db2[j] += dY[i][j];
    }
    expect_mat_near(w2.grad(), dW2, 1e-12, "dW2");
    expect_mat_near(w1.grad(), dW1, 1e-12, "dW1");
    expect_mat_near(x.grad(), dX, 1e-12, "dX");
    for (size_t j = 0; j < db1.size(); ++j) EXPECT_NEAR(b1.grad().to_vector()[j], db1[j], 1e-12);
    for (size_t j = 0; j < db2.size(); ++j) EXPECT_NEAR(b2.grad().to_vector()[j], db2[j], 1e-12);
}

TEST(Composed, CausalAttentionBlock) {
    for (Backend backend : {Backend::ref, Backend::cpu}) {
        BackendScope scope(backend);
        Rng rng(5, "attn");
        const int64_t t = 5, c = 6;
        Var x(Tensor::randn(Shape{1, 1, t, c}, rng, DType::f64), true);  // (B=1, H=1, T, C)
        Var wq(Tensor::randn(Shape{c, c}, rng, DType::f64, 0, 0.5), true);
        Var wk(Tensor::randn(Shape{c, c}, rng, DType::f64, 0, 0.5), true);
        Var wv(Tensor::randn(Shape{c, c}, rng, DType::f64, 0, 0.5), true);
        Var wo(Tensor::randn(Shape{c, c}, rng, DType::f64, 0, 0.5), true);
        const Tensor g = Tensor::randn(Shape{1, 1, t, c}, rng, DType::f64);  // dL/dout

        Var out = ag::linear(ag::attention(ag::linear(x, wq), ag::linear(x, wk), ag::linear(x, wv)), wo);
        ag::backward(out, g);

        // By hand: Q = X Wqᵀ, K = X Wkᵀ, V = X Wvᵀ, S = Q Kᵀ / sqrt(C) (causal), P = softmax(S),
        // Z = P V, O = Z Woᵀ.
        const Mat X = to_mat(x.value().view(Shape{t, c})), G = to_mat(g.view(Shape{t, c}));
        const Mat Wq = to_mat(wq.value()), Wk = to_mat(wk.value()), Wv = to_mat(wv.value()),
                  Wo = to_mat(wo.value());
        const Mat Q = mul_t(X, Wq), K = mul_t(X, Wk), V = mul_t(X, Wv);
        Mat P = mul_t(Q, K);
        const double sc = 1 / std::sqrt(static_cast<double>(c));
        for (int64_t i = 0; i < t; ++i) {
            double m = -1e300, s = 0;
            for (int64_t j = 0; j <= i; ++j) m = std::max(m, P[i][j] * sc);
            for (int64_t j = 0; j < t; ++j) {
                P[i][j] = j <= i ? std::exp(P[i][j] * sc - m) : 0;
                s += P[i][j];
            }
            for (int64_t j = 0; j < t; ++j) P[i][j] /= s;
        }
        const Mat Z = mul(P, V);
        const Mat dWo = mul(transpose(G), Z), dZ = mul(G, Wo);
        const Mat dP = mul_t(dZ, V), dV = mul(transpose(P), dZ);
        Mat dS = dP;  // softmax backward: dS = P * (dP - rowsum(dP * P)), times the scale
        for (int64_t i = 0; i < t; ++i) {
            double r = 0;
            for (int64_t j = 0; j < t; ++j) r += dP[i][j] * P[i][j];
            for (int64_t j = 0; j < t; ++j) dS[i][j] = P[i][j] * (dP[i][j] - r) * sc;
        }
        const Mat dQ = mul(dS, K), dK = mul(transpose(dS), Q);
        const Mat dWq = mul(transpose(dQ), X), dWk = mul(transpose(dK), X), dWv = mul(transpose(dV), X);
        Mat dX = mul(dQ, Wq);
        const Mat dXk = mul(dK, Wk), dXv = mul(dV, Wv);
        for (int64_t i = 0; i < t; ++i)
            for (int64_t j = 0; j < c; ++j) dX[i][j] += dXk[i][j] + dXv[i][j];

        const char* b = backend_name(backend);
        SCOPED_TRACE(b);
        expect_mat_near(wo.grad(), dWo, 1e-10, "dWo");
        expect_mat_near(wq.grad(), dWq, 1e-10, "dWq");
        expect_mat_near(wk.grad(), dWk, 1e-10, "dWk");
        expect_mat_near(wv.grad(), dWv, 1e-10, "dWv");
        expect_mat_near(x.grad().view(Shape{t, c}), dX, 1e-10, "dX");
    }
}

}  // namespace
}  // namespace goose
