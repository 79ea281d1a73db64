// Format detection and name conversion for RWKV-7 checkpoints.
#include "goose/models/rwkv7_checkpoint.h"

#include <fstream>
#include <set>

#include "goose/io/pth.h"
#include "goose/io/rwkv7_names.h"
#include "goose/io/safetensors.h"

namespace goose::models {

namespace {
CheckpointFormat detect(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot open checkpoint '{}'", path);
    char head[9] = {};
    f.read(head, 9);
    if (f.gcount() >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
        return CheckpointFormat::pth;
    if (f.gcount() == 9 && head[8] == '{') return CheckpointFormat::safetensors;
    fail("'{}' is neither a PyTorch .pth (zip) nor a safetensors file", path);
}
}  // namespace

nn::StateDict load_rwkv7_state_dict(const std::string& path, CheckpointInfo* info) {
    const CheckpointFormat fmt = detect(path);
    nn::StateDict sd = fmt == CheckpointFormat::pth ? io::load_pth(path) : io::load_safetensors(path);
    const bool hf = io::is_hf_rwkv7(sd);
    if (info) {
        std::set<std::string> dts;
        for (auto& [n, t] : sd) dts.insert(std::string(dtype_name(t.dtype())));
        std::string s;
        for (auto& d : dts) s += (s.empty() ? "" : ", ") + d;
        *info = {fmt, hf, s, static_cast<int64_t>(sd.size())};
    }
    return hf ? io::rwkv7_from_hf(sd) : sd;
}

std::unique_ptr<Rwkv7> load_rwkv7(const std::string& path, DType dtype, CheckpointInfo* info) {
    const nn::StateDict sd = load_rwkv7_state_dict(path, info);
    try {
        return Rwkv7::from_state_dict(sd, dtype);
    } catch (const Error& e) {
        fail("'{}' is not a usable RWKV-7 checkpoint: {}", path, e.what());
    }
}

void save_rwkv7(const Rwkv7& model, const std::string& path, DType file_dtype, bool hf_names) {
    nn::StateDict sd;
    for (auto& [n, v] : model.named_parameters()) sd.emplace(n, v.value().to(file_dtype));
    const bool st = path.size() >= 12 && path.substr(path.size() - 12) == ".safetensors";
    if (st) {
        io::save_safetensors(path, hf_names ? io::rwkv7_to_hf(sd) : sd, {{"format", "pt"}});
    } else {
        if (hf_names) fail("HF names are only written to .safetensors files");
        io::save_pth(path, sd);
    }
}

}  // namespace goose::models
