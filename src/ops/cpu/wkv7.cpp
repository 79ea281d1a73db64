// Fast CPU WKV-7: OpenMP over (batch, head), or over batch entries with their heads together
// when the batch is large; per head the state (N, N) lives in a per-thread buffer in the
// compute dtype (the forward keeps it transposed, the backward by rows). The forward saves the
// state at the end of every 16-step chunk and every step's sa = S a; the backward walks time
// backwards by "backstepping" (spec rwkv7.md §8.3): it reloads the state from the snapshot at
// each chunk end and reconstructs the earlier states of the chunk by inverting the update
// (decay >= 0.545).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include <omp.h>

#include "goose/ops/wkv7.h"
#include "ops/cpu/fast_math.h"
#include "ops/cpu/simd.h"
#include "ops/cpu/vec.h"

namespace goose::ops {

namespace {
constexpr int64_t kChunk = 16;             // steps between saved states
constexpr int64_t kParallelMin = 1 << 16;  // multiply-adds below which one thread does it all

struct Dims {
    int64_t B, T, H, N;
    int64_t chunks() const { return (T + kChunk - 1) / kChunk; }
    // Offset of row (b, t, h, :) of a packed (B, T, H, N) tensor.
    int64_t row(int64_t b, int64_t t, int64_t h) const { return ((b * T + t) * H + h) * N; }
};

Dims dims_of(const Tensor& r) {
    return {r.size(0), r.size(1), r.size(2), r.size(3)};
}

// The kernels are written once over vec.h's Vec<F> (f32 and f64).
using vec::Vec;
using vec::VecOf;
template <class F>
inline Vec<F> vload(const F* p) {
    return vec::load(p);
}
template <class F, class V>
inline void vstore(F* p, V a) {
    vec::store(p, a);
}
template <class F>
inline Vec<F> vbcast(F x) {
    return vec::bcast(x);
}
template <class V>
inline V vmul(V a, V b) {
    return vec::mul(a, b);
}
template <class V>
inline V vadd(V a, V b) {
    return vec::add(a, b);
}
template <class V>
inline V vsub(V a, V b) {
    return vec::sub(a, b);
}
template <class V>
inline V vfma(V a, V b, V c) {  // a * b + c
    return vec::fma(a, b, c);
}
template <class V>
inline auto vsum(V a) {
    return vec::hsum(a);
}

// exp(x) for x in [-87, 87] in f32 (callers clamp), within 1.5 ulp (checked against std::exp
// on every float of the range): 2^n p(x - n ln 2) with a Cody-Waite split of ln 2 and the
// degree-7 Taylor polynomial on |x - n ln 2| <= 0.35. Plain code that the compiler vectorises
// (std::exp is a scalar call, which made the decays a fifth of the forward's time).
[[gnu::always_inline]] inline float exp_f32(float x) {
    const float n = std::nearbyint(x * 1.44269504088896341f);
    const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.f / 5040;
    p = p * r + 1.f / 720;
    p = p * r + 1.f / 120;
    p = p * r + 1.f / 24;
    p = p * r + 1.f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.f;
    p = p * r + 1.f;
    return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

// The same in f64 for x in [-708, 708], within 1 ulp (checked on 1.4e7 points of the range):
// degree-13 Taylor polynomial; n is read from the low bits of x log2(e) + 1.5 2^52, which needs
// no double-to-integer conversion (AVX2 has none for 64-bit integers).
[[gnu::always_inline]] inline double exp_f64(double x) {
    constexpr double kShift = 0x1.8p52;
    const double t = x * 1.4426950408889634 + kShift;
    const double n = t - kShift;
    const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800;
    p = p * r + 1.0 / 479001600;
    p = p * r + 1.0 / 39916800;
    p = p * r + 1.0 / 3628800;
    p = p * r + 1.0 / 362880;
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const int64_t e = std::bit_cast<int64_t>(t) - std::bit_cast<int64_t>(kShift) + 1023;
    return p * std::bit_cast<double>(e << 52);
}

inline float exp_vec(float x) {
    return exp_f32(x);
}
inline double exp_vec(double x) {
    return exp_f64(x);
}

// sig[j] = sigmoid(w[j]), d[j] = exp(-exp(-0.5) sig[j]) in (0.545, 1].
template <class F>
void decay_row_generic(const F* w, F* sig, F* d, int64_t n) {
    // exp(-w) saturates outside [-lim, lim], where sigmoid is 0 or 1 to the dtype's precision
    // anyway; NaN stays NaN.
    const F lim = sizeof(F) == 4 ? F(87) : F(708);
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) sig[j] = std::min(std::max(-w[j], -lim), lim);
    const F scale = static_cast<F>(-kWkv7DecayScale);
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
        const F s = F(1) / (F(1) + exp_vec(sig[j]));
        sig[j] = s;
        d[j] = exp_vec(scale * s);
    }
}

template <class F>
void decay_row(const F* w, F* sig, F* d, int64_t n) {
    decay_row_generic(w, sig, d, n);
}
// f32: fast_math's branch-free sigmoid (its clamps are selects, which vectorise; the generic
// form's std::min/max do not) and e^x by rows.h's polynomial (the argument is in [-0.61, 0]).
template <>
void decay_row<float>(const float* w, float* sig, float* d, int64_t n) {
    const float scale = static_cast<float>(-kWkv7DecayScale);
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
        const float s = fast_math::sigmoid(w[j]);
        sig[j] = s;
        d[j] = cpu_rows::exp_core(scale * s);
    }
}

