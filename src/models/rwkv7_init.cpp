// RWKV-7 initialisation (spec §9): the per-channel formulas, orthogonal matrices via LAPACK QR,
// and train.py's generate_init_weight overrides.
#include <lapacke.h>

#include <cmath>

#include "goose/models/rwkv7.h"
#include "rwkv7_init.h"

namespace goose::models {

Tensor orthogonal_matrix(int64_t rows, int64_t cols, double gain, Rng& rng, DType dtype) {
    if (rows < 1 || cols < 1) fail("orthogonal_matrix: bad shape ({}, {})", rows, cols);
    // QR of a tall (m, n) standard normal matrix A, m >= n, stored column-major (i.i.d.
    // entries: the layout does not change the distribution, and LAPACK needs no transposes).
    // The result is Q (m, n) when rows >= cols, else Qᵀ.
    const bool tall = rows >= cols;
    const int64_t m = tall ? rows : cols, n = tall ? cols : rows;
    std::vector<double> a(static_cast<size_t>(m * n));  // A(i, j) = a[j * m + i]
    rng.fill_normal(a);
    std::vector<double> tau(static_cast<size_t>(n));
    const auto mi = static_cast<lapack_int>(m), ni = static_cast<lapack_int>(n);
    lapack_int info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, mi, ni, a.data(), mi, tau.data());
    GOOSE_ASSERT(info == 0, "LAPACKE_dgeqrf failed: info {}", info);
    std::vector<double> sign(static_cast<size_t>(n));  // sign(diag R) (+1 for a zero)
    for (int64_t j = 0; j < n; ++j) sign[j] = a[j * m + j] < 0 ? -gain : gain;
    info = LAPACKE_dorgqr(LAPACK_COL_MAJOR, mi, ni, ni, a.data(), mi, tau.data());
    GOOSE_ASSERT(info == 0, "LAPACKE_dorgqr failed: info {}", info);
    Tensor out = Tensor::empty(Shape{rows, cols}, DType::f64);  // row-major
    double* o = out.data<double>();
    for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < m; ++i) {
            const double q = a[j * m + i] * sign[j];  // gain * Q(i, j) * sign(R_jj)
            if (tall)
                o[i * n + j] = q;  // (m, n)
            else
                o[j * m + i] = q;  // Qᵀ (n, m)
        }
    return out.to(dtype);
}

