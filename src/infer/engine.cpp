// Rwkv7Engine: weights converted once from a models::Rwkv7; one layer loop shared by the batched
// decode (row b = sequence b) and the sequence prefill (rows = consecutive tokens of one
// sequence); activation buffers that only grow.
#include "goose/infer/engine.h"

#include <algorithm>
#include <cstring>

#include "engine_kernels.h"
#include "goose/models/rwkv7_checkpoint.h"

namespace goose::infer {

using detail::Epilogue;
using detail::GemvJob;
using detail::QMatrix;

WeightFormat parse_weight_format(const std::string& name) {
    if (name == "f32") return WeightFormat::f32;
    if (name == "bf16") return WeightFormat::bf16;
    if (name == "int8") return WeightFormat::int8;
    fail("unknown weight format '{}' (valid: f32, bf16, int8)", name);
}

const char* weight_format_name(WeightFormat f) {
    switch (f) {
        case WeightFormat::f32: return "f32";
        case WeightFormat::bf16: return "bf16";
        case WeightFormat::int8: return "int8";
    }
    return "?";
}

namespace {

constexpr float kLnEps = 1e-5f;
// Prefill runs the prompt in pieces of at most this many tokens (the state carries over, so
// the result is the same); it bounds the activation buffers.
constexpr int64_t kPrefillChunk = 512;
// From this many values (rows x C) the elementwise row loops run in parallel, and from this
// many state values updated (rows x H x N x N) the time mix does.
constexpr int64_t kParallelValues = int64_t(1) << 14;
constexpr int64_t kParallelState = int64_t(1) << 15;

std::vector<float> vec_of(const Var& v) {
    const Tensor t = v.value().to(DType::f32).contiguous();
    return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

// Activations for `cap` rows (decode: one per sequence; prefill: one per token).
struct Acts {
    int64_t cap = 0;
    detail::AlignedBytes mem;
    float *x, *xln, *mix[6], *r, *k, *v, *w, *a, *vg, *g, *vfirst, *y, *hw, *ha, *hv, *hg, *ffh;
};

}  // namespace

struct Rwkv7Engine::Impl {
    struct Layer {
        std::vector<float> ln0_w, ln0_b, ln1_w, ln1_b, ln2_w, ln2_b;
        std::vector<float> mix[6];  // x_r, x_w, x_k, x_v, x_a, x_g
        std::vector<float> w0, a0, v0, k_k, k_a, r_k, lnx_w, lnx_b, ffn_xk;
        QMatrix wr, wk, wv, wo, w1, w2, a1, a2, v1, v2, g1, g2, fk, fv;  // all (out, in)
    };

    models::Rwkv7Config cfg;
    EngineOptions opt;
    QMatrix emb, head;
    std::vector<float> lnout_w, lnout_b;
    std::vector<Layer> layers;
    int64_t bytes_per_token = 0;

    Acts acts;
    std::vector<detail::GemvTile> tiles;
    std::vector<detail::Scratch> widen;  // per thread
    std::vector<const void*> seen;  // decode: state buffers, to check they are distinct

