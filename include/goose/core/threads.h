// Thread control: one knob for OpenMP and OpenBLAS. Defaults to GOOSE_THREADS, else
// OMP_NUM_THREADS, else all cores.
#pragma once

namespace goose {

int num_threads();
void set_num_threads(int n);  // n >= 1; also sets OpenBLAS's thread count
int num_cores();              // hardware threads of this machine

// Sets the thread count for a scope and restores the previous one.
class ThreadScope {
public:
    explicit ThreadScope(int n) : prev_(num_threads()) { set_num_threads(n); }
    ~ThreadScope() { set_num_threads(prev_); }
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

private:
    int prev_;
};

}  // namespace goose
