// WKV-7 kernel lab: checks each CUDA variant against a CPU double reference (forward and
// backward, NaN-poisoned outputs) and times it at the training shapes. Standalone (no goose
// library): `make build CUDA=1 TARGETS=wkv7_lab` builds build-cuda/wkv7_lab; the plain nvcc
// line and the options are in README.md.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "wkv7_chunked.cuh"
#include "wkv7_chunked_tc.cuh"
#include "wkv7_chunked_tc_bwd_a.cuh"
#include "wkv7_chunked_tc_bwd_b.cuh"
#include "wkv7_kernels.cuh"
#include "wkv7_split_bwd.cuh"

using bf16 = __nv_bfloat16;
using goose_wkv7::Dims;

#define CHECK(x)                                                                           \
    do {                                                                                   \
        cudaError_t e_ = (x);                                                              \
        if (e_ != cudaSuccess) {                                                           \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x,                \
                         cudaGetErrorString(e_));                                          \
            std::exit(1);                                                                  \
        }                                                                                  \
    } while (0)

// ---- variants -------------------------------------------------------------------------------

template <class T>
using FwdFn = cudaError_t (*)(const Dims&, const goose_wkv7::FwdArgs<T>&, float* scratch,
                              cudaStream_t);
template <class T>
using BwdFn = cudaError_t (*)(const Dims&, const goose_wkv7::BwdArgs<T>&, float* scratch,
                              cudaStream_t);

// The sequential and the one-pass chunked forwards (no scratch) behind the lab's signature.
template <class T, int N, int C, int RT, int R>
cudaError_t seq_fwd(const Dims& D, const goose_wkv7::FwdArgs<T>& A, float*, cudaStream_t s) {
    return goose_wkv7::launch_forward<T, N, C, RT, R>(D, A, s);
}
template <class T, int R, int NT = 256, bool kMma = false>
cudaError_t ck_fwd(const Dims& D, const goose_wkv7::FwdArgs<T>& A, float*, cudaStream_t s) {
    return goose_wkv7::chunked::launch_forward<T, R, NT, kMma>(D, A, s);
}

// The sequential backward (no scratch) behind the lab's backward signature.
template <class T, int N, int C, int K>
cudaError_t seq_bwd(const Dims& D, const goose_wkv7::BwdArgs<T>& A, float*, cudaStream_t s) {
    return goose_wkv7::launch_backward<T, N, C, K>(D, A, s);
}

// The split backward (a cluster of 64 / R blocks per head) behind the lab's signature.
template <class T, int R, int C, int E>
cudaError_t split_bwd(const Dims& D, const goose_wkv7::BwdArgs<T>& A, float*, cudaStream_t s) {
    return goose_wkv7::launch_backward_split<T, 64, R, C, E>(D, A, s);
}

