// The CUDA core: device queries, the caching allocator, host<->device and device<->device
// copies (every dtype, strided views, conversions), fills and element access.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

#include "common/expect_error.h"
#include "cuda/cuda_test_util.h"
#include "goose/core/cuda.h"
#include "goose/core/rng.h"
#include "goose/core/tensor.h"

namespace goose {
namespace {

// Values every dtype holds exactly, different per element.
Tensor sample(const Shape& shape, DType dtype, uint64_t seed) {
    Rng rng(seed, "sample");
    Tensor t = Tensor::empty(shape, DType::f64);
    for (int64_t i = 0; i < t.numel(); ++i)
        t.data<double>()[i] = dtype_is_float(dtype)
                                  ? static_cast<double>(rng.randint(-512, 512)) / 8
                                  : static_cast<double>(rng.randint(0, 250));
    return t.to(dtype);
}

// Same dtype, shape and bit patterns (both on the CPU).
void expect_identical(const Tensor& a, const Tensor& b, const std::string& what) {
    ASSERT_EQ(a.dtype(), b.dtype()) << what;
    ASSERT_EQ(a.shape(), b.shape()) << what;
    ASSERT_TRUE(a.device().is_cpu() && b.device().is_cpu()) << what;
    const Tensor pa = a.contiguous(), pb = b.contiguous();
    EXPECT_EQ(std::memcmp(pa.raw_data(), pb.raw_data(), pa.nbytes()), 0) << what;
}

TEST(CudaCore, NoDeviceGivesAClearError) {
    if (cuda::available()) GTEST_SKIP() << "a CUDA device is present";
    EXPECT_FALSE(cuda::available());
    EXPECT_EQ(cuda::device_count(), 0);
    EXPECT_EQ(cuda::device_name(), "");
    test::expect_error([] { Tensor::empty(Shape{4}, DType::f32, Device::cuda()); },
                       "no CUDA device");
}

TEST(CudaCore, DeviceQueries) {
    GOOSE_REQUIRE_GPU();
    EXPECT_GE(cuda::device_count(), 1);
    EXPECT_FALSE(cuda::device_name().empty());
    EXPECT_GE(cuda::compute_capability(), 70);
    EXPECT_NE(cuda::current_stream(), nullptr);
    std::printf("device 0: %s (sm_%d), %d device(s)\n", cuda::device_name().c_str(),
                cuda::compute_capability(), cuda::device_count());
    test::expect_error([] { Tensor::empty(Shape{4}, DType::f32, Device::cuda(1)); }, "only cuda:0");
}

TEST(CudaCore, AllocatorReusesFreedBlocks) {
    GOOSE_REQUIRE_GPU();
    const Shape shape{1000, 1000};
    { Tensor warm = Tensor::empty(shape, DType::f32, Device::cuda()); }
    const cuda::MemoryStats before = cuda::memory_stats();
    EXPECT_GE(before.cached, size_t(4000000));
    for (int i = 0; i < 5; ++i) {
        Tensor t = Tensor::empty(shape, DType::f32, Device::cuda());
        EXPECT_EQ(cuda::memory_in_use(), before.in_use + 4u * 1024 * 1024);  // 1 MiB classes
    }
    const cuda::MemoryStats after = cuda::memory_stats();
    EXPECT_EQ(after.device_allocs, before.device_allocs) << "no cudaMalloc on reuse";
    EXPECT_EQ(after.reuses, before.reuses + 5);
    EXPECT_EQ(after.in_use, before.in_use);
    // Small sizes: one class serves nearby sizes.
    { Tensor a = Tensor::empty(Shape{100}, DType::f32, Device::cuda()); }
    const uint64_t allocs = cuda::memory_stats().device_allocs;
    { Tensor b = Tensor::empty(Shape{110}, DType::f32, Device::cuda()); }
    EXPECT_EQ(cuda::memory_stats().device_allocs, allocs);
    // Peak tracking and empty_cache.
    cuda::reset_peak_memory();
    EXPECT_EQ(cuda::peak_memory(), cuda::memory_in_use());
    {
        Tensor big = Tensor::empty(Shape{8, 1024, 1024}, DType::f32, Device::cuda());
        EXPECT_GE(cuda::peak_memory(), cuda::memory_in_use());
    }
    EXPECT_GE(cuda::peak_memory(), size_t(32) << 20);
    cuda::empty_cache();
    EXPECT_EQ(cuda::memory_stats().cached, 0u);
}

TEST(CudaCore, AllocationBeyondTheDeviceIsOutOfMemoryAndLosesNothing) {
    GOOSE_REQUIRE_GPU();
    Tensor keep = Tensor::full(Shape{1000}, 3.0, DType::f32, Device::cuda());
    const size_t in_use = cuda::memory_in_use();
    // 1 TiB of f32 minus a little: within Tensor's size limit, beyond any GPU.
    const int64_t n = (int64_t(1) << 38) - 1024;
    try {
        Tensor::empty(Shape{n}, DType::f32, Device::cuda());
        FAIL() << "a 1 TiB device tensor was allocated";
    } catch (const OutOfMemory& e) {  // the type callers catch to say what to change
        EXPECT_NE(std::string(e.what()).find("out of memory on cuda:0"), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(cuda::memory_in_use(), in_use);
    EXPECT_EQ(keep.to(Device::cpu()).to_vector()[999], 3.0);
}

TEST(CudaCore, RoundTripEveryDtype) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kAllDTypes) {
        const Tensor x = sample(Shape{3, 5, 7}, dt, 1);
        const Tensor g = x.to(Device::cuda());
        EXPECT_TRUE(g.device().is_cuda());
        EXPECT_EQ(g.dtype(), dt);
        expect_identical(g.to(Device::cpu()), x, std::string(dtype_name(dt)) + " round trip");
        // Empty and 0-d tensors.
        const Tensor e = Tensor::empty(Shape{0, 4}, dt).to(Device::cuda());
        EXPECT_EQ(e.to(Device::cpu()).numel(), 0);
        const Tensor s = sample(Shape{}, dt, 2);
        expect_identical(s.to(Device::cuda()).to(Device::cpu()), s, "0-d");
    }
}

TEST(CudaCore, StridedViewsBothWays) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kAllDTypes) {
        const std::string name(dtype_name(dt));
        const Tensor x = sample(Shape{4, 6, 10}, dt, 3);
        const Tensor v = x.permute({2, 0, 1}).slice(0, 1, 9, 3);  // CPU strided view
        expect_identical(v.to(Device::cuda()).to(Device::cpu()), v.contiguous(),
                         name + " strided host view to device");
        const Tensor g = x.to(Device::cuda());
        const Tensor gv = g.permute({2, 0, 1}).slice(0, 1, 9, 3);  // device strided view
        expect_identical(gv.to(Device::cpu()), v.contiguous(), name + " strided device view");
        expect_identical(gv.contiguous().to(Device::cpu()), v.contiguous(),
                         name + " contiguous() on the device");
        EXPECT_TRUE(gv.contiguous().is_contiguous());
        // Into a strided destination on the device, from the host and from the device.
        Tensor d = Tensor::zeros(Shape{10, 4, 6}, dt, Device::cuda());
        d.permute({1, 2, 0}).copy_(x);
        expect_identical(d.to(Device::cpu()), x.permute({2, 0, 1}).contiguous(),
                         name + " host -> strided device");
        Tensor d2 = Tensor::zeros(Shape{10, 4, 6}, dt, Device::cuda());
        d2.permute({1, 2, 0}).copy_(g);
        expect_identical(d2.to(Device::cpu()), x.permute({2, 0, 1}).contiguous(),
                         name + " device -> strided device");
        // Into a strided host destination from the device.
        Tensor h = Tensor::zeros(Shape{10, 4, 6}, dt);
        h.permute({1, 2, 0}).copy_(g);
        expect_identical(h, x.permute({2, 0, 1}).contiguous(), name + " device -> strided host");
        // Expanded (stride 0) source on the device.
        const Tensor row = sample(Shape{1, 10}, dt, 4);
        expect_identical(row.to(Device::cuda()).expand(Shape{3, 10}).to(Device::cpu()),
                         row.expand(Shape{3, 10}).contiguous(), name + " expanded");
    }
}