template <class F>
struct In {
    const F *r, *w, *k, *v, *a, *b;
};

template <class F>
In<F> pointers(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a,
               const Tensor& b) {
    return {r.data<F>(), w.data<F>(), k.data<F>(), v.data<F>(), a.data<F>(), b.data<F>()};
}

// ---- scratch layout ------------------------------------------------------------------------
// In the per-thread scratch a state row has Np = N rounded up to whole vectors with the columns
// past N zero, and the key-indexed vectors of a step are zero past N too, so every key loop runs
// whole vectors with no scalar tail: zero decay, b and k (and in the backward zero 1 / decay,
// k / decay, b / decay, r and a) keep the padding columns of S and dS at zero, and zero a and r
// keep them out of sa and y. The key vectors a loop reads together are interleaved by blocks
// of L lanes ("fields": block jb holds field 0's lanes, then field 1's, ...), so one pointer
// with constant offsets reaches them all.

template <class F>
constexpr int64_t kL = VecOf<F>::lanes;

template <class F>
int64_t padded(int64_t N) {
    return (N + kL<F> - 1) / kL<F> * kL<F>;
}

// Writes x[0, N) into field f of nf interleaved fields, zeros up to Np.
template <class F>
void pack_field(F* buf, int64_t nf, int64_t f, const F* x, int64_t N, int64_t Np) {
    constexpr int64_t L = kL<F>;
    int64_t j0 = 0;
    for (; j0 + L <= N; j0 += L) vstore(buf + j0 * nf + f * L, vload(x + j0));
    if (j0 < Np) {
        F* dst = buf + j0 * nf + f * L;
        for (int64_t l = 0; l < L; ++l) dst[l] = j0 + l < N ? x[j0 + l] : F(0);
    }
}

// Element j of field f of nf interleaved fields.
template <class F>
F field_at(const F* buf, int64_t nf, int64_t f, int64_t j) {
    constexpr int64_t L = kL<F>;
    return buf[j / L * L * nf + f * L + j % L];
}

// Packed (N, N) <-> padded rows (N, Np).
template <class F>
void load_rows(F* S, const F* src, int64_t N, int64_t Np) {
    for (int64_t i = 0; i < N; ++i) {
        if (src)
            std::copy(src + i * N, src + (i + 1) * N, S + i * Np);
        else
            std::fill(S + i * Np, S + i * Np + N, F(0));
        std::fill(S + i * Np + N, S + (i + 1) * Np, F(0));
    }
}

template <class F>
void store_rows(F* dst, const F* S, int64_t N, int64_t Np) {
    for (int64_t i = 0; i < N; ++i) std::copy(S + i * Np, S + i * Np + N, dst + i * N);
}

// Asks for the rows a later step reads (n elements from each pointer's offset o), so that they
// arrive while this step computes.
template <class F>
void prefetch_rows(std::initializer_list<const F*> ps, int64_t o, int64_t n) {
    constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(F));
    for (const F* p : ps)
        for (int64_t i = 0; i < n; i += kLine) __builtin_prefetch(p + o + i);
}

// ---- forward -----------------------------------------------------------------------------
// The forward keeps the state transposed, ST[j] = S[:, j] (one key's column, a vector over the
// value index i, padded to Np with zeros): sa = S a and y = S r are then sums of columns
// scaled by a_j and r_j, with no reduction across lanes, and the rows i of S (blocks of L
// values) are independent, so each block runs both passes of a step on its own.

