// Hardware limits measured in the same run as a benchmark: FMA peak (f32 GFLOP/s) on one core
// and on all threads, and memory copy bandwidth.
#pragma once

namespace goose::bench {

double peak_gflops_f32(int threads);  // measured, not looked up
double copy_bandwidth_gbs(int threads);  // read + write bytes per second of a large memcpy

}  // namespace goose::bench