    Impl(const models::Rwkv7& m, const EngineOptions& o);
    void ensure_rows(int64_t rows);
    void check_state(models::Rwkv7State& s, size_t which) const;
    void embed(std::span<const int32_t> tokens);
    void run_blocks(int64_t rows, bool sequence, std::span<models::Rwkv7State* const> states);
    void logits_of_row(int64_t row, float* out, int64_t ld, int64_t nrows);
};

Rwkv7Engine::Impl::Impl(const models::Rwkv7& m, const EngineOptions& o) : cfg(m.config()), opt(o) {
    cfg.validate();
    const WeightFormat fm = opt.matrices;
    auto lin = [&](const std::shared_ptr<models::Rwkv7Weight>& w) {
        return detail::make_matrix(w->weight.value(), fm);
    };
    // LoRA matrices are stored (in, out); the GEMV wants (out, in)
    auto lora = [&](const Var& w) { return detail::make_matrix(w.value().transpose(0, 1), fm); };
    emb = detail::make_matrix(m.emb->weight.value(), opt.emb);
    head = detail::make_matrix(m.head->weight.value(), opt.head);
    lnout_w = vec_of(m.ln_out->weight);
    lnout_b = vec_of(m.ln_out->bias);
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
        const models::Rwkv7Block& b = m.block(static_cast<size_t>(l));
        const models::Rwkv7TimeMix& att = *b.att;
        Layer L;
        if (b.ln0) {
            L.ln0_w = vec_of(b.ln0->weight);
            L.ln0_b = vec_of(b.ln0->bias);
        }
        L.ln1_w = vec_of(b.ln1->weight);
        L.ln1_b = vec_of(b.ln1->bias);
        L.ln2_w = vec_of(b.ln2->weight);
        L.ln2_b = vec_of(b.ln2->bias);
        const Var* mixes[6] = {&att.x_r, &att.x_w, &att.x_k, &att.x_v, &att.x_a, &att.x_g};
        for (int i = 0; i < 6; ++i) L.mix[i] = vec_of(*mixes[i]);
        L.w0 = vec_of(att.w0);
        L.a0 = vec_of(att.a0);
        L.v0 = vec_of(att.v0);
        L.k_k = vec_of(att.k_k);
        L.k_a = vec_of(att.k_a);
        L.r_k = vec_of(att.r_k);
        L.lnx_w = vec_of(att.ln_x->weight);
        L.lnx_b = vec_of(att.ln_x->bias);
        L.ffn_xk = vec_of(b.ffn->x_k);
        L.wr = lin(att.receptance);
        L.wk = lin(att.key);
        L.wv = lin(att.value);
        L.wo = lin(att.output);
        L.w1 = lora(att.w1);
        L.w2 = lora(att.w2);
        L.a1 = lora(att.a1);
        L.a2 = lora(att.a2);
        if (l > 0) {  // layer 0 never mixes v towards v_first
            L.v1 = lora(att.v1);
            L.v2 = lora(att.v2);
        }
        L.g1 = lora(att.g1);
        L.g2 = lora(att.g2);
        L.fk = lin(b.ffn->key);
        L.fv = lin(b.ffn->value);
        layers.push_back(std::move(L));
    }
    // bytes one decode step reads: every matrix, every vector, one embedding row
    const int64_t c = cfg.n_embd;
    int64_t bytes = head.bytes() + emb.bytes() / std::max<int64_t>(1, cfg.vocab) +
                    2 * c * 4;  // ln_out
    for (const Layer& L : layers) {
        for (const QMatrix* q : {&L.wr, &L.wk, &L.wv, &L.wo, &L.w1, &L.w2, &L.a1, &L.a2, &L.v1,
                                 &L.v2, &L.g1, &L.g2, &L.fk, &L.fv})
            bytes += q->bytes();
        int64_t floats = static_cast<int64_t>(L.ln0_w.size() * 2 + 4 * c + 6 * c + 8 * c + c);
        bytes += floats * 4;
    }
    bytes_per_token = bytes;
}

void Rwkv7Engine::Impl::ensure_rows(int64_t rows) {
    if (rows <= acts.cap) return;
    const int64_t c = cfg.n_embd;
    const int64_t widths[] = {c,           c, c, c, c, c, c, c,  // x, xln, mix[6]
                              c,           c, c, c, c, c, c, c, c,  // r k v w a vg g vfirst y
                              cfg.d_decay, cfg.d_aaa, cfg.d_mv, cfg.d_gate, cfg.dim_ffn};
    int64_t per_row = 0;
    for (int64_t w : widths) per_row += (w + 15) / 16 * 16;  // 64-byte aligned arrays
    acts.mem = detail::AlignedBytes(static_cast<size_t>(per_row * rows) * sizeof(float));
    float* p = static_cast<float*>(acts.mem.data());
    int i = 0;
    auto take = [&] {
        float* q = p;
        p += (widths[i++] + 15) / 16 * 16 * rows;
        return q;
    };
    acts.x = take();
    acts.xln = take();
    for (auto& m : acts.mix) m = take();
    acts.r = take();
    acts.k = take();
    acts.v = take();
    acts.w = take();
    acts.a = take();
    acts.vg = take();
    acts.g = take();
    acts.vfirst = take();
    acts.y = take();
    acts.hw = take();
    acts.ha = take();
    acts.hv = take();
    acts.hg = take();
    acts.ffh = take();
    acts.cap = rows;
}

void Rwkv7Engine::Impl::check_state(models::Rwkv7State& s, size_t which) const {
    const auto nl = static_cast<size_t>(cfg.n_layer);
    if (s.att_shift.size() != nl || s.wkv.size() != nl || s.ffn_shift.size() != nl)
        fail("Rwkv7Engine: state {} has {}/{}/{} att_shift/wkv/ffn_shift layers, the model has {}",
             which, s.att_shift.size(), s.wkv.size(), s.ffn_shift.size(), nl);
    const int64_t c = cfg.n_embd, h = cfg.n_head(), n = cfg.head_size;
    const Shape shift{1, c}, wkv{1, h, n, n};
    auto check = [&](Tensor& t, const Shape& want, const char* what, size_t l) {
        if (!t.defined() || t.shape() != want || t.dtype() != DType::f32 ||
            t.device() != Device::cpu())
            fail("Rwkv7Engine: state {} {}[{}] must be f32{} on the CPU (batch 1; see new_state()), "
                 "got {}",
                 which, what, l, want.str(), t.defined() ? t.desc() : "undefined");
        if (!t.is_contiguous()) t = t.contiguous();
    };
    for (size_t l = 0; l < nl; ++l) {
        check(s.att_shift[l], shift, "att_shift", l);
        check(s.wkv[l], wkv, "wkv", l);
        check(s.ffn_shift[l], shift, "ffn_shift", l);
    }
}

void Rwkv7Engine::Impl::embed(std::span<const int32_t> tokens) {
    for (size_t t = 0; t < tokens.size(); ++t)
        emb.rows_to_f32(tokens[t], tokens[t] + 1, acts.x + static_cast<int64_t>(t) * cfg.n_embd);
}

// The blocks on acts.x (rows, C). decode (sequence = false): row b belongs to *states[b];
// sequence: the rows are consecutive tokens of *states[0].
void Rwkv7Engine::Impl::run_blocks(int64_t rows, bool sequence,
                                   std::span<models::Rwkv7State* const> states) {
    const int64_t c = cfg.n_embd, nh = cfg.n_head(), n = cfg.head_size, f = cfg.dim_ffn;
    const Acts& A = acts;
    auto state_of = [&](int64_t row) { return states[sequence ? 0 : static_cast<size_t>(row)]; };
    const bool par_rows = rows > 1 && rows * c >= kParallelValues;
    const bool par_heads = nh > 1 && rows * nh * n * n >= kParallelState;
    for (size_t l = 0; l < layers.size(); ++l) {
        const Layer& L = layers[l];
        // ln0 (layer 0), ln1, the six token-shift lerps; the att shift state becomes ln1(x)
#pragma omp parallel for schedule(static) if (par_rows)
        for (int64_t t = 0; t < rows; ++t) {
            float* x = A.x + t * c;
            if (!L.ln0_w.empty()) detail::layer_norm(x, L.ln0_w.data(), L.ln0_b.data(), x, c, kLnEps);
            detail::layer_norm(x, L.ln1_w.data(), L.ln1_b.data(), A.xln + t * c, c, kLnEps);
        }
        const float* coef[6];
        for (int i = 0; i < 6; ++i) coef[i] = L.mix[i].data();
#pragma omp parallel for schedule(static) if (par_rows)
        for (int64_t t = 0; t < rows; ++t) {
            const float* prev = sequence && t > 0 ? A.xln + (t - 1) * c
                                                  : state_of(t)->att_shift[l].data<float>();
            float* outs[6];
            for (int i = 0; i < 6; ++i) outs[i] = A.mix[i] + t * c;
            detail::token_mix(A.xln + t * c, prev, coef, outs, 6, c);
        }
        for (int64_t t = sequence ? rows - 1 : 0; t < rows; ++t)
            std::memcpy(state_of(t)->att_shift[l].data<float>(), A.xln + t * c, sizeof(float) * c);

        // projections and the first LoRA matrices (mix order r w k v a g)
        const int64_t dw = cfg.d_decay, da = cfg.d_aaa, dv = cfg.d_mv, dg = cfg.d_gate;
        GemvJob first[7] = {
            {&L.wr, A.mix[0], c, A.r, c},   {&L.wk, A.mix[2], c, A.k, c},
            {&L.wv, A.mix[3], c, A.v, c},   {&L.w1, A.mix[1], c, A.hw, dw},
            {&L.a1, A.mix[4], c, A.ha, da}, {&L.g1, A.mix[5], c, A.hg, dg},
            {&L.v1, A.mix[3], c, A.hv, dv},
        };
        detail::linear_jobs(std::span(first, l > 0 ? 7 : 6), rows, tiles, widen);
#pragma omp parallel for schedule(static) if (par_rows)
        for (int64_t t = 0; t < rows; ++t) {
            detail::tanh_inplace(A.hw + t * dw, dw);
            detail::sigmoid_inplace(A.hg + t * dg, dg);
        }
        GemvJob second[4] = {
            {&L.w2, A.hw, dw, A.w, c},
            {&L.a2, A.ha, da, A.a, c},
            {&L.g2, A.hg, dg, A.g, c},
            {&L.v2, A.hv, dv, A.vg, c},
        };
        detail::linear_jobs(std::span(second, l > 0 ? 4 : 3), rows, tiles, widen);

        // In the last layer of a sequence only the last row's output (the logits) and the ffn
        // shift state (ln2 of the last row; its lerp needs the row before) are ever read: the
        // time-mix output and projection run for the last two rows, the channel mix for the
        // last one.
        const bool tail = sequence && l + 1 == layers.size();
        const int64_t r0 = tail ? std::max<int64_t>(0, rows - 2) : 0;  // rows [r0, rows)
        const int64_t f0 = tail ? rows - 1 : 0;                          // channel mix rows

        // the time mix: per-channel chains by row, the WKV recurrence by (row, head) or, in a
        // sequence, by head (in time order), then group norm, bonus and gate by row
        const detail::TimeMixParams tp{L.w0.data(),  L.a0.data(),    L.v0.data(),
                                       L.k_k.data(), L.k_a.data(),   L.r_k.data(),
                                       L.lnx_w.data(), L.lnx_b.data(), c, n, l == 0};
        auto row_of = [&](int64_t t) {  // kk goes where x_w was (read by w1 only)
            return detail::TimeMixRow{A.r + t * c,  A.w + t * c,      A.k + t * c,
                                      A.v + t * c,  A.a + t * c,      A.vg + t * c,
                                      A.g + t * c,  A.mix[1] + t * c, A.vfirst + t * c,
                                      A.y + t * c};
        };
#pragma omp parallel for schedule(static) if (par_rows)
        for (int64_t t = 0; t < rows; ++t) detail::time_mix_prepare(tp, row_of(t));
        if (sequence) {
            float* s = states[0]->wkv[l].data<float>();
#pragma omp parallel for schedule(dynamic, 1) if (par_heads)
            for (int64_t h = 0; h < nh; ++h)
                for (int64_t t = 0; t < rows; ++t) detail::wkv_head(row_of(t), h, n, s + h * n * n);
        } else {
#pragma omp parallel for schedule(static) if (par_heads)
            for (int64_t bh = 0; bh < rows * nh; ++bh) {
                const int64_t t = bh / nh, h = bh % nh;
                detail::wkv_head(row_of(t), h, n, state_of(t)->wkv[l].data<float>() + h * n * n);
            }
        }
#pragma omp parallel for schedule(static) if (par_rows && !tail)
        for (int64_t t = r0; t < rows; ++t) detail::time_mix_output(tp, row_of(t));
        GemvJob out{&L.wo, A.y + r0 * c, c, A.x + r0 * c, c, Epilogue::add};
        detail::linear_jobs(std::span(&out, 1), rows - r0, tiles, widen);

        // channel mix: ln2, lerp with the ffn shift state, relu(k)^2, value, residual
        const float* xk = L.ffn_xk.data();
#pragma omp parallel for schedule(static) if (par_rows && !tail)
        for (int64_t t = r0; t < rows; ++t)
            detail::layer_norm(A.x + t * c, L.ln2_w.data(), L.ln2_b.data(), A.xln + t * c, c, kLnEps);
#pragma omp parallel for schedule(static) if (par_rows && !tail)
        for (int64_t t = f0; t < rows; ++t) {
            const float* prev = sequence && t > 0 ? A.xln + (t - 1) * c
                                                  : state_of(t)->ffn_shift[l].data<float>();
            float* out0 = A.mix[0] + t * c;
            detail::token_mix(A.xln + t * c, prev, &xk, &out0, 1, c);
        }
        for (int64_t t = sequence ? rows - 1 : 0; t < rows; ++t)
            std::memcpy(state_of(t)->ffn_shift[l].data<float>(), A.xln + t * c, sizeof(float) * c);
        GemvJob key{&L.fk, A.mix[0] + f0 * c, c, A.ffh + f0 * f, f, Epilogue::relu2};
        detail::linear_jobs(std::span(&key, 1), rows - f0, tiles, widen);
        GemvJob value{&L.fv, A.ffh + f0 * f, f, A.x + f0 * c, c, Epilogue::add};
        detail::linear_jobs(std::span(&value, 1), rows - f0, tiles, widen);
    }
}

// ln_out of rows [row, row + nrows) of acts.x, then the head into out (ld floats per row).
void Rwkv7Engine::Impl::logits_of_row(int64_t row, float* out, int64_t ld, int64_t nrows) {
    const int64_t c = cfg.n_embd;
    for (int64_t t = 0; t < nrows; ++t)
        detail::layer_norm(acts.x + (row + t) * c, lnout_w.data(), lnout_b.data(),
                           acts.xln + t * c, c, kLnEps);
    GemvJob h{&head, acts.xln, c, out, ld};
    detail::linear_jobs(std::span(&h, 1), nrows, tiles, widen);
}

// ---- public -----------------------------------------------------------------------------------

Rwkv7Engine::Rwkv7Engine(const models::Rwkv7& model, const EngineOptions& opt)
    : impl_(std::make_unique<Impl>(model, opt)) {}

Rwkv7Engine::~Rwkv7Engine() = default;

std::unique_ptr<Rwkv7Engine> Rwkv7Engine::load(const std::string& path, const EngineOptions& opt) {
    const auto model = models::load_rwkv7(path, DType::f32);
    return std::make_unique<Rwkv7Engine>(*model, opt);
}

const models::Rwkv7Config& Rwkv7Engine::config() const { return impl_->cfg; }

const EngineOptions& Rwkv7Engine::options() const { return impl_->opt; }

models::Rwkv7State Rwkv7Engine::new_state() const {
    return models::Rwkv7State::zeros(impl_->cfg, 1, DType::f32);
}

int64_t Rwkv7Engine::weight_bytes() const { return impl_->bytes_per_token; }

namespace {
void check_ids(std::span<const int32_t> tokens, int64_t vocab, const char* what) {
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            fail("Rwkv7Engine::{}: token {} at position {} is out of range [0, {})", what,
                 tokens[i], i, vocab);
}
}  // namespace

void Rwkv7Engine::prefill(std::span<const int32_t> tokens, models::Rwkv7State& state,
                          std::span<float> logits) {
    Impl& m = *impl_;
    const int64_t v = m.cfg.vocab;
    if (tokens.empty()) fail("Rwkv7Engine::prefill: no tokens (need at least one)");
    if (static_cast<int64_t>(logits.size()) != v)
        fail("Rwkv7Engine::prefill: logits has {} floats, the vocabulary has {}", logits.size(), v);
    check_ids(tokens, v, "prefill");
    m.check_state(state, 0);
    models::Rwkv7State* states[1] = {&state};
    const detail::BlasOneThread one_blas_thread;
    const auto total = static_cast<int64_t>(tokens.size());
    for (int64_t start = 0; start < total; start += kPrefillChunk) {
        const int64_t rows = std::min(kPrefillChunk, total - start);
        m.ensure_rows(rows);
        m.embed(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(rows)));
        m.run_blocks(rows, true, states);
        if (start + rows == total) m.logits_of_row(rows - 1, logits.data(), v, 1);
    }
}

