// Saving and loading RWKV-7 states (format in rwkv7_state_io.h).
#include "goose/models/rwkv7_state_io.h"

#include <cstring>

#include "goose/io/atomic_file.h"

namespace goose::models {

namespace {
constexpr char kMagic[16] = {'G', 'O', 'O', 'S', 'E', '-', 'R', 'W',
                             'K', 'V', '7', '-', 'S', 'T', 'A', 'T'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 72;

template <class T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <class T>
T get(const std::string& in, size_t off) {
    T v;
    std::memcpy(&v, in.data() + off, sizeof(T));
    return v;
}
}  // namespace

uint64_t rwkv7_fingerprint(const Rwkv7Config& c) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t v : {c.vocab, c.n_layer, c.n_embd, c.head_size, c.d_decay, c.d_aaa, c.d_mv,
                      c.d_gate, c.dim_ffn})
        for (int b = 0; b < 8; ++b) h = (h ^ static_cast<uint8_t>(v >> (8 * b))) * 0x100000001b3ull;
    return h;
}

void save_rwkv7_state(const std::string& path, const Rwkv7State& s, const Rwkv7Config& cfg) {
    const int64_t L = cfg.n_layer, C = cfg.n_embd, H = cfg.n_head(), N = cfg.head_size;
    if (static_cast<int64_t>(s.att_shift.size()) != L || s.wkv.size() != s.att_shift.size() ||
        s.ffn_shift.size() != s.att_shift.size())
        fail("save state '{}': the state has {} layers, the model {}", path, s.att_shift.size(), L);
    const int64_t B = s.batch();
    const DType dt = s.att_shift[0].dtype();
    if (dt != DType::f32 && dt != DType::f64) fail("save state '{}': dtype must be f32 or f64", path);
    std::string out;
    out.append(kMagic, 16);
    put<uint32_t>(out, kVersion);
    put<uint32_t>(out, dt == DType::f32 ? 0 : 1);
    put<uint64_t>(out, rwkv7_fingerprint(cfg));
    for (int64_t v : {L, C, H, N, B}) put<int64_t>(out, v);
    auto append = [&](const Tensor& t, const Shape& want) {
        if (t.shape() != want || t.dtype() != dt)
            fail("save state '{}': tensor {} should be {} {}", path, t.desc(), dtype_name(dt),
                 want.str());
        const Tensor c = t.contiguous();
        out.append(static_cast<const char*>(c.raw_data()), c.nbytes());
    };
    for (int64_t l = 0; l < L; ++l) {
        append(s.att_shift[l], Shape{B, C});
        append(s.wkv[l], Shape{B, H, N, N});
        append(s.ffn_shift[l], Shape{B, C});
    }
    io::write_file_atomic(path, out);
}

Rwkv7State load_rwkv7_state(const std::string& path, const Rwkv7Config& cfg) {
    const std::string in = io::read_file(path);
    if (in.size() < kHeaderBytes || std::memcmp(in.data(), kMagic, 16) != 0)
        fail("'{}' is not a Goose RWKV-7 state file", path);
    const uint32_t version = get<uint32_t>(in, 16), code = get<uint32_t>(in, 20);
    if (version != kVersion)
        fail("state file '{}' has format version {}; this build reads version {}", path, version,
             kVersion);
    if (code > 1) fail("state file '{}' has an unknown dtype code {}", path, code);
    const DType dt = code == 0 ? DType::f32 : DType::f64;
    const int64_t want[5] = {cfg.n_layer, cfg.n_embd, cfg.n_head(), cfg.head_size, 0};
    const char* names[5] = {"layers (L)", "width (C)", "heads (H)", "head size (N)", "batch"};
    int64_t got[5];
    for (int i = 0; i < 5; ++i) got[i] = get<int64_t>(in, 32 + 8 * static_cast<size_t>(i));
    for (int i = 0; i < 4; ++i)
        if (got[i] != want[i])
            fail("state file '{}' belongs to another model: {} is {} in the file and {} in the "
                 "model", path, names[i], got[i], want[i]);
    if (get<uint64_t>(in, 24) != rwkv7_fingerprint(cfg))
        fail("state file '{}' belongs to another model (its config fingerprint differs: vocab, "
             "LoRA ranks or FFN width)", path);
    const int64_t B = got[4];
    const int64_t L = got[0], C = got[1], H = got[2], N = got[3];
    if (B < 1 || B > (int64_t(1) << 20)) fail("state file '{}': absurd batch size {}", path, B);
    const int64_t per_layer = (2 * B * C + B * H * N * N) * static_cast<int64_t>(dtype_size(dt));
    if (static_cast<int64_t>(in.size()) != static_cast<int64_t>(kHeaderBytes) + L * per_layer)
        fail("state file '{}' is truncated or corrupt: {} bytes, expected {}", path, in.size(),
             static_cast<int64_t>(kHeaderBytes) + L * per_layer);
    Rwkv7State s;
    size_t off = kHeaderBytes;
    auto take = [&](const Shape& shape) {
        Tensor t = Tensor::empty(shape, dt);
        std::memcpy(t.raw_data(), in.data() + off, t.nbytes());
        off += t.nbytes();
        return t;
    };
    for (int64_t l = 0; l < L; ++l) {
        s.att_shift.push_back(take(Shape{B, C}));
        s.wkv.push_back(take(Shape{B, H, N, N}));
        s.ffn_shift.push_back(take(Shape{B, C}));
    }
    return s;
}

}  // namespace goose::models
