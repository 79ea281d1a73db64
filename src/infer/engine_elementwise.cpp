// The engine's fused elementwise chains: layer norm, token-shift lerps, LoRA activations and
// the time mix in three passes (per channel: decay, a, kk, k, value residual; per head: the
// WKV-7 step; per head again: group norm, bonus, gate).
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

void time_mix_prepare(const TimeMixParams& p, const TimeMixRow& row) {
    const int64_t c = p.n_embd, n = p.head_size;
    const VecF one = simd::broadcast(1.f), dscale = simd::broadcast(kDecayScale);
    auto channel_scalar = [&](int64_t j) {
        const float aj = 1.f / (1.f + std::exp(-(p.a0[j] + row.a[j])));
        row.w[j] = std::exp(kDecayScale / (1.f + std::exp(-(p.w0[j] + row.w[j]))));
        row.kk[j] = row.k[j] * p.k_k[j];
        row.k[j] = row.k[j] * (1.f + (aj - 1.f) * p.k_a[j]);
        row.a[j] = aj;  // b = kk a once kk is normalised
        if (!p.first_layer) {
            const float gate = 1.f / (1.f + std::exp(-(p.v0[j] + row.vg[j])));
            row.v[j] += (row.v_first[j] - row.v[j]) * gate;
        }
    };
    int64_t j = 0;
    for (; j + kLanes <= c; j += kLanes) {
        const VecF wv = simd::add(simd::load(p.w0 + j), simd::load(row.w + j));
        simd::store(row.w + j, simd::exp(simd::mul(dscale, simd::sigmoid(wv))));
        const VecF aj = simd::sigmoid(simd::add(simd::load(p.a0 + j), simd::load(row.a + j)));
        const VecF kj = simd::load(row.k + j);
        simd::store(row.kk + j, simd::mul(kj, simd::load(p.k_k + j)));
        simd::store(row.k + j, simd::mul(kj, simd::fma(simd::sub(aj, one), simd::load(p.k_a + j), one)));
        simd::store(row.a + j, aj);
        if (!p.first_layer) {
            const VecF vj = simd::load(row.v + j);
            const VecF gate = simd::sigmoid(simd::add(simd::load(p.v0 + j), simd::load(row.vg + j)));
            simd::store(row.v + j, simd::fma(simd::sub(simd::load(row.v_first + j), vj), gate, vj));
        }
    }
    for (; j < c; ++j) channel_scalar(j);
    if (p.first_layer) std::memcpy(row.v_first, row.v, sizeof(float) * static_cast<size_t>(c));
    // kk /= max(|kk| per head, 1e-12); b = kk a
    for (int64_t o = 0; o < c; o += n) {
        const float norm = std::sqrt(centered_sq(row.kk + o, 0.f, n));
        const float inv = 1.f / std::max(norm, kNormEps);
        const VecF vinv = simd::broadcast(inv);
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes) {
            const VecF kkv = simd::mul(simd::load(row.kk + o + i), vinv);
            simd::store(row.kk + o + i, kkv);
            simd::store(row.a + o + i, simd::mul(kkv, simd::load(row.a + o + i)));
        }
        for (; i < n; ++i) {
            row.kk[o + i] *= inv;
            row.a[o + i] *= row.kk[o + i];
        }
    }
}

