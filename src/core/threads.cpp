// OpenMP / OpenBLAS thread control.
#include "goose/core/threads.h"

#include <omp.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "goose/core/error.h"

extern "C" void openblas_set_num_threads(int);

namespace goose {

namespace {
int initial_threads() {
    for (const char* var : {"GOOSE_THREADS", "OMP_NUM_THREADS"}) {
        if (const char* v = std::getenv(var)) {
            const int n = std::atoi(v);
            if (n >= 1) return n;
        }
    }
    return num_cores();
}

int& current() {
    static int n = [] {
        const int t = initial_threads();
        omp_set_num_threads(t);
        openblas_set_num_threads(t);
        return t;
    }();
    return n;
}
}  // namespace

int num_cores() {
    const unsigned n = std::thread::hardware_concurrency();
    return n ? static_cast<int>(n) : 1;
}

int num_threads() { return current(); }

void set_num_threads(int n) {
    if (n < 1) fail("thread count must be >= 1, got {}", n);
    current() = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

}  // namespace goose