// One block of L values (lanes) through one step: sa = Σ_j ST[j] a_j (the state before the
// step), ST[j] <- ST[j] d_j + sa b_j + v k_j, y = Σ_j ST[j] r_j. ST points at the block's
// lanes of column 0 (stride Np between columns); a, d, b, k, r: the step's key vectors (N).
template <class F>
void forward_block(F* ST, int64_t Np, int64_t N, const F* a, const F* d, const F* b, const F* k,
                   const F* r, const F* v, F* sa_out, F* y_out) {
    using V = Vec<F>;
    V s0 = vbcast(F(0)), s1 = s0, s2 = s0, s3 = s0;
    int64_t j = 0;
    for (; j + 4 <= N; j += 4) {  // four chains: the FMA latency, not its throughput, binds
        s0 = vfma(vload(ST + j * Np), vbcast(a[j]), s0);
        s1 = vfma(vload(ST + (j + 1) * Np), vbcast(a[j + 1]), s1);
        s2 = vfma(vload(ST + (j + 2) * Np), vbcast(a[j + 2]), s2);
        s3 = vfma(vload(ST + (j + 3) * Np), vbcast(a[j + 3]), s3);
    }
    for (; j < N; ++j) s0 = vfma(vload(ST + j * Np), vbcast(a[j]), s0);
    const V sa = vadd(vadd(s0, s1), vadd(s2, s3));
    vstore(sa_out, sa);
    const V vv = vload(v);
    V y0 = vbcast(F(0)), y1 = y0;
    j = 0;
    for (; j + 2 <= N; j += 2) {
        F* c0 = ST + j * Np;
        F* c1 = c0 + Np;
        const V x0 = vfma(vload(c0), vbcast(d[j]), vfma(sa, vbcast(b[j]), vmul(vv, vbcast(k[j]))));
        const V x1 = vfma(vload(c1), vbcast(d[j + 1]),
                          vfma(sa, vbcast(b[j + 1]), vmul(vv, vbcast(k[j + 1]))));
        vstore(c0, x0);
        vstore(c1, x1);
        y0 = vfma(x0, vbcast(r[j]), y0);
        y1 = vfma(x1, vbcast(r[j + 1]), y1);
    }
    for (; j < N; ++j) {
        F* c0 = ST + j * Np;
        const V x0 = vfma(vload(c0), vbcast(d[j]), vfma(sa, vbcast(b[j]), vmul(vv, vbcast(k[j]))));
        vstore(c0, x0);
        y0 = vfma(x0, vbcast(r[j]), y0);
    }
    vstore(y_out, vadd(y0, y1));
}

// Per-thread scratch of the forward for a group of G heads.
template <class F>
struct ForwardScratch {
    int64_t N, Np;
    std::vector<F> ST, sig, d, v, sa, y;  // G x (N, Np), (G N), (G N), (Np) x 3
    ForwardScratch(int64_t n, int64_t g)
        : N(n),
          Np(padded<F>(n)),
          ST(static_cast<size_t>(g * N * Np)),
          sig(static_cast<size_t>(g * N)),
          d(static_cast<size_t>(g * N)),
          v(static_cast<size_t>(Np)),
          sa(static_cast<size_t>(Np)),
          y(static_cast<size_t>(Np)) {}
};

// ST (N, Np) <- S (N, N) transposed (zeros when S is null; padding zero); and back.
template <class F>
void load_transposed(F* ST, const F* S, int64_t N, int64_t Np) {
    std::fill(ST, ST + N * Np, F(0));
    if (S)
        for (int64_t i = 0; i < N; ++i)
            for (int64_t j = 0; j < N; ++j) ST[j * Np + i] = S[i * N + j];
}
template <class F>
void store_transposed(F* S, const F* ST, int64_t N, int64_t Np) {
    for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) S[i * N + j] = ST[j * Np + i];
}

