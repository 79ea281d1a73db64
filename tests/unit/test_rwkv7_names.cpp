// RWKV-7 names: official <-> FLA/HF mapping, layouts (LoRA transposes, [C] vs [1,1,C]), errors.
#include <gtest/gtest.h>

#include "goose/io/rwkv7_names.h"
#include "io_test_util.h"

namespace goose {
namespace {

using iotest::expect_error;
using iotest::expect_same;
using iotest::sample;

// A tiny official RWKV-7 state dict: L = 2, C = 8, H = 2 (N = 4), V = 11, LoRA ranks 3/5/2/6.
io::StateDict tiny_official(bool with_layer0_v) {
    const int64_t C = 8, V = 11;
    io::StateDict sd;
    auto add = [&](const std::string& k, const Shape& s) {
        sd[k] = sample(s, DType::bf16, std::hash<std::string>{}(k));
    };
    add("emb.weight", {V, C});
    add("blocks.0.ln0.weight", {C});
    add("blocks.0.ln0.bias", {C});
    for (int l = 0; l < 2; ++l) {
        const std::string b = "blocks." + std::to_string(l) + ".";
        for (const char* n : {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "att.ln_x.weight",
                              "att.ln_x.bias"})
            add(b + n, {C});
        for (const char* n : {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g",
                              "att.w0", "att.a0", "att.k_k", "att.k_a", "ffn.x_k"})
            add(b + n, {1, 1, C});
        add(b + "att.w1", {C, 3});
        add(b + "att.w2", {3, C});
        add(b + "att.a1", {C, 5});
        add(b + "att.a2", {5, C});
        if (l > 0 || with_layer0_v) {
            add(b + "att.v0", {1, 1, C});
            add(b + "att.v1", {C, 2});
            add(b + "att.v2", {2, C});
        }
        add(b + "att.g1", {C, 6});
        add(b + "att.g2", {6, C});
        add(b + "att.r_k", {2, 4});
        for (const char* n : {"att.receptance.weight", "att.key.weight", "att.value.weight",
                              "att.output.weight"})
            add(b + n, {C, C});
        add(b + "ffn.key.weight", {4 * C, C});
        add(b + "ffn.value.weight", {C, 4 * C});
    }
    add("ln_out.weight", {C});
    add("ln_out.bias", {C});
    add("head.weight", {V, C});
    return sd;
}

TEST(Rwkv7Names, OfficialToHfAndBack) {
    const io::StateDict off = tiny_official(true);
    EXPECT_FALSE(io::is_hf_rwkv7(off));
    const io::StateDict hf = io::rwkv7_to_hf(off);
    EXPECT_TRUE(io::is_hf_rwkv7(hf));
    EXPECT_EQ(hf.size(), off.size() - 3);  // blocks.0.att.v0/v1/v2 dropped
    EXPECT_FALSE(hf.count("model.layers.0.attn.v_lora.lora.2.bias"));
    EXPECT_EQ(hf.at("model.embeddings.weight").shape(), (Shape{11, 8}));
    EXPECT_EQ(hf.at("lm_head.weight").shape(), (Shape{11, 8}));
    EXPECT_EQ(hf.at("model.norm.bias").shape(), (Shape{8}));
    EXPECT_EQ(hf.at("model.layers.0.pre_norm.weight").shape(), (Shape{8}));
    EXPECT_EQ(hf.at("model.layers.1.attn.x_r").shape(), (Shape{1, 1, 8}));
    EXPECT_EQ(hf.at("model.layers.1.attn.k_k").shape(), (Shape{8}));
    EXPECT_EQ(hf.at("model.layers.1.ffn.x_k").shape(), (Shape{8}));
    EXPECT_EQ(hf.at("model.layers.1.attn.w_lora.lora.2.bias").shape(), (Shape{8}));
    EXPECT_EQ(hf.at("model.layers.1.attn.g_norm.weight").shape(), (Shape{8}));
    EXPECT_EQ(hf.at("model.layers.1.attn.r_proj.weight").shape(), (Shape{8, 8}));
    // LoRA: official [in, out] -> Linear weight [out, in].
    const Tensor& w1 = off.at("blocks.1.att.w1");
    const Tensor& hw1 = hf.at("model.layers.1.attn.w_lora.lora.0.weight");
    ASSERT_EQ(hw1.shape(), (Shape{3, 8}));
    for (int64_t i = 0; i < 8; ++i)
        for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(hw1.get({j, i}), w1.get({i, j}));
    EXPECT_EQ(hf.at("model.layers.1.attn.v_lora.lora.2.weight").shape(), (Shape{8, 2}));
    EXPECT_EQ(hf.at("model.layers.0.attn.g_lora.lora.0.weight").shape(), (Shape{6, 8}));

    const io::StateDict back = io::rwkv7_from_hf(hf);
    const io::StateDict want = tiny_official(false);
    ASSERT_EQ(back.size(), want.size());
    for (const auto& [k, t] : want) {
        ASSERT_TRUE(back.count(k)) << k;
        expect_same(back.at(k), t, k);
    }
}

TEST(Rwkv7Names, AcceptsBareModelNamesAndBothVectorLayouts) {
    io::StateDict hf = io::rwkv7_to_hf(tiny_official(false));
    io::StateDict bare;
    for (auto& [k, t] : hf) {
        std::string key = k.starts_with("model.") ? k.substr(6) : k;
        bare[key] = t;
    }
    bare["layers.1.attn.x_r"] = bare["layers.1.attn.x_r"].reshape(Shape{8});  // [C] also fine
    bare["layers.1.attn.k_k"] = bare["layers.1.attn.k_k"].reshape(Shape{1, 1, 8});
    EXPECT_TRUE(io::is_hf_rwkv7(bare));
    const io::StateDict off = io::rwkv7_from_hf(bare);
    EXPECT_EQ(off.at("blocks.1.att.x_r").shape(), (Shape{1, 1, 8}));
    EXPECT_EQ(off.at("blocks.1.att.k_k").shape(), (Shape{1, 1, 8}));
    EXPECT_EQ(off.at("emb.weight").shape(), (Shape{11, 8}));
}

TEST(Rwkv7Names, UnknownKeysAndBadShapesAreErrors) {
    io::StateDict hf = io::rwkv7_to_hf(tiny_official(false));
    hf["model.layers.0.attn.mystery"] = Tensor::zeros(Shape{2});
    hf["model.foo"] = Tensor::zeros(Shape{2});
    expect_error([&] { io::rwkv7_from_hf(hf); },
                 {"2 unknown", "model.layers.0.attn.mystery", "model.foo"});
    io::StateDict off = tiny_official(false);
    off["blocks.x.att.w0"] = Tensor::zeros(Shape{2});
    expect_error([&] { io::rwkv7_to_hf(off); }, {"unknown", "blocks.x.att.w0"});
    io::StateDict bad_shape{{"model.layers.0.attn.w_lora.lora.0.weight", Tensor::zeros(Shape{4})}};
    expect_error([&] { io::rwkv7_from_hf(bad_shape); },
                 {"model.layers.0.attn.w_lora.lora.0.weight", "[4]", "matrix"});
    io::StateDict bad_vec{{"blocks.0.att.k_k", Tensor::zeros(Shape{2, 4})}};
    expect_error([&] { io::rwkv7_to_hf(bad_vec); }, {"blocks.0.att.k_k", "[2, 4]"});
}

}  // namespace
}  // namespace goose