TEST(CudaCore, DtypeConversionsMatchTheCpu) {
    GOOSE_REQUIRE_GPU();
    Rng rng(7, "conv");
    Tensor x = Tensor::randn(Shape{33, 65}, rng, DType::f64, 0, 100);
    x.set({0, 0}, std::nan(""));
    x.set({0, 1}, INFINITY);
    x.set({0, 2}, -0.0);
    x.set({0, 3}, 1e-40);  // subnormal in f32
    for (DType src : {DType::f64, DType::f32, DType::bf16, DType::f16}) {
        const Tensor xs = x.to(src);
        const Tensor g = xs.to(Device::cuda());
        for (DType dst : kAllDTypes) {
            if (!dtype_is_float(dst)) continue;  // float -> int of NaN/inf is undefined
            const std::string what =
                std::string(dtype_name(src)) + " -> " + std::string(dtype_name(dst));
            const Tensor want = xs.to(dst);
            const Tensor got = g.to(dst).to(Device::cpu());
            const Tensor got_t = g.transpose(0, 1).to(dst).to(Device::cpu());
            const auto w = want.to_vector(), a = got.to_vector();
            const auto wt = want.transpose(0, 1).to_vector(), at = got_t.to_vector();
            for (size_t i = 0; i < w.size(); ++i) {
                if (std::isnan(w[i])) {
                    EXPECT_TRUE(std::isnan(a[i])) << what;
                    continue;
                }
                EXPECT_EQ(w[i], a[i]) << what << " at " << i;
                if (!std::isnan(wt[i])) {
                    EXPECT_EQ(wt[i], at[i]) << what << " transposed at " << i;
                }
            }
        }
    }
    // Integer conversions of in-range values.
    const Tensor ints = sample(Shape{50}, DType::i64, 9);
    for (DType dst : kAllDTypes)
        expect_identical(ints.to(Device::cuda()).to(dst).to(Device::cpu()), ints.to(dst),
                         std::string("i64 -> ") + std::string(dtype_name(dst)));
}

