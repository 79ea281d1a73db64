// RWKV-7 name and layout mapping between official checkpoints and FLA/HF ones.
#include "goose/io/rwkv7_names.h"

#include <fmt/ranges.h>

#include <optional>
#include <string_view>
#include <vector>

namespace goose::io {

namespace {

// How a tensor changes between the two layouts.
enum class Layout {
    same,       // identical
    vec,        // official [1, 1, C], HF [C]
    vec3,       // [1, 1, C] on both sides ([C] accepted from HF)
    transpose,  // LoRA matrix: official [in, out], HF Linear weight [out, in]
};

struct Rule {
    std::string_view official, hf;
    Layout layout;
};

// Per layer: official "blocks.<l>.<official>" <-> HF "model.layers.<l>.<hf>".
constexpr Rule kLayerRules[] = {
    {"ln0.weight", "pre_norm.weight", Layout::same},
    {"ln0.bias", "pre_norm.bias", Layout::same},
    {"ln1.weight", "attn_norm.weight", Layout::same},
    {"ln1.bias", "attn_norm.bias", Layout::same},
    {"ln2.weight", "ffn_norm.weight", Layout::same},
    {"ln2.bias", "ffn_norm.bias", Layout::same},
    {"att.x_r", "attn.x_r", Layout::vec3},
    {"att.x_w", "attn.x_w", Layout::vec3},
    {"att.x_k", "attn.x_k", Layout::vec3},
    {"att.x_v", "attn.x_v", Layout::vec3},
    {"att.x_a", "attn.x_a", Layout::vec3},
    {"att.x_g", "attn.x_g", Layout::vec3},
    {"att.w0", "attn.w_lora.lora.2.bias", Layout::vec},
    {"att.w1", "attn.w_lora.lora.0.weight", Layout::transpose},
    {"att.w2", "attn.w_lora.lora.2.weight", Layout::transpose},
    {"att.a0", "attn.a_lora.lora.2.bias", Layout::vec},
    {"att.a1", "attn.a_lora.lora.0.weight", Layout::transpose},
    {"att.a2", "attn.a_lora.lora.2.weight", Layout::transpose},
    {"att.v0", "attn.v_lora.lora.2.bias", Layout::vec},
    {"att.v1", "attn.v_lora.lora.0.weight", Layout::transpose},
    {"att.v2", "attn.v_lora.lora.2.weight", Layout::transpose},
    {"att.g1", "attn.g_lora.lora.0.weight", Layout::transpose},
    {"att.g2", "attn.g_lora.lora.2.weight", Layout::transpose},
    {"att.k_k", "attn.k_k", Layout::vec},
    {"att.k_a", "attn.k_a", Layout::vec},
    {"att.r_k", "attn.r_k", Layout::same},
    {"att.receptance.weight", "attn.r_proj.weight", Layout::same},
    {"att.key.weight", "attn.k_proj.weight", Layout::same},
    {"att.value.weight", "attn.v_proj.weight", Layout::same},
    {"att.output.weight", "attn.o_proj.weight", Layout::same},
    {"att.ln_x.weight", "attn.g_norm.weight", Layout::same},
    {"att.ln_x.bias", "attn.g_norm.bias", Layout::same},
    {"ffn.x_k", "ffn.x_k", Layout::vec},
    {"ffn.key.weight", "ffn.key.weight", Layout::same},
    {"ffn.value.weight", "ffn.value.weight", Layout::same},
};

constexpr Rule kTopRules[] = {
    {"emb.weight", "model.embeddings.weight", Layout::same},
    {"ln_out.weight", "model.norm.weight", Layout::same},
    {"ln_out.bias", "model.norm.bias", Layout::same},
    {"head.weight", "lm_head.weight", Layout::same},
};

// Splits "<prefix><digits>.<rest>" into (layer, rest).
std::optional<std::pair<std::string, std::string_view>> split_layer(std::string_view key,
                                                                    std::string_view prefix) {
    if (!key.starts_with(prefix)) return std::nullopt;
    key.remove_prefix(prefix.size());
    size_t n = 0;
    while (n < key.size() && key[n] >= '0' && key[n] <= '9') ++n;
    if (n == 0 || n >= key.size() || key[n] != '.') return std::nullopt;
    return std::make_pair(std::string(key.substr(0, n)), key.substr(n + 1));
}

Tensor convert(const Tensor& t, Layout layout, bool to_official, const std::string& key) {
    auto bad = [&](const char* want) {
        fail("rwkv7 names: tensor '{}' has shape {} but {} is expected", key, t.shape().str(),
             want);
    };
    switch (layout) {
        case Layout::same: return t;
        case Layout::transpose:
            if (t.ndim() != 2) bad("a matrix");
            return t.transpose(0, 1).contiguous();
        case Layout::vec:
        case Layout::vec3: {
            const bool v3 = t.ndim() == 3 && t.size(0) == 1 && t.size(1) == 1;
            if (t.ndim() != 1 && !v3) bad("[C] or [1, 1, C]");
            const int64_t c = t.size(-1);
            const bool want3 = to_official || layout == Layout::vec3;
            return want3 ? t.reshape(Shape{1, 1, c}) : t.reshape(Shape{c});
        }
    }
    return t;
}

[[noreturn]] void unknown(const std::vector<std::string>& keys, const char* what) {
    const size_t show = std::min<size_t>(keys.size(), 8);
    fail("rwkv7 names: {} unknown {} key(s): {}{}", keys.size(), what,
         fmt::join(keys.begin(), keys.begin() + long(show), ", "),
         keys.size() > show ? ", ..." : "");
}

}  // namespace

StateDict rwkv7_from_hf(const StateDict& hf) {
    StateDict out;
    std::vector<std::string> bad;
    for (const auto& [key0, t] : hf) {
        // A bare RWKV7Model has no "model." prefix.
        std::string key = key0;
        if (key.starts_with("layers.") || key.starts_with("embeddings.") ||
            key.starts_with("norm."))
            key = "model." + key;
        const Rule* rule = nullptr;
        std::string name;
        for (const auto& r : kTopRules)
            if (key == r.hf) {
                rule = &r;
                name = std::string(r.official);
            }
        if (auto s = split_layer(key, "model.layers.")) {
            for (const auto& r : kLayerRules)
                if (s->second == r.hf) {
                    rule = &r;
                    name = "blocks." + s->first + "." + std::string(r.official);
                }
        }
        if (!rule) {
            bad.push_back(key0);
            continue;
        }
        out[name] = convert(t, rule->layout, true, key0);
    }
    if (!bad.empty()) unknown(bad, "FLA/HF RWKV-7");
    return out;
}

StateDict rwkv7_to_hf(const StateDict& official) {
    StateDict out;
    std::vector<std::string> bad;
    for (const auto& [key, t] : official) {
        const Rule* rule = nullptr;
        std::string name;
        for (const auto& r : kTopRules)
            if (key == r.official) {
                rule = &r;
                name = std::string(r.hf);
            }
        if (auto s = split_layer(key, "blocks.")) {
            if (s->first == "0" && (s->second == "att.v0" || s->second == "att.v1" ||
                                    s->second == "att.v2"))
                continue;  // unused in layer 0; FLA has no v_lora there
            for (const auto& r : kLayerRules)
                if (s->second == r.official) {
                    rule = &r;
                    name = "model.layers." + s->first + "." + std::string(r.hf);
                }
        }
        if (!rule) {
            bad.push_back(key);
            continue;
        }
        out[name] = convert(t, rule->layout, false, key);
    }
    if (!bad.empty()) unknown(bad, "official RWKV-7");
    return out;
}

bool is_hf_rwkv7(const StateDict& sd) {
    for (const auto& [key, t] : sd) {
        if (key == "model.embeddings.weight" || key == "lm_head.weight" ||
            key.starts_with("model.layers.") || key == "embeddings.weight")
            return true;
        if (split_layer(key, "layers.")) return true;
    }
    return false;
}

}  // namespace goose::io