// ---- tc phase A (wkv7_chunked_tc_bwd_a.cuh) + the FMA phase B of wkv7_chunked_bwd_b.cuh ----
template <class T>
cudaError_t chunked_phase_b(const Dims& D, const goose_wkv7::BwdArgs<T>& A, float* scratch,
                            cudaStream_t s) {
    namespace ck = goose_wkv7::chunked;
    const ck::BwdScratch W{scratch, scratch + static_cast<size_t>(D.B) * D.T * D.H * ck::N};
    constexpr size_t smem_b = ck::BwdBSmem::bytes();
    auto kb = ck::wkv7_chunked_bwd_grads_kernel<T, false>;
    cudaError_t e = cudaFuncSetAttribute(kb, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem_b));
    if (e != cudaSuccess) return e;
    kb<<<dim3(D.chunks(), D.H, D.B), ck::NTB, smem_b, s>>>(D, A, W);
    return cudaGetLastError();
}
template <class T, bool kDyIn = goose_wkv7::chunked_tc::kBwdDyIn, int KH = 1>
cudaError_t tc_a_fma_b_bwd(const Dims& D, const goose_wkv7::BwdArgs<T>& A, float* scratch,
                           cudaStream_t s) {
    namespace tc = goose_wkv7::chunked_tc;
    using C = tc::BwdAConfig<kDyIn, KH, tc::BwdADefault<T>::PB, 0, false, false>;
    const cudaError_t e = tc::launch_backward_state<T, C>(D, A, scratch, s);
    return e != cudaSuccess ? e : chunked_phase_b<T>(D, A, scratch, s);
}
// The existing one-pass phase A alone (kMma: its tensor-core path).
template <class T, bool kMma>
cudaError_t chunked_phase_a(const Dims& D, const goose_wkv7::BwdArgs<T>& A, float* scratch,
                            cudaStream_t s) {
    namespace ck = goose_wkv7::chunked;
    const ck::BwdScratch W{scratch, scratch + static_cast<size_t>(D.B) * D.T * D.H * ck::N};
    constexpr size_t smem = ck::BwdASmem<T, 64>::bytes();
    auto ka = ck::wkv7_chunked_bwd_state_kernel<T, 64, 256, kMma>;
    cudaError_t e = cudaFuncSetAttribute(ka, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    ka<<<dim3(D.H, D.B, 1), 256, smem, s>>>(D, A, W);
    return cudaGetLastError();
}
// ---- end tc phase A ----

// ---- chunked backward: FMA phase A + phase B on tensor cores (wkv7_chunked_tc_bwd_b.cuh) -----

namespace tcb {
template <class T>
cudaError_t fma_phase_a(const Dims& D, const goose_wkv7::BwdArgs<T>& A,
                        const goose_wkv7::chunked::BwdScratch& W, cudaStream_t s) {
    namespace ck = goose_wkv7::chunked;
    constexpr size_t smem = ck::BwdASmem<T, 64>::bytes();
    auto ka = ck::wkv7_chunked_bwd_state_kernel<T, 64, 256, false>;
    cudaError_t e = cudaFuncSetAttribute(ka, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    ka<<<dim3(D.H, D.B, 1), 256, smem, s>>>(D, A, W);
    return cudaGetLastError();
}
// The FMA phase B alone (chunked::launch_backward's second launch).
template <class T>
cudaError_t fma_phase_b(const Dims& D, const goose_wkv7::BwdArgs<T>& A,
                        const goose_wkv7::chunked::BwdScratch& W, cudaStream_t s) {
    namespace ck = goose_wkv7::chunked;
    constexpr size_t smem = ck::BwdBSmem::bytes();
    auto kb = ck::wkv7_chunked_bwd_grads_kernel<T, false>;
    cudaError_t e = cudaFuncSetAttribute(kb, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    kb<<<dim3(D.chunks(), D.H, D.B), ck::NTB, smem, s>>>(D, A, W);
    return cudaGetLastError();
}
inline goose_wkv7::chunked::BwdScratch scratch_of(const Dims& D, float* scratch) {
    return {scratch, scratch + static_cast<size_t>(D.B) * D.T * D.H * 64};
}
// Backward = FMA phase A + tensor-core phase B (kReadSL: c_L from the exit snapshot).
template <class T, bool kReadSL>
cudaError_t fma_a_tc_b(const Dims& D, const goose_wkv7::BwdArgs<T>& A, float* scratch,
                       cudaStream_t s) {
    const auto W = scratch_of(D, scratch);
    cudaError_t e = fma_phase_a<T>(D, A, W, s);
    if (e != cudaSuccess) return e;
    return goose_wkv7::chunked_tc::launch_backward_grads<T, kReadSL>(D, A, W, s);
}
}  // namespace tcb

// Both phases on tensor cores: the op's backward for N = 64 from T 512 (wkv7_launch.cu).
template <class T>
cudaError_t tc_a_tc_b_bwd(const Dims& D, const goose_wkv7::BwdArgs<T>& A, float* scratch,
                          cudaStream_t s) {
    const cudaError_t e = goose_wkv7::chunked_tc::launch_backward_state<T>(D, A, scratch, s);
    return e != cudaSuccess ? e
                            : goose_wkv7::chunked_tc::launch_backward_grads<T>(
                                  D, A, tcb::scratch_of(D, scratch), s);
}

template <class T>
struct Variant {
    const char* name;
    int N;
    FwdFn<T> fwd;
    BwdFn<T> bwd;
};

template <class T>
std::vector<Variant<T>> variants() {
    using namespace goose_wkv7;
    namespace ck = goose_wkv7::chunked;
    namespace tc = goose_wkv7::chunked_tc;
    return {
        // name, N, forward <N, C, RT, R>, backward <N, C, K> (C: key columns per thread,
        // RT / K: rows / keys per thread, R: rows per block); chunked <R: value rows per block>
        {"default: C8 RT2 | C32 K1 (sequential)", 64, seq_fwd<T, 64, 8, 2, 64>,
         seq_bwd<T, 64, 32, 1>},
        {"default at B*H >= 192: C8 RT2 R32 | C32 K1", 64, seq_fwd<T, 64, 8, 2, 32>,
         seq_bwd<T, 64, 32, 1>},
        {"chunked | chunked", 64, ck_fwd<T, 64>, ck::launch_backward<T, 64>},
        {"chunked mma | chunked A:mma B:mma", 64, ck_fwd<T, 64, 256, true>,
         ck::launch_backward<T, 64, 256, true, true>},
        {"C8 RT2 | chunked A:mma B:fma", 64, seq_fwd<T, 64, 8, 2, 64>,
         ck::launch_backward<T, 64, 256, true, false>},
        {"chunked R32 | chunked R32", 64, ck_fwd<T, 32>, ck::launch_backward<T, 32>},
        // split backward <R value rows per block (cluster of 64 / R), C per thread, E steps
        // between exchanges of the key sums>
        {"C8 RT2 | split R16 C8 E4", 64, seq_fwd<T, 64, 8, 2, 64>,
         split_bwd<T, 16, 8, 4>},
        {"C8 RT2 | split R16 C16 E4", 64, seq_fwd<T, 64, 8, 2, 64>,
         split_bwd<T, 16, 16, 4>},
        {"C8 RT2 | split R16 C8 E8", 64, seq_fwd<T, 64, 8, 2, 64>,
         split_bwd<T, 16, 8, 8>},
        {"C8 RT2 | split R16 C16 E8", 64, seq_fwd<T, 64, 8, 2, 64>,
         split_bwd<T, 16, 16, 8>},
        {"C8 RT2 | split R32 C16 E8", 64, seq_fwd<T, 64, 8, 2, 64>,
         split_bwd<T, 32, 16, 8>},
        {"C8 RT2 | split R32 C16 E16", 64, seq_fwd<T, 64, 8, 2, 64>,
         split_bwd<T, 32, 16, 16>},
        {"C8 RT2 R16 | C32 K1 (fwd 4 blocks/head)", 64, seq_fwd<T, 64, 8, 2, 16>,
         seq_bwd<T, 64, 32, 1>},
        // two-pass chunked forward (parallel pre-pass + tensor-core state pass) <WPB warps of 16
        // value rows per block, operands stored split into TF32 big + small>, sequential bwd
        {"tc W4 | C32 K1", 64, tc::launch_forward<T, 4, false>, seq_bwd<T, 64, 32, 1>},
        {"tc W2 | C32 K1", 64, tc::launch_forward<T, 2, false>, seq_bwd<T, 64, 32, 1>},
        {"tc W1 | C32 K1", 64, tc::launch_forward<T, 1, false>, seq_bwd<T, 64, 32, 1>},
        {"tc W4 overlap | C32 K1", 64, tc::launch_forward<T, 4, false, true>,
         seq_bwd<T, 64, 32, 1>},
        {"tc W2 overlap | C32 K1", 64, tc::launch_forward<T, 2, false, true>,
         seq_bwd<T, 64, 32, 1>},
        {"tc W4 mg | C32 K1", 64, tc::launch_forward<T, 4, false, false, true>,
         seq_bwd<T, 64, 32, 1>},
        {"tc W4 overlap mg | C32 K1", 64, tc::launch_forward<T, 4, false, true, true>,
         seq_bwd<T, 64, 32, 1>},
        {"tc W4 split | C32 K1", 64, tc::launch_forward<T, 4, true>, seq_bwd<T, 64, 32, 1>},
        {"tc W2 split | C32 K1", 64, tc::launch_forward<T, 2, true>, seq_bwd<T, 64, 32, 1>},
        // the op's default from T 512: two-pass forward, two-pass tensor-core backward (phase A
        // of wkv7_chunked_tc_bwd_a.cuh, phase B of wkv7_chunked_tc_bwd_b.cuh)
        {"tc W4 mg | tc A tc B", 64, tc::launch_forward<T, 4, false, false, true>,
         tc_a_tc_b_bwd<T>},
        // two-pass tensor-core backward phase A (wkv7_chunked_tc_bwd_a.cuh) + the FMA phase B
        // <dY read from the input by the state pass (not in the record), KH warps per 16 value
        // rows in the state pass>
        {"tc W4 mg | tc A fma B", 64, tc::launch_forward<T, 4, false, false, true>,
         tc_a_fma_b_bwd<T>},
        {"tc W4 mg | tc A dyrec fma B", 64, tc::launch_forward<T, 4, false, false, true>,
         tc_a_fma_b_bwd<T, false, 1>},
        {"tc W4 mg | tc A KH2 fma B", 64, tc::launch_forward<T, 4, false, false, true>,
         tc_a_fma_b_bwd<T, true, 2>},
        // chunked backward: FMA phase A + phase B on tensor cores (3xTF32); "sl": c_L read from
        // the exit snapshot instead of computed from S0
        {"C8 RT2 | fma A | tc B", 64, seq_fwd<T, 64, 8, 2, 64>, tcb::fma_a_tc_b<T, false>},
        {"C8 RT2 | fma A | tc B sl", 64, seq_fwd<T, 64, 8, 2, 64>, tcb::fma_a_tc_b<T, true>},
        {"default N32: C8 RT2 | C8 K2", 32, seq_fwd<T, 32, 8, 2, 32>, seq_bwd<T, 32, 8, 2>},
        {"default N16: C4 RT2 | C4 K2", 16, seq_fwd<T, 16, 4, 2, 16>, seq_bwd<T, 16, 4, 2>},
    };
}

// ---- CPU double reference -------------------------------------------------------------------

struct Problem {
    int B, T, H, N;
    // inputs (already rounded to the I/O dtype), (B, T, H, N) / (B, H, N, N)
    std::vector<double> r, w, k, v, a, b, dy, s0, ds_out;
    bool with_state;
};

struct RefOut {
    std::vector<double> y, s_out, dr, dw, dk, dv, da, db, ds_in;
};

RefOut reference(const Problem& p) {
    const int B = p.B, T = p.T, H = p.H, N = p.N;
    const size_t E = static_cast<size_t>(B) * T * H * N, NN = static_cast<size_t>(N) * N;
    RefOut o;
    o.y.assign(E, 0);
    o.s_out.assign(static_cast<size_t>(B) * H * NN, 0);
    for (auto* g : {&o.dr, &o.dw, &o.dk, &o.dv, &o.da, &o.db}) g->assign(E, 0);
    o.ds_in.assign(static_cast<size_t>(B) * H * NN, 0);
    auto idx = [&](int b, int t, int h) { return ((static_cast<size_t>(b) * T + t) * H + h) * N; };
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < H; ++h) {
            const size_t so = (static_cast<size_t>(b) * H + h) * NN;
            std::vector<std::vector<double>> before(T), sas(T), decs(T);
            std::vector<double> S(NN, 0.0);
            if (p.with_state) std::copy(p.s0.begin() + so, p.s0.begin() + so + NN, S.begin());
            for (int t = 0; t < T; ++t) {
                const size_t o0 = idx(b, t, h);
                before[t] = S;
                std::vector<double> d(N), sa(N, 0.0);
                for (int j = 0; j < N; ++j)
                    d[j] = std::exp(-0.6065306597126334 / (1 + std::exp(-p.w[o0 + j])));
                for (int i = 0; i < N; ++i)
                    for (int j = 0; j < N; ++j) sa[i] += S[i * N + j] * p.a[o0 + j];
                for (int i = 0; i < N; ++i)
                    for (int j = 0; j < N; ++j)
                        S[i * N + j] = S[i * N + j] * d[j] + sa[i] * p.b[o0 + j] +
                                       p.v[o0 + i] * p.k[o0 + j];
                for (int i = 0; i < N; ++i) {
                    double y = 0;
                    for (int j = 0; j < N; ++j) y += S[i * N + j] * p.r[o0 + j];
                    o.y[o0 + i] = y;
                }
                sas[t] = sa;
                decs[t] = d;
            }
            std::copy(S.begin(), S.end(), o.s_out.begin() + so);
            std::vector<double> dS(NN, 0.0);
            if (p.with_state)
                std::copy(p.ds_out.begin() + so, p.ds_out.begin() + so + NN, dS.begin());
            for (int t = T - 1; t >= 0; --t) {
                const size_t o0 = idx(b, t, h);
                const auto& Sp = before[t];
                const auto& sa = sas[t];
                const auto& d = decs[t];
                std::vector<double> Sa(NN);
                for (int i = 0; i < N; ++i)
                    for (int j = 0; j < N; ++j)
                        Sa[i * N + j] = Sp[i * N + j] * d[j] + sa[i] * p.b[o0 + j] +
                                        p.v[o0 + i] * p.k[o0 + j];
                for (int j = 0; j < N; ++j) {
                    double s = 0;
                    for (int i = 0; i < N; ++i) s += Sa[i * N + j] * p.dy[o0 + i];
                    o.dr[o0 + j] = s;
                }
                for (int i = 0; i < N; ++i)
                    for (int j = 0; j < N; ++j) dS[i * N + j] += p.dy[o0 + i] * p.r[o0 + j];
                std::vector<double> dsa(N, 0.0);
                for (int j = 0; j < N; ++j) {
                    double dd = 0, dk = 0, db = 0;
                    for (int i = 0; i < N; ++i) {
                        dd += dS[i * N + j] * Sp[i * N + j];
                        dk += dS[i * N + j] * p.v[o0 + i];
                        db += dS[i * N + j] * sa[i];
                    }
                    const double sg = 1 / (1 + std::exp(-p.w[o0 + j]));
                    o.dw[o0 + j] = dd * d[j] * -0.6065306597126334 * sg * (1 - sg);
                    o.dk[o0 + j] = dk;
                    o.db[o0 + j] = db;
                }
                for (int i = 0; i < N; ++i) {
                    double dv = 0;
                    for (int j = 0; j < N; ++j) {
                        dv += dS[i * N + j] * p.k[o0 + j];
                        dsa[i] += dS[i * N + j] * p.b[o0 + j];
                    }
                    o.dv[o0 + i] = dv;
                }
                for (int j = 0; j < N; ++j) {
                    double da = 0;
                    for (int i = 0; i < N; ++i) da += dsa[i] * Sp[i * N + j];
                    o.da[o0 + j] = da;
                }
                for (int i = 0; i < N; ++i)
                    for (int j = 0; j < N; ++j)
                        dS[i * N + j] = dS[i * N + j] * d[j] + dsa[i] * p.a[o0 + j];
            }
            std::copy(dS.begin(), dS.end(), o.ds_in.begin() + so);
        }
    return o;
}

// ---- inputs ---------------------------------------------------------------------------------

template <class T>
double round_io(double x) {
    if constexpr (sizeof(T) == 2) return __bfloat162float(__float2bfloat16_rn(static_cast<float>(x)));
    return static_cast<float>(x);
}

// Realistic inputs: w_raw in [-6, 2] (trained decays), r, k, v in (-1, 1), kk a unit vector per
// head, a_gate in (0, 1); the kernel's a = -kk, b = kk a_gate.
template <class T>
Problem make_problem(int B, int steps, int H, int N, bool with_state, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> U(-1, 1), U01(0.02, 0.98), W(-6, 2);
    std::normal_distribution<double> G(0, 1);
    Problem p{B, steps, H, N, {}, {}, {}, {}, {}, {}, {}, {}, {}, with_state};
    const size_t E = static_cast<size_t>(B) * steps * H * N;
    for (auto* x : {&p.r, &p.w, &p.k, &p.v, &p.a, &p.b, &p.dy}) x->resize(E);
    for (size_t row = 0; row < E / N; ++row) {
        std::vector<double> kk(N);
        double nrm = 0;
        for (int j = 0; j < N; ++j) nrm += (kk[j] = G(rng)) * kk[j];
        nrm = std::sqrt(nrm);
        for (int j = 0; j < N; ++j) {
            const size_t o = row * N + j;
            const double gate = U01(rng);
            p.r[o] = round_io<T>(U(rng));
            p.w[o] = round_io<T>(W(rng));
            p.k[o] = round_io<T>(U(rng) * 0.5);
            p.v[o] = round_io<T>(U(rng));
            p.a[o] = round_io<T>(-kk[j] / nrm);
            p.b[o] = round_io<T>(kk[j] / nrm * gate);
            p.dy[o] = round_io<T>(U(rng));
        }
    }
    const size_t S = static_cast<size_t>(B) * H * N * N;
    p.s0.resize(S);
    p.ds_out.resize(S);
    for (auto& x : p.s0) x = static_cast<float>(U(rng));
    for (auto& x : p.ds_out) x = static_cast<float>(U(rng) * 0.1);
    return p;
}

// ---- device buffers -------------------------------------------------------------------------

template <class T>
struct DevBufs {
    size_t E = 0, S = 0, SN = 0;
    T *r, *w, *k, *v, *a, *b, *dy, *y, *dr, *dw, *dk, *dv, *da, *db;
    float *s0, *ds_out, *sa, *snaps, *s_out, *ds_in, *scratch = nullptr, *fscratch = nullptr;
    DevBufs(const Dims& D) {
        E = static_cast<size_t>(D.B) * D.T * D.H * D.N;
        S = static_cast<size_t>(D.B) * D.H * D.N * D.N;
        SN = S * D.chunks();
        for (T** p : {&r, &w, &k, &v, &a, &b, &dy, &y, &dr, &dw, &dk, &dv, &da, &db})
            CHECK(cudaMalloc(p, E * sizeof(T)));
        for (float** p : {&s0, &ds_out, &s_out, &ds_in}) CHECK(cudaMalloc(p, S * sizeof(float)));
        CHECK(cudaMalloc(&sa, E * sizeof(float)));
        CHECK(cudaMalloc(&snaps, SN * sizeof(float)));
        if (D.N == 64) {
            const size_t n = goose_wkv7::chunked_tc::backward_state_scratch_floats(D);
            CHECK(cudaMalloc(&scratch, n * sizeof(float)));
            CHECK(cudaMemset(scratch, 0xff, n * sizeof(float)));  // NaN: must be written first
            const size_t nf = goose_wkv7::chunked_tc::forward_scratch_floats<true>(D);
            CHECK(cudaMalloc(&fscratch, nf * sizeof(float)));
            CHECK(cudaMemset(fscratch, 0xff, nf * sizeof(float)));
        }
    }
    ~DevBufs() {
        for (T* p : {r, w, k, v, a, b, dy, y, dr, dw, dk, dv, da, db}) cudaFree(p);
        for (float* p : {s0, ds_out, s_out, ds_in, sa, snaps, scratch, fscratch}) cudaFree(p);
    }
    goose_wkv7::FwdArgs<T> fwd(bool state) const {
        return {r, w, k, v, a, b, state ? s0 : nullptr, y, sa, snaps, s_out};
    }
    goose_wkv7::BwdArgs<T> bwd(bool state) const {
        return {r, w, k, v, a, b, dy, state ? ds_out : nullptr, sa, snaps,
                dr, dw, dk, dv, da, db, ds_in, state ? s0 : nullptr};
    }
    void poison_fwd() const {
        CHECK(cudaMemset(y, 0xff, E * sizeof(T)));
        CHECK(cudaMemset(sa, 0xff, E * sizeof(float)));
        CHECK(cudaMemset(snaps, 0xff, SN * sizeof(float)));
        CHECK(cudaMemset(s_out, 0xff, S * sizeof(float)));
    }
    void poison_bwd() const {
        for (T* p : {dr, dw, dk, dv, da, db}) CHECK(cudaMemset(p, 0xff, E * sizeof(T)));
        CHECK(cudaMemset(ds_in, 0xff, S * sizeof(float)));
    }
};

template <class T>
void upload(T* dst, const std::vector<double>& src) {
    std::vector<T> h(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
        if constexpr (sizeof(T) == 2) h[i] = __float2bfloat16_rn(static_cast<float>(src[i]));
        else h[i] = static_cast<T>(src[i]);
    }
    CHECK(cudaMemcpy(dst, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
}

template <class T>
std::vector<double> download(const T* src, size_t n) {
    std::vector<T> h(n);
    CHECK(cudaMemcpy(h.data(), src, n * sizeof(T), cudaMemcpyDeviceToHost));
    std::vector<double> out(n);
    for (size_t i = 0; i < n; ++i) {
        if constexpr (sizeof(T) == 2) out[i] = __bfloat162float(h[i]);
        else out[i] = h[i];
    }
    return out;
}

// ||x - ref|| / ||ref||; NaN (an unwritten or broken element) gives NaN.
double rel_err(const std::vector<double>& x, const std::vector<double>& ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        if (!std::isfinite(x[i])) return NAN;
        num += (x[i] - ref[i]) * (x[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

struct Errs {
    double fwd = 0, bwd = 0;  // worst over the outputs (NaN if any was NaN)
};

double worst(double a, double b) { return (std::isnan(a) || std::isnan(b)) ? NAN : std::max(a, b); }

template <class T>
Errs check_case(const Variant<T>& var, int B, int T_, int H, bool state, uint64_t seed,
                bool verbose) {
    const Dims D{B, T_, H, var.N};
    const Problem p = make_problem<T>(B, T_, H, var.N, state, seed);
    const RefOut ref = reference(p);
    DevBufs<T> d(D);
    upload(d.r, p.r); upload(d.w, p.w); upload(d.k, p.k); upload(d.v, p.v);
    upload(d.a, p.a); upload(d.b, p.b); upload(d.dy, p.dy);
    upload(d.s0, p.s0); upload(d.ds_out, p.ds_out);
    d.poison_fwd();
    d.poison_bwd();
    CHECK(var.fwd(D, d.fwd(state), d.fscratch, 0));
    CHECK(cudaDeviceSynchronize());
    CHECK(var.bwd(D, d.bwd(state), d.scratch, 0));
    CHECK(cudaDeviceSynchronize());
    Errs e;
    const double ey = rel_err(download(d.y, d.E), ref.y);
    const double es = rel_err(download(d.s_out, d.S), ref.s_out);
    e.fwd = worst(ey, es);
    const char* names[] = {"dr", "dw", "dk", "dv", "da", "db"};
    const T* outs[] = {d.dr, d.dw, d.dk, d.dv, d.da, d.db};
    const std::vector<double>* refs[] = {&ref.dr, &ref.dw, &ref.dk, &ref.dv, &ref.da, &ref.db};
    std::string detail;
    for (int g = 0; g < 6; ++g) {
        const double x = rel_err(download(outs[g], d.E), *refs[g]);
        e.bwd = worst(e.bwd, x);
        detail += std::string(" ") + names[g] + "=" + std::to_string(x);
    }
    const double eds = rel_err(download(d.ds_in, d.S), ref.ds_in);
    e.bwd = worst(e.bwd, eds);
    if (verbose)
        std::printf("  %-20s %s B%d T%d H%d N%d state=%d: y=%.2e s_out=%.2e%s ds_in=%.2e\n",
                    var.name, sizeof(T) == 2 ? "bf16" : "f32", B, T_, H, var.N, state, ey, es,
                    detail.c_str(), eds);
    return e;
}

// ---- timing ---------------------------------------------------------------------------------

__device__ uint32_t hash32(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return static_cast<uint32_t>(x);
}
__device__ float unif(uint64_t i, uint64_t s) {  // (-1, 1)
    return (hash32(i * 0x9E3779B97F4A7C15ULL + s) >> 8) * (2.f / 16777216.f) - 1.f;
}

// One thread per (b, t, h) row: realistic random inputs like make_problem's.
template <class T>
__global__ void init_inputs(size_t rows, int N, T* r, T* w, T* k, T* v, T* a, T* b, T* dy) {
    const size_t row = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
    if (row >= rows) return;
    float nrm = 0;
    for (int j = 0; j < N; ++j) {
        const float x = unif(row * N + j, 7);
        nrm += x * x;
    }
    const float inv = rsqrtf(nrm);
    for (int j = 0; j < N; ++j) {
        const size_t o = row * N + j;
        const float kk = unif(o, 7) * inv, gate = 0.5f + 0.48f * unif(o, 8);
        r[o] = goose_wkv7::detail::from_f<T>(unif(o, 1));
        w[o] = goose_wkv7::detail::from_f<T>(-2.f + 4.f * unif(o, 2));
        k[o] = goose_wkv7::detail::from_f<T>(0.5f * unif(o, 3));
        v[o] = goose_wkv7::detail::from_f<T>(unif(o, 4));
        a[o] = goose_wkv7::detail::from_f<T>(-kk);
        b[o] = goose_wkv7::detail::from_f<T>(kk * gate);
        dy[o] = goose_wkv7::detail::from_f<T>(unif(o, 5));
    }
}

template <class F>
float median_ms(F&& launch, int warmup, int reps) {
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    for (int i = 0; i < warmup; ++i) launch();
    std::vector<float> ms;
    for (int i = 0; i < reps; ++i) {
        CHECK(cudaEventRecord(e0));
        launch();
        CHECK(cudaEventRecord(e1));
        CHECK(cudaEventSynchronize(e1));
        float x;
        CHECK(cudaEventElapsedTime(&x, e0, e1));
        ms.push_back(x);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

double copy_bandwidth_gbs() {
    const size_t bytes = size_t(1) << 30;
    void *x, *y;
    CHECK(cudaMalloc(&x, bytes));
    CHECK(cudaMalloc(&y, bytes));
    CHECK(cudaMemset(x, 1, bytes));
    const float ms = median_ms([&] { CHECK(cudaMemcpyAsync(y, x, bytes, cudaMemcpyDeviceToDevice)); }, 3, 10);
    cudaFree(x);
    cudaFree(y);
    return 2.0 * bytes / (ms * 1e-3) / 1e9;  // read + write
}

struct Timing {
    float fwd_ms, bwd_ms;
    double fwd_gbs, bwd_gbs;
};

template <class T>
Timing time_variant(const Variant<T>& var, int B, int T_, int H) {
    const Dims D{B, T_, H, var.N};
    DevBufs<T> d(D);
    const size_t rows = d.E / var.N;
    init_inputs<T><<<(rows + 255) / 256, 256>>>(rows, var.N, d.r, d.w, d.k, d.v, d.a, d.b, d.dy);
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    Timing t;
    t.fwd_ms = median_ms([&] { CHECK(var.fwd(D, d.fwd(false), d.fscratch, 0)); }, 3, 15);
    t.bwd_ms = median_ms([&] { CHECK(var.bwd(D, d.bwd(false), d.scratch, 0)); }, 3, 15);
    CHECK(cudaDeviceSynchronize());
    // Fewest bytes each pass must move: every input read once, every output written once.
    const double io = sizeof(T), E = d.E, S4 = d.S * 4.0, SN4 = d.SN * 4.0;
    const double fwd_bytes = 6 * E * io + E * io + E * 4 + SN4 + S4;
    const double bwd_bytes = 7 * E * io + E * 4 + SN4 + 6 * E * io + S4;
    t.fwd_gbs = fwd_bytes / (t.fwd_ms * 1e-3) / 1e9;
    t.bwd_gbs = bwd_bytes / (t.bwd_ms * 1e-3) / 1e9;
    return t;
}

// ---- main -----------------------------------------------------------------------------------

struct Row {
    std::string name, dtype, shape;
    Timing t;
    Errs e;
    bool ok;
};

// Whether a variant's name contains one of the comma-separated parts of `only` (empty: all).
bool selected(const char* name, const std::string& only) {
    bool wanted = only.empty();
    for (size_t p = 0; p < only.size();) {
        const size_t q = std::min(only.find(',', p), only.size());
        wanted = wanted || std::strstr(name, only.substr(p, q - p).c_str()) != nullptr;
        p = q + 1;
    }
    return wanted;
}

template <class T>
void run_all(std::vector<Row>& rows, bool verbose, bool timing, int& failures,
             const std::string& only) {
    const bool is_bf16 = sizeof(T) == 2;
    const double tol_fwd = is_bf16 ? 5e-3 : 2e-5, tol_bwd = is_bf16 ? 1e-2 : 5e-4;
    for (const auto& var : variants<T>()) {
        if (!selected(var.name, only)) continue;
        // Checks: T not a multiple of 16 with state in/out, a longer sequence without state.
        Errs e;
        const Errs e1 = check_case(var, 2, 45, 3, true, 11, verbose);
        const Errs e2 = check_case(var, 1, 300, 2, false, 12, verbose);
        const Errs e3 = check_case(var, 1, 16, 1, true, 13, verbose);
        e.fwd = worst(worst(e1.fwd, e2.fwd), e3.fwd);
        e.bwd = worst(worst(e1.bwd, e2.bwd), e3.bwd);
        const bool ok = e.fwd <= tol_fwd && e.bwd <= tol_bwd;  // false for NaN
        if (!ok) ++failures;
        std::printf("check %-20s %-4s fwd %.2e (tol %.0e) bwd %.2e (tol %.0e) %s\n", var.name,
                    is_bf16 ? "bf16" : "f32", e.fwd, tol_fwd, e.bwd, tol_bwd, ok ? "ok" : "FAIL");
        std::fflush(stdout);
        if (!timing || var.N != 64) {
            rows.push_back({var.name, is_bf16 ? "bf16" : "f32", "(check only)", {}, e, ok});
            continue;
        }
        const int shapes[3][3] = {{8, 4096, 12}, {16, 2048, 12}, {16, 512, 12}};
        for (const auto& s : shapes) {
            const Timing t = time_variant(var, s[0], s[1], s[2]);
            char shape[64];
            std::snprintf(shape, sizeof shape, "B%d T%d H%d N64", s[0], s[1], s[2]);
            rows.push_back({var.name, is_bf16 ? "bf16" : "f32", shape, t, e, ok});
        }
    }
}

// Clusters of each split backward that fit on the device at once (needed: B * H at B8 H12 = 96,
// B16 H12 = 192), with the shared memory per block.
template <class T, int R, int C, int E>
void split_occupancy(const char* name) {
    int clusters = 0;
    CHECK((goose_wkv7::split::max_active_clusters<T, 64, R, C, E>(Dims{8, 4096, 12, 64},
                                                                 &clusters)));
    std::printf("occupancy split R%d C%d E%d %s: %d clusters of %d blocks x %d threads, "
                "%zu B shared memory per block\n",
                R, C, E, name, clusters, 64 / R, 64 * R / C,
                goose_wkv7::split::bwd_smem_bytes<T, 64, R, E>());
}

void print_split_occupancy() {
    split_occupancy<bf16, 16, 8, 4>("bf16");
    split_occupancy<bf16, 16, 16, 4>("bf16");
    split_occupancy<bf16, 16, 8, 8>("bf16");
    split_occupancy<bf16, 16, 16, 8>("bf16");
    split_occupancy<bf16, 32, 16, 8>("bf16");
    split_occupancy<bf16, 32, 16, 16>("bf16");
    split_occupancy<float, 16, 8, 4>("f32");
    split_occupancy<float, 16, 16, 4>("f32");
    split_occupancy<float, 16, 8, 8>("f32");
    split_occupancy<float, 16, 16, 8>("f32");
    split_occupancy<float, 32, 16, 8>("f32");
    split_occupancy<float, 32, 16, 16>("f32");
}

// Phase B of the chunked backward alone (FMA vs tensor cores), after one forward and one full
// chunked backward have filled the scratch (dU, Gh), at the lab's three shapes.
template <class T>
void time_phase_b(double copy_gbs) {
    const int shapes[3][3] = {{8, 4096, 12}, {16, 2048, 12}, {16, 512, 12}};
    for (const auto& sh : shapes) {
        const Dims D{sh[0], sh[1], sh[2], 64};
        DevBufs<T> d(D);
        const size_t rows = d.E / 64;
        init_inputs<T><<<(rows + 255) / 256, 256>>>(rows, 64, d.r, d.w, d.k, d.v, d.a, d.b, d.dy);
        CHECK(cudaGetLastError());
        CHECK((seq_fwd<T, 64, 8, 2, 64>(D, d.fwd(false), d.fscratch, 0)));
        CHECK((tcb::fma_a_tc_b<T, false>(D, d.bwd(false), d.scratch, 0)));
        CHECK(cudaDeviceSynchronize());
        const auto W = tcb::scratch_of(D, d.scratch);
        const auto args = d.bwd(false);
        const float ms_fma = median_ms([&] { CHECK(tcb::fma_phase_b<T>(D, args, W, 0)); }, 3, 15);
        namespace tc = goose_wkv7::chunked_tc;
        const float ms_tc = median_ms(
            [&] { CHECK((tc::launch_backward_grads<T, false>(D, args, W, 0))); }, 3, 15);
        const float ms_sl = median_ms(
            [&] { CHECK((tc::launch_backward_grads<T, true>(D, args, W, 0))); }, 3, 15);
        const float ms_sk = median_ms(
            [&] { CHECK((tc::launch_backward_grads<T, false, true>(D, args, W, 0))); }, 3, 15);
        // fewest bytes: S0 and Gh per chunk (f32), U and dU (f32), 7 inputs, 6 outputs
        const double bytes = 2.0 * d.SN * 4 + 2.0 * d.E * 4 + 13.0 * d.E * sizeof(T);
        const double gbs = bytes / (ms_tc * 1e-3) / 1e9;
        std::printf("| phase B | %s | B%d T%d H%d | %.3f | %.3f | %.3f | %.3f | %.2fx | %.0f | "
                    "%.0f%% | %.3f |\n",
                    sizeof(T) == 2 ? "bf16" : "f32", sh[0], sh[1], sh[2], ms_fma, ms_tc, ms_sl,
                    ms_sk, ms_fma / ms_tc, gbs, 100 * gbs / copy_gbs,
                    bytes / (copy_gbs * 1e9) * 1e3);
    }
}

void print_phase_b_timings(double copy_gbs) {
    std::printf("\n| phase B | dtype | shape | ms FMA | ms tc | ms tc sl | "
                "ms tc skeleton (no products) | FMA / tc | GB/s tc | %% of copy | ms at copy bw |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|\n");
    time_phase_b<bf16>(copy_gbs);
    time_phase_b<float>(copy_gbs);
}

// One forward and one backward of every N=64 bf16 variant at B=8 T=4096 (for a profiler), or
// of those whose name contains one of the comma-separated parts of `only`.
void profile_once(const std::string& only) {
    for (const auto& var : variants<bf16>()) {
        if (var.N != 64 || !selected(var.name, only)) continue;
        const Dims D{8, 4096, 12, 64};
        DevBufs<bf16> d(D);
        const size_t rows = d.E / 64;
        init_inputs<bf16><<<(rows + 255) / 256, 256>>>(rows, 64, d.r, d.w, d.k, d.v, d.a, d.b, d.dy);
        CHECK(var.fwd(D, d.fwd(false), d.fscratch, 0));
        CHECK(var.bwd(D, d.bwd(false), d.scratch, 0));
        CHECK(cudaDeviceSynchronize());
        std::printf("profiled %s\n", var.name);
    }
}

// ---- tc phase A alone (wkv7_chunked_tc_bwd_a.cuh): times against the one-pass phase A, and its
// du / gh / dstate_in against the one-pass FMA phase A's on the same inputs ----
__global__ void fill_unif(float* x, size_t n, uint64_t seed, float scale) {
    const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
    if (i < n) x[i] = scale * unif(i, seed);
}

double rel_diff_dev(const float* x, const float* ref, size_t n) {
    std::vector<float> hx(n), hr(n);
    CHECK(cudaMemcpy(hx.data(), x, n * sizeof(float), cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(hr.data(), ref, n * sizeof(float), cudaMemcpyDeviceToHost));
    double num = 0, den = 0;
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(hx[i]) || !std::isfinite(hr[i])) return NAN;
        num += (double(hx[i]) - hr[i]) * (double(hx[i]) - hr[i]);
        den += double(hr[i]) * hr[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

// du, gh and dstate_in of tc A config C against the one-pass FMA phase A (with a state-out
// gradient), worst relative error over shapes with a partial last chunk and with many chunks.
template <class T, class C>
double phase_a_check() {
    namespace tc = goose_wkv7::chunked_tc;
    namespace ck = goose_wkv7::chunked;
    const int shapes[4][3] = {{16, 512, 12}, {2, 45, 3}, {1, 300, 2}, {3, 16, 1}};
    double worst_e = 0;
    for (const auto& sh : shapes) {
        const Dims D{sh[0], sh[1], sh[2], 64};
        DevBufs<T> d(D);
        const size_t rows = d.E / 64;
        init_inputs<T><<<(rows + 255) / 256, 256>>>(rows, 64, d.r, d.w, d.k, d.v, d.a, d.b, d.dy);
        fill_unif<<<(d.S + 255) / 256, 256>>>(d.ds_out, d.S, 9, 0.1f);
        CHECK(cudaGetLastError());
        CHECK((seq_fwd<T, 64, 8, 2, 64>(D, d.fwd(false), nullptr, 0)));
        const size_t n = ck::backward_scratch_floats(D);
        float *ref = nullptr, *ds_ref = nullptr;
        CHECK(cudaMalloc(&ref, n * sizeof(float)));
        CHECK(cudaMalloc(&ds_ref, d.S * sizeof(float)));
        CHECK(cudaMemset(ref, 0xff, n * sizeof(float)));
        CHECK(cudaMemset(d.scratch, 0xff, n * sizeof(float)));
        auto As = d.bwd(true);
        CHECK((tc::launch_backward_state<T, C>(D, As, d.scratch, 0)));
        As.dstate_in = ds_ref;
        CHECK((chunked_phase_a<T, false>(D, As, ref, 0)));
        CHECK(cudaDeviceSynchronize());
        const size_t ndu = d.E;
        worst_e = worst(worst_e, rel_diff_dev(d.scratch, ref, ndu));
        worst_e = worst(worst_e, rel_diff_dev(d.scratch + ndu, ref + ndu, n - ndu));
        worst_e = worst(worst_e, rel_diff_dev(d.ds_in, ds_ref, d.S));
        cudaFree(ref);
        cudaFree(ds_ref);
    }
    return worst_e;
}

template <class T>
void phase_a_report(int& failures) {
    namespace tc = goose_wkv7::chunked_tc;
    const char* dt = sizeof(T) == 2 ? "bf16" : "f32";
    constexpr int PB = tc::BwdADefault<T>::PB;
    // BwdAConfig<kDyIn, KH, PB, OV, kFast, kPdl>
    using Base = tc::BwdAConfig<true, 1, PB, 0, false, false>;
    using Ov1 = tc::BwdAConfig<true, 1, 5, 1, false, false>;
    using Ov2 = tc::BwdAConfig<true, 1, 5, 2, false, false>;
    using Fast = tc::BwdAConfig<true, 1, PB, 0, true, false>;
    using Pdl = tc::BwdAConfig<true, 1, PB, 0, false, true>;
    std::printf("\nphase A alone, %s, ms (median of 15): default = pre-pass (PB %d) + state pass; "
                "ovN: persistent pre-pass (N blocks per SM) + state pass at once (flags); F: "
                "two-instruction split in the state pass; P: state pass as PDL launch\n", dt, PB);
    std::printf("| shape | default | pre | state | ov1 | ov2 | F | P | one-pass FMA | "
                "FMA / default |\n|---|---|---|---|---|---|---|---|---|---|\n");
    const int shapes[3][3] = {{8, 4096, 12}, {16, 2048, 12}, {16, 512, 12}};
    for (const auto& sh : shapes) {
        const Dims D{sh[0], sh[1], sh[2], 64};
        DevBufs<T> d(D);
        const size_t rows = d.E / 64;
        init_inputs<T><<<(rows + 255) / 256, 256>>>(rows, 64, d.r, d.w, d.k, d.v, d.a, d.b, d.dy);
        fill_unif<<<(d.S + 255) / 256, 256>>>(d.ds_out, d.S, 9, 0.1f);
        CHECK(cudaGetLastError());
        CHECK((seq_fwd<T, 64, 8, 2, 64>(D, d.fwd(false), nullptr, 0)));
        CHECK(cudaDeviceSynchronize());
        const auto A = d.bwd(false);
        auto ms = [&](auto&& f) { return median_ms([&] { CHECK(f()); }, 3, 15); };
        float* W = d.scratch;
        const float t_def = ms([&] { return tc::launch_backward_state<T>(D, A, W, 0); });
        const float t_pre = ms([&] { return tc::launch_backward_prepass<T, Base>(D, A, W, 0); });
        const float t_st =
            ms([&] { return tc::launch_backward_state_pass<T, Base>(D, A, W, 0); });
        const bool ov = std::getenv("WKV7_LAB_NO_OV") == nullptr;  // the spinning variants
        const float t_ov1 =
            ov ? ms([&] { return tc::launch_backward_state<T, Ov1>(D, A, W, 0); }) : 0.f;
        const float t_ov2 =
            ov ? ms([&] { return tc::launch_backward_state<T, Ov2>(D, A, W, 0); }) : 0.f;
        const float t_f = ms([&] { return tc::launch_backward_state<T, Fast>(D, A, W, 0); });
        const float t_p = ms([&] { return tc::launch_backward_state<T, Pdl>(D, A, W, 0); });
        const float t_fma = ms([&] { return chunked_phase_a<T, false>(D, A, W, 0); });
        std::printf("| B%d T%d H%d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | "
                    "%.2fx |\n", sh[0], sh[1], sh[2], t_def, t_pre, t_st, t_ov1, t_ov2, t_f, t_p,
                    t_fma, t_fma / t_def);
        std::fflush(stdout);
    }
    // du, gh, dstate_in of every config against the one-pass FMA phase A
    const char* names[] = {"default", "ov1", "ov2", "F", "P"};
    const bool ov = std::getenv("WKV7_LAB_NO_OV") == nullptr;
    const double errs[] = {phase_a_check<T, tc::BwdADefault<T>>(),
                           ov ? phase_a_check<T, Ov1>() : 0.0, ov ? phase_a_check<T, Ov2>() : 0.0,
                           phase_a_check<T, Fast>(), phase_a_check<T, Pdl>()};
    for (int i = 0; i < 5; ++i) {
        const bool ok = errs[i] <= 1e-4;  // false for NaN
        if (!ok) ++failures;
        std::printf("tc A %-7s vs one-pass FMA phase A, %s (B16 T512 H12, B2 T45 H3, B1 T300 H2, "
                    "B3 T16 H1; state-out gradient): du/gh/dstate_in worst %.2e (tol 1e-4) %s\n",
                    names[i], dt, errs[i], ok ? "ok" : "FAIL");
    }
}
// ---- end tc phase A alone ----

int main(int argc, char** argv) {
    bool verbose = false;
    std::string only;  // --only NAME,...: the variants whose names contain one of the parts
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "-v") == 0) verbose = true;
        if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[i + 1];
    }
    if (argc > 1 && std::strcmp(argv[1], "--profile") == 0) {
        profile_once(argc > 2 ? argv[2] : "");
        return 0;
    }
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    const double copy_gbs = copy_bandwidth_gbs();
    std::printf("device-to-device copy: %.0f GB/s (read + write)\n", copy_gbs);
    if (only.empty()) print_split_occupancy();
    std::vector<Row> rows;
    int failures = 0;
    run_all<bf16>(rows, verbose, true, failures, only);
    run_all<float>(rows, verbose, true, failures, only);
    if (selected("tc A phase", only)) {  // phase A alone (wkv7_chunked_tc_bwd_a.cuh)
        phase_a_report<bf16>(failures);
        phase_a_report<float>(failures);
    }
    std::printf("\n| variant | dtype | shape | ms fwd | ms bwd | GB/s fwd | GB/s bwd | "
                "%% of copy fwd/bwd | rel err fwd | rel err bwd | check |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const Row& r : rows) {
        if (r.shape == "(check only)") {
            std::printf("| %s | %s | %s | | | | | | %.2e | %.2e | %s |\n", r.name.c_str(),
                        r.dtype.c_str(), r.shape.c_str(), r.e.fwd, r.e.bwd, r.ok ? "ok" : "FAIL");
            continue;
        }
        std::printf("| %s | %s | %s | %.3f | %.3f | %.0f | %.0f | %.0f%% / %.0f%% | %.2e | %.2e | %s |\n",
                    r.name.c_str(), r.dtype.c_str(), r.shape.c_str(), r.t.fwd_ms, r.t.bwd_ms,
                    r.t.fwd_gbs, r.t.bwd_gbs, 100 * r.t.fwd_gbs / copy_gbs,
                    100 * r.t.bwd_gbs / copy_gbs, r.e.fwd, r.e.bwd, r.ok ? "ok" : "FAIL");
    }
    if (selected("C8 RT2 | fma A | tc B", only)) print_phase_b_timings(copy_gbs);
    std::printf("\ncopy bandwidth %.0f GB/s; %d variant(s) failed the check\n", copy_gbs, failures);
    return failures == 0 ? 0 : 1;
}