TEST(CudaCore, FillsAndElementAccess) {
    GOOSE_REQUIRE_GPU();
    for (DType dt : kAllDTypes) {
        const std::string name(dtype_name(dt));
        Tensor z = Tensor::zeros(Shape{7, 9}, dt, Device::cuda());
        expect_identical(z.to(Device::cpu()), Tensor::zeros(Shape{7, 9}, dt), name + " zeros");
        Tensor f = Tensor::full(Shape{7, 9}, 3.0, dt, Device::cuda());
        expect_identical(f.to(Device::cpu()), Tensor::full(Shape{7, 9}, 3.0, dt), name + " full");
        f.transpose(0, 1).slice(0, 2, 8, 2).fill_(5.0);  // strided fill
        Tensor fc = Tensor::full(Shape{7, 9}, 3.0, dt);
        fc.transpose(0, 1).slice(0, 2, 8, 2).fill_(5.0);
        expect_identical(f.to(Device::cpu()), fc, name + " strided fill");
        for (double v : {3.0, -0.0, 1e-40, dtype_is_float(dt) ? 1e10 : 200.0}) {  // packed
            const Tensor big = Tensor::full(Shape{64, 33}, v, dt, Device::cuda());
            expect_identical(big.to(Device::cpu()), Tensor::full(Shape{64, 33}, v, dt),
                             name + " packed full " + std::to_string(v));
        }
        f.set({1, 2}, 7.0);
        EXPECT_EQ(f.get({1, 2}), 7.0) << name;
        EXPECT_EQ(f.get({0, 2}), 5.0) << name;
        EXPECT_EQ(f.select(0, 1).select(0, 2).item(), 7.0) << name;
    }
    // bf16 fill rounds as the CPU does.
    Tensor b = Tensor::full(Shape{4}, 1.00390625 + 1e-9, DType::bf16, Device::cuda());
    EXPECT_EQ(b.to_vector(), Tensor::full(Shape{4}, 1.00390625 + 1e-9, DType::bf16).to_vector());
}

