// The engine's fused elementwise chains: layer norm, token-shift lerps, LoRA activations and
// the per-head time mix (decay, a, kk, k, value residual, WKV-7 step, group norm, bonus, gate).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine_kernels.h"
#include "ops/cpu/simd.h"

namespace goose::infer::detail {

namespace {
using simd::kLanes;
using simd::VecF;

constexpr float kDecayScale = -0.6065306597126334f;  // -exp(-0.5): decay = exp(this * sigmoid(w))
constexpr float kLnXEps = 64e-5f;                    // ln_x group norm
constexpr float kNormEps = 1e-12f;                   // F.normalize

// sum_i (x[i] - m)^2
float centered_sq(const float* x, float m, int64_t n) {
    const VecF vm = simd::broadcast(m);
    VecF acc = simd::broadcast(0.f);
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const VecF d = simd::sub(simd::load(x + i), vm);
        acc = simd::fma(d, d, acc);
    }
    float s = simd::reduce_add(acc);
    for (; i < n; ++i) s += (x[i] - m) * (x[i] - m);
    return s;
}

// src (n floats) as a kLanes-padded array: src itself when n is a multiple of kLanes, else a
// copy in buf with zeros after n.
const float* padded(const float* src, int64_t n, int64_t np, float* buf) {
    if (n == np) return src;
    std::memcpy(buf, src, sizeof(float) * static_cast<size_t>(n));
    std::fill(buf + n, buf + np, 0.f);
    return buf;
}
}  // namespace

void layer_norm(const float* x, const float* w, const float* b, float* out, int64_t n,
                float eps) {
    const float mean = simd::sum(x, n) / static_cast<float>(n);
    const float rstd = 1.f / std::sqrt(centered_sq(x, mean, n) / static_cast<float>(n) + eps);
    const VecF vm = simd::broadcast(mean), vr = simd::broadcast(rstd);
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const VecF d = simd::mul(simd::sub(simd::load(x + i), vm), vr);
        simd::store(out + i, simd::fma(d, simd::load(w + i), simd::load(b + i)));
    }
    for (; i < n; ++i) out[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

void token_mix(const float* x, const float* prev, const float* const* coef, float* const* outs,
               int count, int64_t n) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const VecF xv = simd::load(x + i);
        const VecF xx = simd::sub(simd::load(prev + i), xv);
        for (int m = 0; m < count; ++m)
            simd::store(outs[m] + i, simd::fma(xx, simd::load(coef[m] + i), xv));
    }
    for (; i < n; ++i)
        for (int m = 0; m < count; ++m) outs[m][i] = x[i] + (prev[i] - x[i]) * coef[m][i];
}

void tanh_inplace(float* x, int64_t n) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) simd::store(x + i, simd::tanh(simd::load(x + i)));
    for (; i < n; ++i) x[i] = std::tanh(x[i]);
}

void sigmoid_inplace(float* x, int64_t n) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) simd::store(x + i, simd::sigmoid(simd::load(x + i)));
    for (; i < n; ++i) x[i] = 1.f / (1.f + std::exp(-x[i]));
}

namespace {
// The per-channel vectors of one head's WKV step.
struct WkvVectors {
    const float *kk, *decay, *b, *k, *r, *v;
    int64_t n, nv;  // head size; its multiple of kLanes
};

// Rows i0 .. i0+R-1 of the state (row = value index): sa_i = -S_i . kk, then
// S_i = S_i * decay + sa_i b + v_i k and y_i = S_i . r. R rows at a time share the loads of the
// channel vectors and give R independent accumulation chains.
template <int R>
[[gnu::always_inline]] inline void wkv_rows(const WkvVectors& w, float* state, int64_t i0,
                                            float* y) {
    const int64_t n = w.n, nv = w.nv;
    float* s[R];
    VecF acc[R];
    for (int q = 0; q < R; ++q) {
        s[q] = state + (i0 + q) * n;
        acc[q] = simd::broadcast(0.f);
    }
    for (int64_t j = 0; j < nv; j += kLanes) {
        const VecF kkj = simd::load(w.kk + j);
        for (int q = 0; q < R; ++q) acc[q] = simd::fma(simd::load(s[q] + j), kkj, acc[q]);
    }
    float sa[R];
    VecF vsa[R], vv[R], ya[R];
    for (int q = 0; q < R; ++q) {
        float t = simd::reduce_add(acc[q]);
        for (int64_t j = nv; j < n; ++j) t += s[q][j] * w.kk[j];
        sa[q] = -t;
        vsa[q] = simd::broadcast(sa[q]);
        vv[q] = simd::broadcast(w.v[i0 + q]);
        ya[q] = simd::broadcast(0.f);
    }
    for (int64_t j = 0; j < nv; j += kLanes) {
        const VecF d = simd::load(w.decay + j), b = simd::load(w.b + j), k = simd::load(w.k + j),
                   r = simd::load(w.r + j);
        for (int q = 0; q < R; ++q) {
            VecF sj = simd::mul(simd::load(s[q] + j), d);
            sj = simd::fma(vsa[q], b, sj);
            sj = simd::fma(vv[q], k, sj);
            simd::store(s[q] + j, sj);
            ya[q] = simd::fma(sj, r, ya[q]);
        }
    }
    for (int q = 0; q < R; ++q) {
        float yi = simd::reduce_add(ya[q]);
        const float vi = w.v[i0 + q];
        for (int64_t j = nv; j < n; ++j) {
            s[q][j] = s[q][j] * w.decay[j] + sa[q] * w.b[j] + vi * w.k[j];
            yi += s[q][j] * w.r[j];
        }
        y[i0 + q] = yi;
    }
}
}  // namespace