void Rwkv7Engine::decode(std::span<const int32_t> tokens,
                         std::span<models::Rwkv7State* const> states, std::span<float> logits) {
    Impl& m = *impl_;
    const int64_t v = m.cfg.vocab;
    const auto b = static_cast<int64_t>(tokens.size());
    if (b == 0) fail("Rwkv7Engine::decode: no tokens (need one per sequence)");
    if (states.size() != tokens.size())
        fail("Rwkv7Engine::decode: {} tokens but {} states (need one state per token)", b,
             states.size());
    if (static_cast<int64_t>(logits.size()) != b * v)
        fail("Rwkv7Engine::decode: logits has {} floats, need {} (batch {} x vocabulary {})",
             logits.size(), b * v, b, v);
    check_ids(tokens, v, "decode");
    for (size_t i = 0; i < states.size(); ++i) {
        if (!states[i]) fail("Rwkv7Engine::decode: state {} is null", i);
        m.check_state(*states[i], i);
    }
    if (b > 1) {  // every state tensor must be its own memory
        m.seen.clear();
        for (models::Rwkv7State* s : states)
            for (size_t l = 0; l < s->wkv.size(); ++l)
                for (const Tensor* t : {&s->att_shift[l], &s->wkv[l], &s->ffn_shift[l]})
                    m.seen.push_back(t->raw_data());
        std::sort(m.seen.begin(), m.seen.end());
        if (std::adjacent_find(m.seen.begin(), m.seen.end()) != m.seen.end())
            fail("Rwkv7Engine::decode: two of the {} states share memory (pass distinct states; "
                 "Rwkv7State::clone() makes an independent copy)",
                 b);
    }
    const detail::BlasOneThread one_blas_thread;
    m.ensure_rows(b);
    m.embed(tokens);
    m.run_blocks(b, false, states);
    m.logits_of_row(0, logits.data(), v, b);
}

}  // namespace goose::infer
