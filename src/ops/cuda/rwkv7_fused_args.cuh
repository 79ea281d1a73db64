// Typed views of the fused RWKV-7 glue launchers' raw pointers (rwkv7_fused_kernels.h), shared
// by the per-channel kernels (rwkv7_fused.cu) and the vectorised ones (rwkv7_fused_vec.cu):
// each kernel's argument block is one of these plus its own launch geometry.
#pragma once
#include <cstdint>

#include "rwkv7_fused_kernels.h"

namespace goose::models::fused::cuda_kernels {

template <class T>
struct MixView {
    const T* x;
    const T* prev;
    const T* mu[kMaxMix];
    T* out[kMaxMix];
    const T* g[kMaxMixGrads];   // grouped by mix: out[m]'s are g[g_first[m]] .. g[g_first[m+1]-1]
    int g_first[kMaxMix + 1];
    int G;
    T* dx;
    T* dprev;
    float* part;  // (chunks, M, C) or null
    int M;
};

template <class T>
struct PrepView {
    const T *wl, *kr, *vr, *al, *vl, *vf, *w0, *a0, *v0, *kk, *ka;
    T *w, *k, *aa, *bb, *v;             // forward outputs
    const T *gw, *gk, *gaa, *gbb, *gv;  // backward inputs
    T *dkr, *dvr, *dal, *dvl, *dvf;     // backward row outputs
    const T* dvf_add;                   // rows added into dvf, or null
    float* part;                        // (chunks, 5, C): w0, a0, v0, kk, ka
};

template <class T>
struct OutView {
    const T *y, *r, *k, *v, *g, *rk, *lw, *lb;
    T* z;                       // forward output
    const T* gz;                // backward input
    T *dy, *dr, *dk, *dv, *dg;  // backward row outputs
    float* part;                // (chunks, 3, C): rk, lw, lb
};

namespace view_detail {
template <class T>
const T* c(const void* p) {
    return static_cast<const T*>(p);
}
template <class T>
T* m(void* p) {
    return static_cast<T*>(p);
}
}  // namespace view_detail

template <class T>
MixView<T> view_of(const MixPtrs& p) {
    using view_detail::c, view_detail::m;
    MixView<T> a{};
    a.x = c<T>(p.x);
    a.prev = c<T>(p.prev);
    for (int i = 0; i < p.M; ++i) {
        a.mu[i] = c<T>(p.mu[i]);
        a.out[i] = m<T>(p.out[i]);
    }
    for (int i = 0; i < p.G; ++i) a.g[i] = c<T>(p.g[i]);
    for (int i = 0; i <= kMaxMix; ++i) a.g_first[i] = p.g_first[i];
    a.G = p.G;
    a.dx = m<T>(p.dx);
    a.dprev = m<T>(p.dprev);
    a.part = p.part;
    a.M = p.M;
    return a;
}

template <class T>
PrepView<T> view_of(const PrepPtrs& p) {
    using view_detail::c, view_detail::m;
    PrepView<T> a{};
    a.wl = c<T>(p.wl), a.kr = c<T>(p.kr), a.vr = c<T>(p.vr), a.al = c<T>(p.al);
    a.vl = c<T>(p.vl), a.vf = c<T>(p.vf), a.w0 = c<T>(p.w0), a.a0 = c<T>(p.a0);
    a.v0 = c<T>(p.v0), a.kk = c<T>(p.kk), a.ka = c<T>(p.ka);
    a.w = m<T>(p.w), a.k = m<T>(p.k), a.aa = m<T>(p.aa), a.bb = m<T>(p.bb), a.v = m<T>(p.v);
    a.gw = c<T>(p.gw), a.gk = c<T>(p.gk), a.gaa = c<T>(p.gaa), a.gbb = c<T>(p.gbb);
    a.gv = c<T>(p.gv);
    a.dkr = m<T>(p.dkr), a.dvr = m<T>(p.dvr), a.dal = m<T>(p.dal), a.dvl = m<T>(p.dvl);
    a.dvf = m<T>(p.dvf);
    a.dvf_add = c<T>(p.dvf_add);
    a.part = p.part;
    return a;
}

template <class T>
OutView<T> view_of(const OutPtrs& p) {
    using view_detail::c, view_detail::m;
    OutView<T> a{};
    a.y = c<T>(p.y), a.r = c<T>(p.r), a.k = c<T>(p.k), a.v = c<T>(p.v), a.g = c<T>(p.g);
    a.rk = c<T>(p.rk), a.lw = c<T>(p.lw), a.lb = c<T>(p.lb);
    a.z = m<T>(p.z);
    a.gz = c<T>(p.gz);
    a.dy = m<T>(p.dy), a.dr = m<T>(p.dr), a.dk = m<T>(p.dk), a.dv = m<T>(p.dv);
    a.dg = m<T>(p.dg);
    a.part = p.part;
    return a;
}

}  // namespace goose::models::fused::cuda_kernels