namespace detail {

std::vector<double> init_vector(const Rwkv7Config& cfg, int layer, std::string_view which) {
    const int64_t c = cfg.n_embd, nh = cfg.head_size;
    const double l = layer, nl = static_cast<double>(cfg.n_layer);
    // ratio_0_to_1 = l / (L - 1) (Python divides by zero for L = 1: we take 0)
    const double r01 = cfg.n_layer > 1 ? l / (nl - 1.0) : 0.0;
    const double r1 = 1.0 - l / nl;  // ratio_1_to_almost0
    std::vector<double> v(static_cast<size_t>(c));
    auto fill = [&](auto f) {
        for (int64_t i = 0; i < c; ++i) {
            const double n = static_cast<double>(i);
            const double ddd = n / static_cast<double>(c);
            const double linear = c > 1 ? n / static_cast<double>(c - 1) - 0.5 : -0.5;
            const double half = static_cast<double>(nh - 1) / 2.0;  // 31.5 for N = 64
            double z = nh > 1 ? (static_cast<double>(i % nh) - half) / half : 0.0;
            z = z * std::abs(z);  // zigzag
            const double frac = c > 1 ? n / static_cast<double>(c - 1) : 0.0;
            const double www = -6.0 + 6.0 * std::pow(frac, 1.0 + std::pow(r01, 0.3));
            v[static_cast<size_t>(i)] = f(ddd, linear, z, www);
        }
    };
    auto mix = [&](double e) {
        fill([&](double ddd, double, double, double) { return 1.0 - std::pow(ddd, e * r1); });
    };
    if (which == "x_r" || which == "x_g")
        mix(0.2);
    else if (which == "x_w" || which == "x_a")
        mix(0.9);
    else if (which == "x_k" || which == "x_v")
        mix(0.7);
    else if (which == "ffn.x_k")
        fill([&](double ddd, double, double, double) {
            return 1.0 - std::pow(ddd, std::pow(r1, 4));
        });
    else if (which == "w0")
        fill([](double, double, double z, double www) { return www + 0.5 + 2.5 * z; });
    else if (which == "a0")
        fill([](double, double lin, double z, double) { return -0.19 + 0.3 * z + 0.4 * lin; });
    else if (which == "v0")
        fill([](double, double lin, double, double) { return 0.73 - 0.4 * lin; });
    else if (which == "k_k")
        fill([](double, double lin, double, double) { return 0.71 - 0.1 * lin; });
    else if (which == "k_a")
        fill([](double, double, double, double) { return 1.02; });
    else
        fail("rwkv7 init_vector: unknown parameter '{}'", which);
    return v;
}

void init_deterministic(Rwkv7& m) {
    const Rwkv7Config& cfg = m.config();
    const int64_t c = cfg.n_embd;
    auto set_vec = [&](Var& p, const std::vector<double>& v) {
        p.value_mut().copy_(Tensor::from(Shape{1, 1, c}, v, DType::f64));
    };
    auto norm = [](nn::LayerNorm& ln) {
        ln.weight.value_mut().fill_(1.0);
        ln.bias.value_mut().zero_();
    };
    for (size_t l = 0; l < static_cast<size_t>(cfg.n_layer); ++l) {
        Rwkv7Block& b = m.block(l);
        const int li = static_cast<int>(l);
        norm(*b.ln1);
        norm(*b.ln2);
        if (b.ln0) norm(*b.ln0);
        Rwkv7TimeMix& a = *b.att;
        const std::pair<Var*, const char*> vecs[] = {
            {&a.x_r, "x_r"}, {&a.x_w, "x_w"}, {&a.x_k, "x_k"}, {&a.x_v, "x_v"},
            {&a.x_a, "x_a"}, {&a.x_g, "x_g"}, {&a.w0, "w0"},   {&a.a0, "a0"},
            {&a.v0, "v0"},   {&a.k_k, "k_k"}, {&a.k_a, "k_a"}};
        for (const auto& [p, name] : vecs) set_vec(*p, init_vector(cfg, li, name));
        for (Var* p : {&a.w1, &a.a1, &a.v1, &a.g1, &a.output->weight}) p->value_mut().zero_();
        a.r_k.value_mut().fill_(-0.04);
        a.ln_x->weight.value_mut().fill_(
            std::pow(static_cast<double>(l + 1) / static_cast<double>(cfg.n_layer), 0.7));
        a.ln_x->bias.value_mut().zero_();
        set_vec(b.ffn->x_k, init_vector(cfg, li, "ffn.x_k"));
        b.ffn->value->weight.value_mut().zero_();
    }
    norm(*m.ln_out);
}

}  // namespace detail

void Rwkv7::init_official(Rng& rng, bool bf16_round) {
    detail::init_deterministic(*this);
    const Rwkv7Config& cfg = cfg_;
    const int64_t c = cfg.n_embd, v = cfg.vocab;
    // Each random tensor from its own stream, named after the parameter.
    auto ortho = [&](Var& p, const std::string& name, double gain) {
        Rng r = rng.fork(name);
        p.value_mut().copy_(orthogonal_matrix(p.size(0), p.size(1), gain, r, DType::f64));
    };
    // ortho_init of __init__ (LoRA second matrices): gain * sqrt(rows / cols) when rows > cols
    auto lora = [&](Var& p, const std::string& name) {
        const double rows = static_cast<double>(p.size(0)), cols = static_cast<double>(p.size(1));
        ortho(p, name, 0.1 * (rows > cols ? std::sqrt(rows / cols) : 1.0));
    };
    {
        Rng r = rng.fork("emb.weight");
        emb->weight.value_mut().copy_(
            Tensor::uniform(emb->weight.shape(), r, DType::f64, -1e-4, 1e-4));
    }
    for (size_t l = 0; l < static_cast<size_t>(cfg.n_layer); ++l) {
        Rwkv7TimeMix& a = *block(l).att;
        const std::string p = "blocks." + std::to_string(l) + ".";
        lora(a.w2, p + "att.w2");
        lora(a.a2, p + "att.a2");
        lora(a.v2, p + "att.v2");
        lora(a.g2, p + "att.g2");
        ortho(a.receptance->weight, p + "att.receptance.weight", 1.0);
        ortho(a.key->weight, p + "att.key.weight", 0.1);
        ortho(a.value->weight, p + "att.value.weight", 1.0);
        ortho(block(l).ffn->key->weight, p + "ffn.key.weight", 1.0);
    }
    const double head_gain =
        v > c ? 0.5 * std::sqrt(static_cast<double>(v) / static_cast<double>(c)) : 0.5;
    ortho(head->weight, "head.weight", head_gain);
    if (bf16_round)
        for (auto& [name, p] : named_parameters()) p.value_mut().copy_(p.value().to(DType::bf16));
}

}  // namespace goose::models