// Heads h0 .. h0+G-1 of batch entry b, step by step (a step's rows of those heads are
// contiguous in memory): runs the T steps from their entering states (s0: (B, H, N, N) or
// null = zeros); writes y, sa, the heads' snapshots (chunks, N, N) and final states (N, N).
template <class F>
void forward_heads(const Dims& D, const In<F>& in, int64_t b, int64_t h0, int64_t G, const F* s0,
                   F* y, F* sa, F* snaps, F* state_out, ForwardScratch<F>& sc) {
    const int64_t N = D.N, Np = sc.Np, NN = N * N, NC = D.chunks();
    constexpr int64_t L = kL<F>;
    for (int64_t g = 0; g < G; ++g) {
        const int64_t bh = b * D.H + h0 + g;
        load_transposed(sc.ST.data() + g * N * Np, s0 ? s0 + bh * NN : nullptr, N, Np);
    }
    for (int64_t t = 0; t < D.T; ++t) {
        const int64_t o0 = D.row(b, t, h0);
        if (t + 1 < D.T)
            prefetch_rows<F>({in.r, in.w, in.k, in.v, in.a, in.b}, D.row(b, t + 1, h0), G * N);
        decay_row(in.w + o0, sc.sig.data(), sc.d.data(), G * N);
        for (int64_t g = 0; g < G; ++g) {
            const int64_t o = o0 + g * N, bh = b * D.H + h0 + g;
            F* ST = sc.ST.data() + g * N * Np;
            std::copy(in.v + o, in.v + o + N, sc.v.begin());  // the padding stays zero
            for (int64_t i0 = 0; i0 < Np; i0 += L)
                forward_block(ST + i0, Np, N, in.a + o, sc.d.data() + g * N, in.b + o, in.k + o,
                              in.r + o, sc.v.data() + i0, sc.sa.data() + i0, sc.y.data() + i0);
            std::copy(sc.sa.begin(), sc.sa.begin() + N, sa + o);
            std::copy(sc.y.begin(), sc.y.begin() + N, y + o);
            if (t % kChunk == kChunk - 1 || t == D.T - 1)
                store_transposed(snaps + (bh * NC + t / kChunk) * NN, ST, N, Np);
        }
    }
    for (int64_t g = 0; g < G; ++g)
        store_transposed(state_out + (b * D.H + h0 + g) * NN, sc.ST.data() + g * N * Np, N, Np);
}

// Heads per task: all of a batch entry's heads when the batch alone gives the threads enough
// tasks (the inputs are then read in order, step by step), else one.
inline int64_t heads_per_task(const Dims& D) {
    return D.B >= 4 * static_cast<int64_t>(omp_get_max_threads()) ? D.H : 1;
}

template <class F>
Wkv7Forward forward_typed(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                          const Tensor& a, const Tensor& b, const Tensor& state_in) {
    const Dims D = dims_of(r);
    const int64_t N = D.N, NN = N * N, NC = D.chunks(), BH = D.B * D.H;
    const DType dt = r.dtype();
    const Tensor rc = r.contiguous(), wc = w.contiguous(), kc = k.contiguous(), vc = v.contiguous(),
                 ac = a.contiguous(), bc = b.contiguous();
    const Tensor s_in = state_in.defined() ? state_in.contiguous() : Tensor();
    const In<F> in = pointers<F>(rc, wc, kc, vc, ac, bc);
    Wkv7Forward out;
    out.y = Tensor::empty(r.shape(), dt);                          // (B, T, H, N)
    out.state = Tensor::empty(Shape{D.B, D.H, N, N}, dt);          // (B, H, N, N)
    out.snapshots = Tensor::empty(Shape{D.B, D.H, NC, N, N}, dt);  // (B, H, chunks, N, N)
    out.sa = Tensor::empty(r.shape(), dt);                         // (B, T, H, N)
    F *y = out.y.data<F>(), *sa = out.sa.data<F>(), *snaps = out.snapshots.data<F>(),
      *st = out.state.data<F>();
    const F* s0 = s_in.defined() ? s_in.data<F>() : nullptr;
    const int64_t work = BH * D.T * NN;
    const int64_t G = heads_per_task(D), tasks = BH / G;
#pragma omp parallel if (tasks > 1 && work > kParallelMin)
    {
        ForwardScratch<F> sc(N, G);
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; ++task)
            forward_heads(D, in, task * G / D.H, task * G % D.H, G, s0, y, sa, snaps, st, sc);
    }
    return out;
}

// ---- backward ----------------------------------------------------------------------------
// By rows of S (row i = value i, a vector over the keys j, padded to Np). A step runs over one
// block of L keys at a time: the block's key vectors and its five per-key sums stay in
// registers while the rows go by; each row's two per-value sums (dv_i, dsa_i) collect one
// partial vector per block and are reduced across lanes once per step.

