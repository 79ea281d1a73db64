// RWKV-7 model against an independent scalar reference written from the spec (§2, §3, §5, §6):
// one token at a time, plain loops in double, the WKV state as explicit N x N matrices.
#include <gtest/gtest.h>

#include <cmath>

#include "goose/autograd.h"
#include "goose/models/rwkv7.h"
#include "rwkv7_test_util.h"

namespace goose::models {
namespace {

using Vec = std::vector<double>;

struct Ref {
    const Rwkv7Config& cfg;
    std::map<std::string, Vec> p;  // every parameter, flattened row-major
    Ref(const Rwkv7& m) : cfg(m.config()) {
        for (auto& [n, v] : m.named_parameters()) p[n] = v.value().to_vector();
    }
    const Vec& at(const std::string& n) const { return p.at(n); }

    Vec layer_norm(const Vec& x, const std::string& name) const {
        const Vec &w = at(name + ".weight"), &b = at(name + ".bias");
        const size_t c = x.size();
        double mu = 0, var = 0;
        for (double e : x) mu += e;
        mu /= c;
        for (double e : x) var += (e - mu) * (e - mu);
        var /= c;
        Vec y(c);
        for (size_t i = 0; i < c; ++i) y[i] = (x[i] - mu) / std::sqrt(var + 1e-5) * w[i] + b[i];
        return y;
    }
    // Linear: W (out, in), y = W x
    static Vec linear(const Vec& w, const Vec& x, size_t out) {
        Vec y(out, 0.0);
        for (size_t o = 0; o < out; ++o)
            for (size_t i = 0; i < x.size(); ++i) y[o] += w[o * x.size() + i] * x[i];
        return y;
    }
    // LoRA: M (in, out), y = x M
    static Vec right(const Vec& x, const Vec& m, size_t out) {
        Vec y(out, 0.0);
        for (size_t i = 0; i < x.size(); ++i)
            for (size_t o = 0; o < out; ++o) y[o] += x[i] * m[i * out + o];
        return y;
    }
    static double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

    // state: per layer att shift (C), WKV (H * N * N), ffn shift (C)
    std::vector<Vec> att_shift, wkv, ffn_shift;
    void reset() {
        const size_t c = cfg.n_embd, nl = cfg.n_layer;
        att_shift.assign(nl, Vec(c, 0.0));
        ffn_shift.assign(nl, Vec(c, 0.0));
        wkv.assign(nl, Vec(static_cast<size_t>(cfg.n_head() * cfg.head_size * cfg.head_size), 0.0));
    }

