// goose bench decode: the inference engine's decode and prefill speed per weight format, the
// effective bandwidth against the measured copy bandwidth, and each format's logits against f32.
#include "goose/bench/decode_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include "goose/bench/peak.h"
#include "goose/bench/timer.h"
#include "goose/core/threads.h"
#include "goose/infer/engine.h"
#include "goose/models/rwkv7_checkpoint.h"

namespace goose::bench {

namespace {

using infer::EngineOptions;
using infer::Rwkv7Engine;
using infer::WeightFormat;
using models::Rwkv7State;

// The random model of the benchmark: the deterministic vectors of the constructor (spec §9),
// every matrix uniform with variance 1/fan_in (emb: variance 1), so that activations and
// logits have a realistic scale for the accuracy comparison; speed does not depend on the
// values (uniform: much faster to draw than normal for 191M values).
std::unique_ptr<models::Rwkv7> random_model(const models::Rwkv7Config& mc) {
    auto m = std::make_unique<models::Rwkv7>(mc);
    Rng rng(0, "bench decode");
    for (auto& [name, p] : m->named_parameters()) {
        const bool linear = p.ndim() == 2 && name.ends_with(".weight");  // (out, in)
        const bool lora = p.ndim() == 2 && name.find(".att.") != std::string::npos &&
                          name.size() >= 2 && name[name.size() - 1] >= '1' &&
                          name[name.size() - 1] <= '2';  // w1 ... g2: (in, out)
        if (!linear && !lora) continue;
        const int64_t fan_in = linear ? p.size(1) : p.size(0);
        const double a = std::sqrt(3.0 / (name == "emb.weight" ? 1.0 : static_cast<double>(fan_in)));
        p.value_mut().copy_(Tensor::uniform(p.shape(), rng, DType::f32, -a, a));
    }
    return m;
}

struct FormatResult {
    std::string name;
    double mb_per_token = 0, decode_s = 0;
    std::vector<double> batch_tps;    // per cfg.batches
    std::vector<double> prefill_tps;  // per cfg.prompt_lengths
    double max_dlogit = 0, max_logit = 0, top1 = 0;
    bool accuracy = false;
};

std::vector<int32_t> fixed_tokens(int64_t n, int64_t vocab, uint64_t seed) {
    Rng rng(seed, "bench decode prompt");
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = static_cast<int32_t>(rng.randint(0, vocab));
    return t;
}

// Token-by-token logits (T, V) of the fixed prompt.
std::vector<float> prompt_logits(Rwkv7Engine& e, const std::vector<int32_t>& prompt) {
    const int64_t v = e.config().vocab;
    std::vector<float> out(prompt.size() * static_cast<size_t>(v));
    Rwkv7State s = e.new_state();
    Rwkv7State* ps[1] = {&s};
    for (size_t t = 0; t < prompt.size(); ++t)
        e.decode(std::span(&prompt[t], 1), ps, std::span(out).subspan(t * v, v));
    return out;
}

void compare(const std::vector<float>& got, const std::vector<float>& want, int64_t v,
             FormatResult& r) {
    const size_t steps = want.size() / static_cast<size_t>(v);
    int same = 0;
    for (size_t t = 0; t < steps; ++t) {
        const float* a = want.data() + t * v;
        const float* b = got.data() + t * v;
        same += std::max_element(a, a + v) - a == std::max_element(b, b + v) - b;
        for (int64_t i = 0; i < v; ++i) {
            r.max_dlogit = std::max(r.max_dlogit, static_cast<double>(std::fabs(a[i] - b[i])));
            r.max_logit = std::max(r.max_logit, static_cast<double>(std::fabs(a[i])));
        }
    }
    r.top1 = static_cast<double>(same) / static_cast<double>(steps);
    r.accuracy = true;
}

std::string join(const std::vector<int64_t>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s;
}

void flush_line(const std::string& s) {
    std::printf("%s\n", s.c_str());
    std::fflush(stdout);
}

}  // namespace

void run_decode_bench(const DecodeBenchConfig& cfg) {
    std::vector<WeightFormat> formats;
    for (const std::string& f : cfg.formats) formats.push_back(infer::parse_weight_format(f));
    if (formats.empty()) fail("bench decode: --formats is empty (valid: f32, bf16, int8)");
    for (int64_t t : cfg.prompt_lengths)
        if (t < 1) fail("bench decode: prompt length {} must be >= 1", t);
    for (int64_t b : cfg.batches)
        if (b < 1) fail("bench decode: batch {} must be >= 1", b);
    if (cfg.tokens < 1) fail("bench decode: --tokens {} must be >= 1", cfg.tokens);
    if (cfg.accuracy_tokens < 1)
        fail("bench decode: --accuracy-tokens {} must be >= 1", cfg.accuracy_tokens);
    std::optional<ThreadScope> threads;
    if (cfg.threads > 0) threads.emplace(cfg.threads);

    std::printf("goose bench decode: %s\n", machine_summary().c_str());
    std::unique_ptr<models::Rwkv7> model;
    if (!cfg.model.empty()) {
        flush_line("loading " + cfg.model + "...");
        model = models::load_rwkv7(cfg.model, DType::f32);
    } else {
        const auto mc = models::Rwkv7Config::with_defaults(cfg.vocab, cfg.layers, cfg.dim, cfg.head);
        mc.validate();
        flush_line("building a random model...");
        model = random_model(mc);
    }
    const models::Rwkv7Config& mc = model->config();
    std::printf("RWKV-7 L%lld C%lld head %lld V%lld (%lld parameters), %s\n",
                (long long)mc.n_layer, (long long)mc.n_embd, (long long)mc.head_size,
                (long long)mc.vocab, (long long)mc.num_parameters(),
                cfg.model.empty() ? "random weights" : cfg.model.c_str());
    flush_line("measuring copy bandwidth...");
    const double copy_first = copy_bandwidth_gbs(num_threads());
    std::printf("copy bandwidth (read + write, %d threads): %.1f GB/s\n", num_threads(), copy_first);

    const int64_t v = mc.vocab;
    const int64_t longest = *std::max_element(cfg.prompt_lengths.begin(), cfg.prompt_lengths.end());
    const auto prompt = fixed_tokens(std::max<int64_t>(longest, 16), v, 1);
    const auto acc_prompt = fixed_tokens(cfg.accuracy_tokens, v, 2);
    std::vector<float> ref_logits;  // f32, for the accuracy comparison
    const bool need_ref =
        std::any_of(formats.begin(), formats.end(), [](WeightFormat f) { return f != WeightFormat::f32; });
    if (need_ref && std::find(formats.begin(), formats.end(), WeightFormat::f32) == formats.end()) {
        flush_line("f32 reference logits of the fixed prompt...");
        Rwkv7Engine ref(*model, {});
        ref_logits = prompt_logits(ref, acc_prompt);
    }
    std::stable_partition(formats.begin(), formats.end(),
                          [](WeightFormat f) { return f == WeightFormat::f32; });

    std::vector<FormatResult> results;
    for (WeightFormat f : formats) {
        EngineOptions opt{f, f, f};
        if (!cfg.head_format.empty()) opt.head = infer::parse_weight_format(cfg.head_format);
        if (!cfg.emb_format.empty()) opt.emb = infer::parse_weight_format(cfg.emb_format);
        FormatResult r;
        r.name = fmt::format("{}{}", infer::weight_format_name(f),
                             opt.head != f ? fmt::format(" (head {})", infer::weight_format_name(opt.head)) : "");
        flush_line(fmt::format("[{}] converting the weights...", r.name));
        Rwkv7Engine e(*model, opt);
        r.mb_per_token = static_cast<double>(e.weight_bytes()) / 1e6;
        std::vector<float> logits(static_cast<size_t>(v));

        // decode, batch 1 (after a short prompt, so the state is not zero)
        for (int64_t b : cfg.batches) {
            std::vector<Rwkv7State> states;
            std::vector<Rwkv7State*> ptrs;
            for (int64_t i = 0; i < b; ++i) {
                states.push_back(e.new_state());
                e.prefill(std::span(prompt).first(16), states.back(), logits);
            }
            for (auto& s : states) ptrs.push_back(&s);
            std::vector<float> out(static_cast<size_t>(b * v));
            std::vector<int32_t> toks(static_cast<size_t>(b));
            int step = 0;
            const Timing t = time_fn(
                [&] {
                    for (int64_t i = 0; i < b; ++i)
                        toks[static_cast<size_t>(i)] = prompt[static_cast<size_t>((step + i) % 16)];
                    ++step;
                    e.decode(toks, ptrs, out);
                },
                2, cfg.tokens, 0.0, cfg.tokens);
            const double tps = static_cast<double>(b) / t.median_s;
            r.batch_tps.push_back(tps);
            if (b == 1) r.decode_s = t.median_s;
            flush_line(fmt::format("[{}] decode batch {}: {:.2f} ms/step (min {:.2f}), {:.1f} tokens/s",
                                   r.name, b, t.median_s * 1e3, t.min_s * 1e3, tps));
        }
        if (r.decode_s == 0) {  // batch 1 not requested: still needed for the bandwidth
            Rwkv7State s = e.new_state();
            Rwkv7State* ps[1] = {&s};
            const Timing t = time_fn([&] { e.decode(std::span(prompt).first(1), ps, logits); }, 2,
                                     cfg.tokens, 0.0, cfg.tokens);
            r.decode_s = t.median_s;
        }
        // prefill from a zero state
        for (int64_t len : cfg.prompt_lengths) {
            const auto toks = std::span(prompt).first(static_cast<size_t>(len));
            const int reps = len >= 256 ? 3 : 5;
            const Timing t = time_fn(
                [&] {
                    Rwkv7State s = e.new_state();
                    e.prefill(toks, s, logits);
                },
                1, reps, 0.0, reps);
            const double tps = static_cast<double>(len) / t.median_s;
            r.prefill_tps.push_back(tps);
            flush_line(fmt::format("[{}] prefill {} tokens: {:.1f} ms (min {:.1f}), {:.1f} tokens/s",
                                   r.name, len, t.median_s * 1e3, t.min_s * 1e3, tps));
        }
        // logits of the fixed prompt against f32
        const auto got = prompt_logits(e, acc_prompt);
        if (f == WeightFormat::f32 && opt.head == WeightFormat::f32 && opt.emb == WeightFormat::f32 &&
            ref_logits.empty())
            ref_logits = got;
        if (!ref_logits.empty() && !(f == WeightFormat::f32 && opt.head == WeightFormat::f32 &&
                                     opt.emb == WeightFormat::f32))
            compare(got, ref_logits, v, r);
        results.push_back(std::move(r));
    }

    // the copy bandwidth again (other processes may have disturbed one of the two): the larger
    const double copy_last = copy_bandwidth_gbs(num_threads());
    const double copy_gbs = std::max(copy_first, copy_last);
    std::printf("copy bandwidth again: %.1f GB/s; the ratios use %.1f GB/s\n", copy_last, copy_gbs);

    // the summary
    std::printf("\ndecode, batch 1 (effective bandwidth = weight bytes per token / time per token)\n");
    std::printf("%-18s %9s %9s %10s %9s %10s %7s\n", "format", "MB/token", "ms/token", "tokens/s",
                "GB/s", "copy GB/s", "ratio");
    for (const auto& r : results) {
        const double gbs = r.mb_per_token / 1e3 / r.decode_s;
        std::printf("%-18s %9.1f %9.2f %10.1f %9.1f %10.1f %6.0f%%\n", r.name.c_str(),
                    r.mb_per_token, r.decode_s * 1e3, 1.0 / r.decode_s, gbs, copy_gbs,
                    100 * gbs / copy_gbs);
    }
    std::printf("\nbatched decode, tokens/s summed over the batch (batch %s)\n",
                join(cfg.batches).c_str());
    std::printf("%-18s", "format");
    for (int64_t b : cfg.batches) std::printf(" %10s", fmt::format("B={}", b).c_str());
    std::printf("\n");
    for (const auto& r : results) {
        std::printf("%-18s", r.name.c_str());
        for (double tps : r.batch_tps) std::printf(" %10.1f", tps);
        std::printf("\n");
    }
    std::printf("\nprefill tokens/s by prompt length (x: prefill / batch-1 decode tokens/s)\n");
    std::printf("%-18s", "format");
    for (int64_t t : cfg.prompt_lengths) std::printf(" %16s", fmt::format("T={}", t).c_str());
    std::printf("\n");
    for (const auto& r : results) {
        std::printf("%-18s", r.name.c_str());
        for (double tps : r.prefill_tps)
            std::printf(" %16s", fmt::format("{:.1f} ({:.1f}x)", tps, tps * r.decode_s).c_str());
        std::printf("\n");
    }
    if (std::any_of(results.begin(), results.end(), [](const auto& r) { return r.accuracy; })) {
        std::printf("\nagainst f32 on a fixed prompt of %d tokens, decoded token by token\n",
                    cfg.accuracy_tokens);
        std::printf("%-18s %12s %12s %10s\n", "format", "max|dlogit|", "max|logit|", "top-1");
        for (const auto& r : results)
            if (r.accuracy)
                std::printf("%-18s %12.4f %12.3f %9.1f%%\n", r.name.c_str(), r.max_dlogit,
                            r.max_logit, 100 * r.top1);
    }
}

}  // namespace goose::bench