void time_mix_head(const TimeMixParams& p, const TimeMixRow& row, int64_t h, float* state) {
    const int64_t n = p.head_size, o = h * n;
    const int64_t np = (n + kLanes - 1) / kLanes * kLanes;
    constexpr int64_t M = kMaxHeadSize;
    // inputs, padded when n is not a multiple of kLanes
    alignas(64) float in_buf[14][M];
    int used = 0;
    auto in = [&](const float* src) { return padded(src, n, np, in_buf[used++]); };
    const float *r = in(row.r + o), *w = in(row.w + o), *k = in(row.k + o), *v = in(row.v + o),
                *a = in(row.a + o), *w0 = in(p.w0 + o), *a0 = in(p.a0 + o), *kk_k = in(p.k_k + o),
                *k_a = in(p.k_a + o);
    const float *vg = nullptr, *v0 = nullptr, *vf = nullptr;
    if (!p.first_layer) {
        vg = in(row.vg + o);
        v0 = in(p.v0 + o);
        vf = in(row.v_first + o);
    }
    // per channel: decay, a, kk (before normalising), the modified k, the mixed v
    alignas(64) float decay[M], kmod[M], vmix[M], kk[M], bvec[M], y[M];
    const VecF one = simd::broadcast(1.f), dscale = simd::broadcast(kDecayScale);
    VecF sq = simd::broadcast(0.f);
    alignas(64) float av[M];
    for (int64_t j = 0; j < np; j += kLanes) {
        const VecF wv = simd::add(simd::load(w0 + j), simd::load(w + j));
        simd::store(decay + j, simd::exp(simd::mul(dscale, simd::sigmoid(wv))));
        const VecF aj = simd::sigmoid(simd::add(simd::load(a0 + j), simd::load(a + j)));
        simd::store(av + j, aj);
        const VecF kj = simd::load(k + j);
        const VecF kkj = simd::mul(kj, simd::load(kk_k + j));
        sq = simd::fma(kkj, kkj, sq);
        simd::store(kk + j, kkj);
        // k * (1 + (a - 1) * k_a)
        simd::store(kmod + j, simd::mul(kj, simd::fma(simd::sub(aj, one), simd::load(k_a + j), one)));
        VecF vj = simd::load(v + j);
        if (!p.first_layer) {
            const VecF gate = simd::sigmoid(simd::add(simd::load(v0 + j), simd::load(vg + j)));
            vj = simd::fma(simd::sub(simd::load(vf + j), vj), gate, vj);  // lerp(v, v_first)
        }
        simd::store(vmix + j, vj);
    }
    if (p.first_layer) std::memcpy(row.v_first + o, vmix, sizeof(float) * static_cast<size_t>(n));
    const float inv = 1.f / std::max(std::sqrt(simd::reduce_add(sq)), kNormEps);
    const VecF vinv = simd::broadcast(inv);
    for (int64_t j = 0; j < np; j += kLanes) {
        const VecF kkj = simd::mul(simd::load(kk + j), vinv);
        simd::store(kk + j, kkj);
        simd::store(bvec + j, simd::mul(kkj, simd::load(av + j)));  // b = kk * a
    }
    // WKV-7 (spec §3.5): sa = S (-kk); S = S diag(decay) + sa b^T + v k^T; y = S r
    const WkvVectors wv{kk, decay, bvec, kmod, r, vmix, n, n / kLanes * kLanes};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) wkv_rows<4>(wv, state, i, y);
    for (; i < n; ++i) wkv_rows<1>(wv, state, i, y);
    // group norm of the head, the bonus (r . k . r_k) v, the gate
    const float mean = simd::sum(y, n) / static_cast<float>(n);
    const float rstd = 1.f / std::sqrt(centered_sq(y, mean, n) / static_cast<float>(n) + kLnXEps);
    float bonus = 0;
    const float* rk = p.r_k + o;
    for (int64_t j = 0; j < n; ++j) bonus += r[j] * kmod[j] * rk[j];
    const float* lw = p.lnx_w + o;
    const float* lb = p.lnx_b + o;
    const float* g = row.g + o;
    float* out = row.out + o;
    for (int64_t i = 0; i < n; ++i)
        out[i] = ((y[i] - mean) * rstd * lw[i] + lb[i] + bonus * vmix[i]) * g[i];
}

}  // namespace goose::infer::detail