    Vec step(int64_t token) {
        const size_t c = cfg.n_embd, nh = cfg.n_head(), n = cfg.head_size;
        Vec x(at("emb.weight").begin() + token * c, at("emb.weight").begin() + (token + 1) * c);
        Vec v_first;
        for (size_t l = 0; l < static_cast<size_t>(cfg.n_layer); ++l) {
            const std::string b = "blocks." + std::to_string(l) + ".";
            const std::string a = b + "att.";
            if (l == 0) x = layer_norm(x, b + "ln0");
            const Vec xa = layer_norm(x, b + "ln1");
            const Vec prev = att_shift[l];
            att_shift[l] = xa;
            auto mix = [&](const char* name) {
                const Vec& mu = at(a + name);
                Vec y(c);
                for (size_t i = 0; i < c; ++i) y[i] = xa[i] + (prev[i] - xa[i]) * mu[i];
                return y;
            };
            const Vec xr = mix("x_r"), xw = mix("x_w"), xk = mix("x_k"), xv = mix("x_v"),
                      xaa = mix("x_a"), xg = mix("x_g");
            const Vec r = linear(at(a + "receptance.weight"), xr, c);
            Vec k = linear(at(a + "key.weight"), xk, c);
            Vec v = linear(at(a + "value.weight"), xv, c);
            Vec hw = right(xw, at(a + "w1"), cfg.d_decay);
            for (double& e : hw) e = std::tanh(e);
            Vec w = right(hw, at(a + "w2"), c);
            for (size_t i = 0; i < c; ++i) w[i] += at(a + "w0")[i];
            Vec aa = right(right(xaa, at(a + "a1"), cfg.d_aaa), at(a + "a2"), c);
            for (size_t i = 0; i < c; ++i) aa[i] = sigmoid(at(a + "a0")[i] + aa[i]);
            Vec hg = right(xg, at(a + "g1"), cfg.d_gate);
            for (double& e : hg) e = sigmoid(e);
            const Vec g = right(hg, at(a + "g2"), c);
            // kk from the original k, per head L2-normalised
            Vec kk(c);
            for (size_t i = 0; i < c; ++i) kk[i] = k[i] * at(a + "k_k")[i];
            for (size_t h = 0; h < nh; ++h) {
                double s = 0;
                for (size_t j = 0; j < n; ++j) s += kk[h * n + j] * kk[h * n + j];
                const double norm = std::max(std::sqrt(s), 1e-12);
                for (size_t j = 0; j < n; ++j) kk[h * n + j] /= norm;
            }
            for (size_t i = 0; i < c; ++i) k[i] = k[i] * (1 + (aa[i] - 1) * at(a + "k_a")[i]);
            if (l == 0) {
                v_first = v;
            } else {
                const Vec gv = right(right(xv, at(a + "v1"), cfg.d_mv), at(a + "v2"), c);
                for (size_t i = 0; i < c; ++i) {
                    const double gate = sigmoid(at(a + "v0")[i] + gv[i]);
                    v[i] = v[i] + (v_first[i] - v[i]) * gate;
                }
            }
            // WKV: S[i][j], i = value, j = key
            Vec y(c, 0.0);
            for (size_t h = 0; h < nh; ++h) {
                double* s = wkv[l].data() + h * n * n;
                const size_t o = h * n;
                for (size_t i = 0; i < n; ++i) {
                    double sa = 0;
                    for (size_t j = 0; j < n; ++j) sa += s[i * n + j] * (-kk[o + j]);
                    for (size_t j = 0; j < n; ++j) {
                        const double decay = std::exp(-std::exp(-0.5) * sigmoid(w[o + j]));
                        s[i * n + j] = s[i * n + j] * decay + sa * (kk[o + j] * aa[o + j]) +
                                       v[o + i] * k[o + j];
                    }
                    for (size_t j = 0; j < n; ++j) y[o + i] += s[i * n + j] * r[o + j];
                }
                // GroupNorm of the head, eps 64e-5
                double mu = 0, var = 0;
                for (size_t i = 0; i < n; ++i) mu += y[o + i];
                mu /= n;
                for (size_t i = 0; i < n; ++i) var += (y[o + i] - mu) * (y[o + i] - mu);
                var /= n;
                for (size_t i = 0; i < n; ++i)
                    y[o + i] =
                        (y[o + i] - mu) / std::sqrt(var + 64e-5) * at(a + "ln_x.weight")[o + i] +
                        at(a + "ln_x.bias")[o + i];
                double beta = 0;
                for (size_t j = 0; j < n; ++j) beta += r[o + j] * k[o + j] * at(a + "r_k")[o + j];
                for (size_t i = 0; i < n; ++i) y[o + i] += beta * v[o + i];
            }
            for (size_t i = 0; i < c; ++i) y[i] *= g[i];
            const Vec out = linear(at(a + "output.weight"), y, c);
            for (size_t i = 0; i < c; ++i) x[i] += out[i];
            // channel mix
            const Vec xf = layer_norm(x, b + "ln2");
            const Vec pf = ffn_shift[l];
            ffn_shift[l] = xf;
            Vec kx(c);
            for (size_t i = 0; i < c; ++i) kx[i] = xf[i] + (pf[i] - xf[i]) * at(b + "ffn.x_k")[i];
            Vec hid = linear(at(b + "ffn.key.weight"), kx, cfg.dim_ffn);
            for (double& e : hid) e = e > 0 ? e * e : 0.0;
            const Vec fo = linear(at(b + "ffn.value.weight"), hid, c);
            for (size_t i = 0; i < c; ++i) x[i] += fo[i];
        }
        return linear(at("head.weight"), layer_norm(x, "ln_out"), cfg.vocab);
    }
};

void compare_with_reference(const Rwkv7Config& cfg, uint64_t seed) {
    Rwkv7 m(cfg, DType::f64);
    Rng rng(seed, "reference");
    m.init_official(rng);
    testing::randomise_zero_parts(m, rng);
    const int64_t b = 2, t = 7;
    const Tensor ids = testing::random_ids(b, t, cfg.vocab, rng);
    ag::NoGradGuard ng;
    const auto logits = m.forward(ids).value().to_vector();  // (B, T, V)
    Ref ref(m);
    double worst = 0, biggest = 0;
    for (int64_t s = 0; s < b; ++s) {
        ref.reset();
        for (int64_t i = 0; i < t; ++i) {
            const Vec want = ref.step(static_cast<int64_t>(ids.get({s, i})));
            for (int64_t j = 0; j < cfg.vocab; ++j) {
                const double got = logits[static_cast<size_t>((s * t + i) * cfg.vocab + j)];
                worst = std::max(worst, std::fabs(got - want[static_cast<size_t>(j)]));
                biggest = std::max(biggest, std::fabs(want[static_cast<size_t>(j)]));
            }
        }
    }
    EXPECT_LT(worst, 1e-10);
    EXPECT_GT(biggest, 0.1);  // not a trivial comparison
}

TEST(Rwkv7Reference, LogitsMatchScalarReferenceF64) {
    compare_with_reference(Rwkv7Config::with_defaults(23, 3, 32, 16), 1);
    Rwkv7Config odd;  // one head, free LoRA ranks and FFN width
    odd.vocab = 9;
    odd.n_layer = 2;
    odd.n_embd = 12;
    odd.head_size = 12;
    odd.d_decay = 3;
    odd.d_aaa = 4;
    odd.d_mv = 5;
    odd.d_gate = 2;
    odd.dim_ffn = 20;
    compare_with_reference(odd, 2);
}

}  // namespace
}  // namespace goose::models