TEST(CudaCore, FastCopyPathsMatchTheCpu) {
    GOOSE_REQUIRE_GPU();
    // Row copies (contiguous rows, vector units where aligned) and tiled transposes, at odd
    // sizes, for each element size; bit-identical to the CPU's copies.
    for (DType dt : {DType::u8, DType::bf16, DType::f32, DType::f64}) {
        const std::string name(dtype_name(dt));
        const Tensor x = sample(Shape{3, 70, 133}, dt, 11);
        const Tensor g = x.to(Device::cuda());
        auto check = [&](auto view, const std::string& what) {
            expect_identical(view(g).contiguous().to(Device::cpu()), view(x).contiguous(),
                             name + " " + what);
        };
        check([](const Tensor& t) { return t.slice(1, 5, 69).slice(2, 1, 130); }, "rows, odd");
        check([](const Tensor& t) { return t.slice(2, 5, 133); }, "rows, 128 wide");
        check([](const Tensor& t) { return t.slice(0, 0, 3, 2).slice(2, 0, 64); }, "rows, step");
        check([](const Tensor& t) { return t.transpose(1, 2); }, "transpose 70x133");
        check([](const Tensor& t) { return t.permute({2, 0, 1}); }, "permute (2,0,1)");
        check([](const Tensor& t) { return t.permute({1, 2, 0}); }, "permute (1,2,0)");
        check([](const Tensor& t) { return t.slice(1, 3, 67).transpose(0, 2); },
              "sliced transpose");
        // Into strided destinations: concat-like row writes and a transposed write.
        Tensor d = Tensor::zeros(Shape{3, 70, 140}, dt, Device::cuda());
        d.slice(2, 7, 140).copy_(g);
        Tensor dc = Tensor::zeros(Shape{3, 70, 140}, dt);
        dc.slice(2, 7, 140).copy_(x);
        expect_identical(d.to(Device::cpu()), dc, name + " row writes into a slice");
        Tensor t = Tensor::zeros(Shape{3, 133, 70}, dt, Device::cuda());
        t.transpose(1, 2).copy_(g);
        expect_identical(t.to(Device::cpu()), x.transpose(1, 2).contiguous(),
                         name + " transposed write");
    }
}

TEST(CudaCore, CopyThroughput) {
    GOOSE_REQUIRE_GPU();
    // Each pattern on 64 Mi f32 elements (256 MiB): GB/s counts bytes read plus bytes written.
    const int64_t rows = 16384, cols = 4096;
    Tensor a = Tensor::full(Shape{rows, cols}, 1.5, DType::f32, Device::cuda());
    a.slice(0, 1, 2).fill_(2.5);
    struct Pattern {
        const char* name;
        std::function<Tensor()> run;
        double bytes;
    };
    const double full = double(rows) * cols * 4;
    const std::vector<Pattern> patterns = {
        {"clone (cudaMemcpyAsync D2D)", [&] { return a.clone(); }, 2 * full},
        {"transpose [16384,4096] -> [4096,16384]", [&] { return a.transpose(0, 1).contiguous(); },
         2 * full},
        {"row slice [:, 0:4000] (rows path)", [&] { return a.slice(1, 0, 4000).contiguous(); },
         2 * full * 4000 / 4096},
        {"f32 -> bf16 (converting kernel)", [&] { return a.to(DType::bf16); }, full * 1.5},
        {"fill_ 3.0",
         [&] {
             a.fill_(3.0);
             return a;
         },
         full},
    };
    std::printf("%-42s %10s %10s\n", "pattern", "GB/s", "of ~3350");
    for (const Pattern& p : patterns) {
        Tensor r = p.run();  // warm-up (allocations cached)
        cuda::synchronize();
        constexpr int kReps = 10;
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < kReps; ++i) r = p.run();
        cuda::synchronize();
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double gbs = kReps * p.bytes / s / 1e9;
        std::printf("%-42s %10.0f %9.0f%%\n", p.name, gbs, 100 * gbs / 3350);
    }
    Tensor t = a.transpose(0, 1).contiguous();
    EXPECT_EQ(t.get({4095, 16383}), 3.0);
    EXPECT_EQ(t.shape(), (Shape{cols, rows}));
}

}  // namespace
}  // namespace goose