// Key vectors of a step (1 / decay, k / decay, b / decay, r, k, b, decay, a) and the per-key
// sums it makes (dr, d decay, dk, db, da), interleaved by blocks of L (see pack_field).
enum BackwardField : int64_t {
    kBwdInvD,
    kBwdKd,
    kBwdBd,
    kBwdR,
    kBwdK,
    kBwdB,
    kBwdD,
    kBwdA,
    kBwdFields
};
enum BackwardSum : int64_t { kSumR, kSumDecay, kSumK, kSumB, kSumA, kSums };

// The first pass over key block jb. On entry S holds S_t and dS the gradient of S_t from the
// later steps; on exit S holds S_{t-1} and dS the full gradient g of S_t (this step's
// y = S_t r included). Writes the block's sums of dr, d decay, dk, db and adds the block's
// partial vectors of dv_i = Σ_j g[i, j] k_j and dsa_i = Σ_j g[i, j] b_j into dvp, dsap (N, L).
template <class F>
void backward_pass1(F* S, F* dS, int64_t Np, int64_t N, const F* f, F* sums, const F* dy,
                    const F* v, const F* sa, F* dvp, F* dsap, bool first) {
    using V = Vec<F>;
    constexpr int64_t L = kL<F>;
    const V iD = vload(f + kBwdInvD * L), Kd = vload(f + kBwdKd * L), Bd = vload(f + kBwdBd * L),
            R = vload(f + kBwdR * L), K = vload(f + kBwdK * L), B = vload(f + kBwdB * L);
    V aR = vbcast(F(0)), aD = aR, aK = aR, aB = aR;
    for (int64_t i = 0; i < N; ++i) {
        F* Si = S + i * Np;
        F* dSi = dS + i * Np;
        const V vdy = vbcast(dy[i]), vv = vbcast(v[i]), vsa = vbcast(sa[i]);
        const V st = vload(Si);
        aR = vfma(vdy, st, aR);
        // S_{t-1}[i, :] = (S_t[i, :] - v_i k - sa_i b) / decay
        const V sp = vfma(st, iD, vfma(vbcast(-v[i]), Kd, vmul(vbcast(-sa[i]), Bd)));
        vstore(Si, sp);
        const V g = vfma(vdy, R, vload(dSi));
        vstore(dSi, g);
        aD = vfma(g, sp, aD);
        aK = vfma(g, vv, aK);
        aB = vfma(g, vsa, aB);
        F* pv = dvp + i * L;
        F* ps = dsap + i * L;
        vstore(pv, first ? vmul(g, K) : vfma(g, K, vload(pv)));
        vstore(ps, first ? vmul(g, B) : vfma(g, B, vload(ps)));
    }
    vstore(sums + kSumR * L, aR);
    vstore(sums + kSumDecay * L, aD);
    vstore(sums + kSumK * L, aK);
    vstore(sums + kSumB * L, aB);
}

