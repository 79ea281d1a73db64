// Where a tensor's storage lives: the CPU, or a CUDA device (built with GOOSE_CUDA).
#pragma once
#include <string>

namespace goose {

enum class DeviceKind : uint8_t { cpu, cuda };

struct Device {
    DeviceKind kind = DeviceKind::cpu;
    int index = 0;

    static Device cpu() { return {DeviceKind::cpu, 0}; }
    static Device cuda(int i = 0) { return {DeviceKind::cuda, i}; }
    bool is_cpu() const { return kind == DeviceKind::cpu; }
    bool is_cuda() const { return kind == DeviceKind::cuda; }
    bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
    std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

// Whether this build has the CUDA backend compiled in.
constexpr bool cuda_compiled() {
#ifdef GOOSE_CUDA
    return true;
#else
    return false;
#endif
}

}  // namespace goose
