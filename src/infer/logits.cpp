// goose logits / goose info.
#include "goose/infer/logits.h"

#include <cstdio>
#include <sstream>

#include "goose/autograd/tape.h"
#include "goose/io/npy.h"
#include "goose/models/rwkv7_checkpoint.h"

namespace goose::infer {

std::vector<int64_t> parse_token_ids(const std::string& text, int64_t vocab) {
    std::string s = text;
    for (char& c : s)
        if (c == ',') c = ' ';
    std::istringstream in(s);
    std::vector<int64_t> ids;
    std::string word;
    while (in >> word) {
        size_t used = 0;
        long long v = 0;
        try {
            v = std::stoll(word, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != word.size()) fail("token '{}' is not an integer id", word);
        if (v < 0 || v >= vocab) fail("token id {} is out of range [0, {})", v, vocab);
        ids.push_back(v);
    }
    if (ids.empty()) fail("no token ids given (example: --tokens \"1 2 3\")");
    return ids;
}

Tensor sequence_logits(const models::Rwkv7& model, const std::vector<int64_t>& tokens, bool rnn) {
    ag::NoGradGuard no_grad;
    const int64_t t = static_cast<int64_t>(tokens.size()), v = model.config().vocab;
    Tensor out = Tensor::empty(Shape{t, v}, DType::f32);
    if (!rnn) {
        Tensor ids = Tensor::empty(Shape{1, t}, DType::i64);
        std::copy(tokens.begin(), tokens.end(), ids.data<int64_t>());
        out.copy_(model.forward(ids).value().view(Shape{t, v}));
        return out;
    }
    models::Rwkv7State s = model.zero_state(1);
    for (int64_t i = 0; i < t; ++i) {
        const Tensor id = Tensor::from(Shape{1}, {static_cast<double>(tokens[i])}, DType::i64);
        out.select(0, i).copy_(model.step(id, s).view(Shape{v}));
    }
    return out;
}

void run_logits(const LogitsConfig& cfg) {
    auto model = models::load_rwkv7(cfg.model);
    const auto tokens = parse_token_ids(cfg.tokens, model->config().vocab);
    const Tensor logits = sequence_logits(*model, tokens, cfg.rnn);
    io::save_npy(cfg.out, logits);
    std::printf("wrote %s: float32 [%lld, %lld] logits (%s mode)\n", cfg.out.c_str(),
                (long long)logits.size(0), (long long)logits.size(1), cfg.rnn ? "RNN" : "parallel");
}

void run_info(const std::string& path) {
    models::CheckpointInfo info{};
    auto model = models::load_rwkv7(path, DType::f32, &info);
    const auto& c = model->config();
    std::printf("%s\n", path.c_str());
    std::printf("  format        %s%s\n", info.format == models::CheckpointFormat::pth ? "pth" : "safetensors",
                info.hf_names ? " (Hugging Face / FLA names)" : " (official names)");
    std::printf("  architecture  RWKV-7 x070, L%lld C%lld, %lld heads of %lld, vocab %lld, FFN %lld\n",
                (long long)c.n_layer, (long long)c.n_embd, (long long)c.n_head(),
                (long long)c.head_size, (long long)c.vocab, (long long)c.dim_ffn);
    std::printf("  LoRA ranks    decay %lld, a %lld, value %lld, gate %lld\n", (long long)c.d_decay,
                (long long)c.d_aaa, (long long)c.d_mv, (long long)c.d_gate);
    std::printf("  parameters    %lld (%lld tensors in the file)\n", (long long)model->num_parameters(),
                (long long)info.tensors);
    std::printf("  dtype         %s\n", info.dtypes.c_str());
}

}  // namespace goose::infer