// backward_pass1 over both key blocks of a state with Np = 2L at once: the two blocks share
// the row's broadcasts, and dv_i, dsa_i are complete at the end of the row (reduced across
// lanes there), with no partial vectors going through memory.
template <class F>
void backward_pass1_pair(F* S, F* dS, int64_t Np, int64_t N, const F* f, F* sums, const F* dy,
                         const F* v, const F* sa, F* dv_out, F* dsa_out) {
    using V = Vec<F>;
    constexpr int64_t L = kL<F>, W = kBwdFields * L, WS = kSums * L;
    const F* f1 = f + W;
    V aR0 = vbcast(F(0)), aD0 = aR0, aK0 = aR0, aB0 = aR0, aR1 = aR0, aD1 = aR0, aK1 = aR0,
      aB1 = aR0;
    for (int64_t i = 0; i < N; ++i) {
        F* Si = S + i * Np;
        F* dSi = dS + i * Np;
        const V vdy = vbcast(dy[i]), vv = vbcast(v[i]), vsa = vbcast(sa[i]);
        const V nv = vbcast(-v[i]), nsa = vbcast(-sa[i]);
        const V st0 = vload(Si), st1 = vload(Si + L);
        aR0 = vfma(vdy, st0, aR0);
        aR1 = vfma(vdy, st1, aR1);
        const V sp0 = vfma(st0, vload(f + kBwdInvD * L),
                           vfma(nv, vload(f + kBwdKd * L), vmul(nsa, vload(f + kBwdBd * L))));
        const V sp1 = vfma(st1, vload(f1 + kBwdInvD * L),
                           vfma(nv, vload(f1 + kBwdKd * L), vmul(nsa, vload(f1 + kBwdBd * L))));
        vstore(Si, sp0);
        vstore(Si + L, sp1);
        const V g0 = vfma(vdy, vload(f + kBwdR * L), vload(dSi));
        const V g1 = vfma(vdy, vload(f1 + kBwdR * L), vload(dSi + L));
        vstore(dSi, g0);
        vstore(dSi + L, g1);
        aD0 = vfma(g0, sp0, aD0);
        aD1 = vfma(g1, sp1, aD1);
        aK0 = vfma(g0, vv, aK0);
        aK1 = vfma(g1, vv, aK1);
        aB0 = vfma(g0, vsa, aB0);
        aB1 = vfma(g1, vsa, aB1);
        dv_out[i] = vsum(vfma(g0, vload(f + kBwdK * L), vmul(g1, vload(f1 + kBwdK * L))));
        dsa_out[i] = vsum(vfma(g0, vload(f + kBwdB * L), vmul(g1, vload(f1 + kBwdB * L))));
    }
    F* s1 = sums + WS;
    vstore(sums + kSumR * L, aR0);
    vstore(sums + kSumDecay * L, aD0);
    vstore(sums + kSumK * L, aK0);
    vstore(sums + kSumB * L, aB0);
    vstore(s1 + kSumR * L, aR1);
    vstore(s1 + kSumDecay * L, aD1);
    vstore(s1 + kSumK * L, aK1);
    vstore(s1 + kSumB * L, aB1);
}

// The second pass over key block jb: da_j = Σ_i S_{t-1}[i, j] dsa_i and
// dS[i, :] <- g diag(decay) + dsa_i a (the gradient of S_{t-1}).
template <class F>
void backward_pass2(const F* S, F* dS, int64_t Np, int64_t N, const F* f, F* sums,
                    const F* dsa) {
    using V = Vec<F>;
    constexpr int64_t L = kL<F>;
    const V D = vload(f + kBwdD * L), A = vload(f + kBwdA * L);
    V a0 = vbcast(F(0)), a1 = a0;
    int64_t i = 0;
    for (; i + 2 <= N; i += 2) {
        const V d0 = vbcast(dsa[i]), d1 = vbcast(dsa[i + 1]);
        F* g0 = dS + i * Np;
        F* g1 = g0 + Np;
        a0 = vfma(vload(S + i * Np), d0, a0);
        a1 = vfma(vload(S + (i + 1) * Np), d1, a1);
        vstore(g0, vfma(vload(g0), D, vmul(d0, A)));
        vstore(g1, vfma(vload(g1), D, vmul(d1, A)));
    }
    for (; i < N; ++i) {
        const V d0 = vbcast(dsa[i]);
        F* g0 = dS + i * Np;
        a0 = vfma(vload(S + i * Np), d0, a0);
        vstore(g0, vfma(vload(g0), D, vmul(d0, A)));
    }
    vstore(sums + kSumA * L, vadd(a0, a1));
}

// Per-thread scratch of the backward for a group of G heads.
template <class F>
struct BackwardScratch {
    int64_t N, Np;
    std::vector<F> S, dS, fields, sums;  // G x (N, Np) twice, (kBwdFields Np), (kSums Np)
    std::vector<F> dvp, dsap;            // (N, L) each: per-row partial vectors
    std::vector<F> sig, d;               // (G N) each
    std::vector<F> inv_d, kd, bd, dsa;   // (N) each
    BackwardScratch(int64_t n, int64_t g)
        : N(n),
          Np(padded<F>(n)),
          S(static_cast<size_t>(g * N * Np)),
          dS(static_cast<size_t>(g * N * Np)),
          fields(static_cast<size_t>(kBwdFields * Np)),
          sums(static_cast<size_t>(kSums * Np)),
          dvp(static_cast<size_t>(N * kL<F>)),
          dsap(static_cast<size_t>(N * kL<F>)),
          sig(static_cast<size_t>(g * N)),
          d(static_cast<size_t>(g * N)) {
        for (std::vector<F>* x : {&inv_d, &kd, &bd, &dsa}) x->resize(static_cast<size_t>(N));
    }
};

template <class F>
struct Grads {
    F *r, *w, *k, *v, *a, *b;
};