namespace {
// The per-channel vectors of one head's WKV step.
struct WkvVectors {
    const float *kk, *decay, *b, *k, *r, *v;
    int64_t n, nv;  // head size; its multiple of kLanes
};

// Row i of the state (row = value index): sa_i = -S_i . kk, then S_i = S_i * decay + sa_i b +
// v_i k and y_i = S_i . r.
inline void wkv_row(const WkvVectors& w, float* state, int64_t i, float* y) {
    const int64_t n = w.n, nv = w.nv;
    float* s = state + i * n;
    VecF acc = simd::broadcast(0.f);
    for (int64_t j = 0; j < nv; j += kLanes)
        acc = simd::fma(simd::load(s + j), simd::load(w.kk + j), acc);
    float sa = simd::reduce_add(acc);
    for (int64_t j = nv; j < n; ++j) sa += s[j] * w.kk[j];
    sa = -sa;
    const float vi = w.v[i];
    const VecF vsa = simd::broadcast(sa), vv = simd::broadcast(vi);
    VecF ya = simd::broadcast(0.f);
    for (int64_t j = 0; j < nv; j += kLanes) {
        VecF t = simd::mul(simd::load(s + j), simd::load(w.decay + j));
        t = simd::fma(vsa, simd::load(w.b + j), t);
        t = simd::fma(vv, simd::load(w.k + j), t);
        simd::store(s + j, t);
        ya = simd::fma(t, simd::load(w.r + j), ya);
    }
    float yi = simd::reduce_add(ya);
    for (int64_t j = nv; j < n; ++j) {
        s[j] = s[j] * w.decay[j] + sa * w.b[j] + vi * w.k[j];
        yi += s[j] * w.r[j];
    }
    y[i] = yi;
}

// The same for rows i .. i+3: the channel vectors are loaded once for four rows, which also
// gives four independent accumulation chains (written out: arrays of vectors made the compiler
// keep them on the stack).
inline void wkv_rows4(const WkvVectors& w, float* state, int64_t i, float* y) {
    const int64_t n = w.n, nv = w.nv;
    float *s0 = state + i * n, *s1 = s0 + n, *s2 = s1 + n, *s3 = s2 + n;
    VecF a0 = simd::broadcast(0.f), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t j = 0; j < nv; j += kLanes) {
        const VecF kk = simd::load(w.kk + j);
        a0 = simd::fma(simd::load(s0 + j), kk, a0);
        a1 = simd::fma(simd::load(s1 + j), kk, a1);
        a2 = simd::fma(simd::load(s2 + j), kk, a2);
        a3 = simd::fma(simd::load(s3 + j), kk, a3);
    }
    float sa0 = simd::reduce_add(a0), sa1 = simd::reduce_add(a1), sa2 = simd::reduce_add(a2),
          sa3 = simd::reduce_add(a3);
    for (int64_t j = nv; j < n; ++j) {
        sa0 += s0[j] * w.kk[j];
        sa1 += s1[j] * w.kk[j];
        sa2 += s2[j] * w.kk[j];
        sa3 += s3[j] * w.kk[j];
    }
    sa0 = -sa0, sa1 = -sa1, sa2 = -sa2, sa3 = -sa3;
    const float v0 = w.v[i], v1 = w.v[i + 1], v2 = w.v[i + 2], v3 = w.v[i + 3];
    VecF y0 = simd::broadcast(0.f), y1 = y0, y2 = y0, y3 = y0;
    for (int64_t j = 0; j < nv; j += kLanes) {
        const VecF d = simd::load(w.decay + j), b = simd::load(w.b + j), k = simd::load(w.k + j),
                   r = simd::load(w.r + j);
        auto step = [&](float* s, float sa, float vi, VecF& ya) {
            VecF t = simd::mul(simd::load(s + j), d);
            t = simd::fma(simd::broadcast(sa), b, t);
            t = simd::fma(simd::broadcast(vi), k, t);
            simd::store(s + j, t);
            ya = simd::fma(t, r, ya);
        };
        step(s0, sa0, v0, y0);
        step(s1, sa1, v1, y1);
        step(s2, sa2, v2, y2);
        step(s3, sa3, v3, y3);
    }
    float r0 = simd::reduce_add(y0), r1 = simd::reduce_add(y1), r2 = simd::reduce_add(y2),
          r3 = simd::reduce_add(y3);
    for (int64_t j = nv; j < n; ++j) {
        s0[j] = s0[j] * w.decay[j] + sa0 * w.b[j] + v0 * w.k[j];
        s1[j] = s1[j] * w.decay[j] + sa1 * w.b[j] + v1 * w.k[j];
        s2[j] = s2[j] * w.decay[j] + sa2 * w.b[j] + v2 * w.k[j];
        s3[j] = s3[j] * w.decay[j] + sa3 * w.b[j] + v3 * w.k[j];
        r0 += s0[j] * w.r[j];
        r1 += s1[j] * w.r[j];
        r2 += s2[j] * w.r[j];
        r3 += s3[j] * w.r[j];
    }
    y[i] = r0;
    y[i + 1] = r1;
    y[i + 2] = r2;
    y[i + 3] = r3;
}
}  // namespace

void wkv_head(const TimeMixRow& row, int64_t h, int64_t head_size, float* state) {
    const int64_t n = head_size, o = h * n;
    const WkvVectors wv{row.kk + o, row.w + o, row.a + o, row.k + o, row.r + o, row.v + o,
                        n, n / kLanes * kLanes};
    float* y = row.y + o;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) wkv_rows4(wv, state, i, y);
    for (; i < n; ++i) wkv_row(wv, state, i, y);
}

void time_mix_output(const TimeMixParams& p, const TimeMixRow& row) {
    const int64_t c = p.n_embd, n = p.head_size;
    for (int64_t o = 0; o < c; o += n) {
        float* y = row.y + o;
        const float mean = simd::sum(y, n) / static_cast<float>(n);
        const float rstd =
            1.f / std::sqrt(centered_sq(y, mean, n) / static_cast<float>(n) + kLnXEps);
        float bonus = 0;
        for (int64_t j = 0; j < n; ++j) bonus += row.r[o + j] * row.k[o + j] * p.r_k[o + j];
        const float* lw = p.lnx_w + o;
        const float* lb = p.lnx_b + o;
        const float* g = row.g + o;
        const float* v = row.v + o;
        const VecF vm = simd::broadcast(mean), vr = simd::broadcast(rstd),
                   vb = simd::broadcast(bonus);
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes) {
            VecF t = simd::mul(simd::sub(simd::load(y + i), vm), vr);
            t = simd::fma(t, simd::load(lw + i), simd::load(lb + i));
            t = simd::fma(vb, simd::load(v + i), t);
            simd::store(y + i, simd::mul(t, simd::load(g + i)));
        }
        for (; i < n; ++i) y[i] = ((y[i] - mean) * rstd * lw[i] + lb[i] + bonus * v[i]) * g[i];
    }
}

}  // namespace goose::infer::detail
