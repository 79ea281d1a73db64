// RWKV-7 state files: round trip, continuing from a loaded state, clear errors for files of
// another model and for corrupt files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "goose/autograd/tape.h"
#include "goose/io/atomic_file.h"
#include "goose/models/rwkv7_state_io.h"

namespace goose::models {
namespace {

std::string tmp(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("goose_state_" + name)).string();
}

TEST(Rwkv7StateIo, RoundTripAndContinue) {
    const auto cfg = Rwkv7Config::with_defaults(40, 2, 32, 16);
    Rwkv7 model(cfg);
    Rng rng(3);
    model.init_official(rng);
    Rwkv7State s = model.zero_state(2);
    const Tensor prompt = Tensor::from(Shape{2, 3}, {1, 2, 3, 4, 5, 6}, DType::i64);
    {
        ag::NoGradGuard ng;
        model.forward(prompt, &s);
    }
    const std::string path = tmp("rt.bin");
    save_rwkv7_state(path, s, cfg);
    Rwkv7State loaded = load_rwkv7_state(path, cfg);
    for (size_t l = 0; l < s.wkv.size(); ++l) {
        EXPECT_EQ(loaded.wkv[l].to_vector(), s.wkv[l].to_vector());
        EXPECT_EQ(loaded.att_shift[l].to_vector(), s.att_shift[l].to_vector());
        EXPECT_EQ(loaded.ffn_shift[l].to_vector(), s.ffn_shift[l].to_vector());
    }
    const Tensor next = Tensor::from(Shape{2}, {7, 8}, DType::i64);
    Rwkv7State a = s.clone();
    EXPECT_EQ(model.step(next, a).to_vector(), model.step(next, loaded).to_vector());
    std::filesystem::remove(path);
}

TEST(Rwkv7StateIo, ErrorsNameTheProblem) {
    const auto cfg = Rwkv7Config::with_defaults(40, 2, 32, 16);
    const std::string path = tmp("err.bin");
    save_rwkv7_state(path, Rwkv7State::zeros(cfg, 1), cfg);
    auto expect_error = [&](const Rwkv7Config& c, const std::string& part) {
        try {
            load_rwkv7_state(path, c);
            FAIL() << "no error";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
        }
    };
    expect_error(Rwkv7Config::with_defaults(40, 3, 32, 16), "layers (L) is 2 in the file and 3");
    expect_error(Rwkv7Config::with_defaults(41, 2, 32, 16), "fingerprint");
    const std::string bytes = io::read_file(path);
    io::write_file_atomic(path, bytes.substr(0, bytes.size() - 5));
    expect_error(cfg, "truncated");
    io::write_file_atomic(path, "not a state file at all, just some text");
    expect_error(cfg, "not a Goose RWKV-7 state file");
    std::filesystem::remove(path);
    expect_error(cfg, "cannot read");
}

}  // namespace
}  // namespace goose::models