// Heads h0 .. h0+G-1 of batch entry b, t from T-1 down to 0, a step's heads together. dS is
// the gradient with respect to the state after step t; it starts as gs ((B, H, N, N) or
// null = zeros) and ends as the gradient of the entering state (gs_in).
template <class F>
void backward_heads(const Dims& D, const In<F>& in, const F* gy, const F* sa, const F* snaps,
                    const F* gs, int64_t b, int64_t h0, int64_t G, const Grads<F>& g, F* gs_in,
                    BackwardScratch<F>& sc) {
    constexpr int64_t L = kL<F>;
    const int64_t N = D.N, Np = sc.Np, NN = N * N, NC = D.chunks(), W = kBwdFields * L,
                  WS = kSums * L;
    F *fb = sc.fields.data(), *sums = sc.sums.data();
    F *inv_d = sc.inv_d.data(), *kd = sc.kd.data(), *bd = sc.bd.data(), *dsa = sc.dsa.data(),
      *dvp = sc.dvp.data(), *dsap = sc.dsap.data();
    for (int64_t q = 0; q < G; ++q) {
        const int64_t bh = b * D.H + h0 + q;
        load_rows(sc.dS.data() + q * N * Np, gs ? gs + bh * NN : nullptr, N, Np);
    }
    const F scale = static_cast<F>(-kWkv7DecayScale);
    for (int64_t t = D.T - 1; t >= 0; --t) {
        const int64_t o0 = D.row(b, t, h0);
        if (t > 0)
            prefetch_rows<F>({in.r, in.w, in.k, in.v, in.a, in.b, gy, sa}, D.row(b, t - 1, h0),
                             G * N);
        decay_row(in.w + o0, sc.sig.data(), sc.d.data(), G * N);
        for (int64_t q = 0; q < G; ++q) {
            const int64_t o = o0 + q * N, bh = b * D.H + h0 + q;
            F *S = sc.S.data() + q * N * Np, *dS = sc.dS.data() + q * N * Np;
            const F *sig = sc.sig.data() + q * N, *d = sc.d.data() + q * N;
            // At a chunk's last step S_t is exactly the saved state; otherwise S holds S_t as
            // reconstructed by the previous iteration.
            if (t % kChunk == kChunk - 1 || t == D.T - 1)
                load_rows(S, snaps + (bh * NC + t / kChunk) * NN, N, Np);
            const F *k = in.k + o, *bb = in.b + o;
#pragma omp simd
            for (int64_t j = 0; j < N; ++j) {
                inv_d[j] = F(1) / d[j];
                kd[j] = k[j] * inv_d[j];
                bd[j] = bb[j] * inv_d[j];
            }
            const F* src[kBwdFields] = {inv_d, kd, bd, in.r + o, k, bb, d, in.a + o};
            for (int64_t f = 0; f < kBwdFields; ++f) pack_field(fb, kBwdFields, f, src[f], N, Np);
            if (Np == 2 * L) {
                backward_pass1_pair(S, dS, Np, N, fb, sums, gy + o, in.v + o, sa + o, g.v + o,
                                    dsa);
            } else {
                for (int64_t j0 = 0, p = 0, w = 0; j0 < Np; j0 += L, p += W, w += WS)
                    backward_pass1(S + j0, dS + j0, Np, N, fb + p, sums + w, gy + o, in.v + o,
                                   sa + o, dvp, dsap, j0 == 0);
                for (int64_t i = 0; i < N; ++i) {
                    g.v[o + i] = vsum(vload(dvp + i * L));
                    dsa[i] = vsum(vload(dsap + i * L));
                }
            }
            for (int64_t j0 = 0, p = 0, w = 0; j0 < Np; j0 += L, p += W, w += WS)
                backward_pass2(S + j0, dS + j0, Np, N, fb + p, sums + w, dsa);
            // The per-key sums out: whole blocks as vectors, the rest element by element.
            int64_t j0 = 0;
            for (const F* u = sums; j0 + L <= N; j0 += L, u += WS) {
                using V = Vec<F>;
                vstore(g.r + o + j0, vload(u + kSumR * L));
                vstore(g.k + o + j0, vload(u + kSumK * L));
                vstore(g.b + o + j0, vload(u + kSumB * L));
                vstore(g.a + o + j0, vload(u + kSumA * L));
                const V sg = vload(sig + j0);
                const V dw = vmul(vmul(vload(u + kSumDecay * L), vload(d + j0)),
                                  vmul(vbcast(scale), vmul(sg, vsub(vbcast(F(1)), sg))));
                vstore(g.w + o + j0, dw);
            }
            for (int64_t j = j0; j < N; ++j) {
                g.r[o + j] = field_at(sums, kSums, kSumR, j);
                g.w[o + j] =
                    field_at(sums, kSums, kSumDecay, j) * d[j] * scale * sig[j] * (F(1) - sig[j]);
                g.k[o + j] = field_at(sums, kSums, kSumK, j);
                g.b[o + j] = field_at(sums, kSums, kSumB, j);
                g.a[o + j] = field_at(sums, kSums, kSumA, j);
            }
        }
    }
    for (int64_t q = 0; q < G; ++q)
        store_rows(gs_in + (b * D.H + h0 + q) * NN, sc.dS.data() + q * N * Np, N, Np);
}

