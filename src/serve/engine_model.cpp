// The RWKV-7 engine behind the scheduler's BatchModel interface: one f32 state per slot.
#include "goose/infer/engine.h"
#include "serve/scheduler.h"

namespace goose::serve {

namespace {

class EngineModel : public BatchModel {
public:
    EngineModel(infer::Rwkv7Engine& engine, int slots) : engine_(engine) {
        for (int i = 0; i < slots; ++i) states_.push_back(engine_.new_state());
    }
    int64_t vocab() const override { return engine_.config().vocab; }
    int slots() const override { return static_cast<int>(states_.size()); }
    void reset(int slot) override { states_[static_cast<size_t>(slot)] = engine_.new_state(); }
    void prefill(int slot, std::span<const int32_t> tokens, std::span<float> logits) override {
        engine_.prefill(tokens, states_[static_cast<size_t>(slot)], logits);
    }
    void decode(std::span<const int> slots, std::span<const int32_t> tokens,
                std::span<float> logits) override {
        ptrs_.clear();
        for (int s : slots) ptrs_.push_back(&states_[static_cast<size_t>(s)]);
        engine_.decode(tokens, ptrs_, logits);
    }

private:
    infer::Rwkv7Engine& engine_;
    std::vector<models::Rwkv7State> states_;
    std::vector<models::Rwkv7State*> ptrs_;
};

}  // namespace

std::unique_ptr<BatchModel> make_engine_model(infer::Rwkv7Engine& engine, int slots) {
    return std::make_unique<EngineModel>(engine, slots);
}

}  // namespace goose::serve