template <class F>
Wkv7Grads backward_typed(const Tensor& gy, const Tensor& gstate, const Tensor& r, const Tensor& w,
                         const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                         const Tensor& state_in, const Wkv7Forward& fwd) {
    const Dims D = dims_of(r);
    const int64_t N = D.N, NN = N * N, NC = D.chunks(), BH = D.B * D.H;
    const DType dt = r.dtype();
    // The saved data of this variant's forward; recomputed if `fwd` came from another one.
    const bool saved = fwd.snapshots.defined() && fwd.sa.defined() &&
                       fwd.snapshots.shape() == Shape{D.B, D.H, NC, N, N} &&
                       fwd.snapshots.dtype() == dt && fwd.sa.shape() == r.shape() &&
                       fwd.sa.dtype() == dt;
    const Wkv7Forward again = saved ? Wkv7Forward{} : forward_typed<F>(r, w, k, v, a, b, state_in);
    const Wkv7Forward& f = saved ? fwd : again;
    const Tensor snaps = f.snapshots.contiguous(), sa = f.sa.contiguous();
    const Tensor rc = r.contiguous(), wc = w.contiguous(), kc = k.contiguous(), vc = v.contiguous(),
                 ac = a.contiguous(), bc = b.contiguous(), gyc = gy.to(dt);
    const Tensor gs = gstate.defined() ? gstate.to(dt) : Tensor();
    const In<F> in = pointers<F>(rc, wc, kc, vc, ac, bc);
    Wkv7Grads out;
    for (Tensor* x : {&out.r, &out.w, &out.k, &out.v, &out.a, &out.b})
        *x = Tensor::empty(r.shape(), dt);                 // (B, T, H, N)
    out.state = Tensor::empty(Shape{D.B, D.H, N, N}, dt);  // (B, H, N, N)
    const Grads<F> g{out.r.data<F>(), out.w.data<F>(), out.k.data<F>(),
                     out.v.data<F>(), out.a.data<F>(), out.b.data<F>()};
    const F *pgy = gyc.data<F>(), *psa = sa.data<F>(), *psn = snaps.data<F>();
    const F* pgs = gs.defined() ? gs.data<F>() : nullptr;
    F* pgs_in = out.state.data<F>();
    const int64_t work = BH * D.T * NN;
    const int64_t G = heads_per_task(D), tasks = BH / G;
#pragma omp parallel if (tasks > 1 && work > kParallelMin)
    {
        BackwardScratch<F> sc(N, G);
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; ++task)
            backward_heads(D, in, pgy, psa, psn, pgs, task * G / D.H, task * G % D.H, G, g,
                           pgs_in, sc);
    }
    return out;
}
}  // namespace

Wkv7Forward wkv7_forward_cpu(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v,
                             const Tensor& a, const Tensor& b, const Tensor& state_in) {
    if (r.dtype() == DType::f32) return forward_typed<float>(r, w, k, v, a, b, state_in);
    return forward_typed<double>(r, w, k, v, a, b, state_in);
}

Wkv7Grads wkv7_backward_cpu(const Tensor& gy, const Tensor& gstate, const Tensor& r,
                            const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a,
                            const Tensor& b, const Tensor& state_in, const Wkv7Forward& fwd) {
    if (r.dtype() == DType::f32)
        return backward_typed<float>(gy, gstate, r, w, k, v, a, b, state_in, fwd);
    return backward_typed<double>(gy, gstate, r, w, k, v, a, b, state_in, fwd);
}

}  // namespace goose::ops
