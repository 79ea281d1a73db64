// Core: shapes, tensors and views, dtype conversions, storage pool, arena, Philox RNG, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "goose/core/arena.h"
#include "goose/core/pool.h"
#include "goose/core/rng.h"
#include "goose/core/tensor.h"
#include "goose/core/threads.h"

namespace goose {
namespace {

TEST(Shape, BroadcastAndErrors) {
    EXPECT_EQ(broadcast_shapes(Shape{3, 1, 5}, Shape{4, 5}, "t"), (Shape{3, 4, 5}));
    EXPECT_EQ(broadcast_shapes(Shape{}, Shape{2}, "t"), (Shape{2}));
    try {
        broadcast_shapes(Shape{3}, Shape{4}, "add");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("add: shapes [3] and [4]"), std::string::npos) << e.what();
    }
    EXPECT_THROW((Shape{1, 2, 3, 4, 5, 6}), Error);
}

TEST(Tensor, FactoriesAndAccess) {
    Tensor t = Tensor::from(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
    EXPECT_EQ(t.numel(), 6);
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_DOUBLE_EQ(t.get({1, 2}), 6);
    t.set({0, 1}, 7);
    EXPECT_FLOAT_EQ(t.data<float>()[1], 7.f);
    EXPECT_THROW(t.data<double>(), Error);
    EXPECT_THROW(Tensor::from(Shape{2}, {1, 2, 3}), Error);
    EXPECT_THROW(Tensor::empty(Shape{-1}), Error);
    EXPECT_THROW(Tensor::empty(Shape{int64_t(1) << 40, int64_t(1) << 20}), Error);
    EXPECT_DOUBLE_EQ(Tensor::scalar(2.5, DType::f64).item(), 2.5);
    EXPECT_EQ(Tensor::zeros(Shape{0, 3}).numel(), 0);
}

TEST(Tensor, ViewsShareStorageAndIndexCorrectly) {
    Tensor t = Tensor::arange(24).view(Shape{2, 3, 4});
    Tensor tr = t.transpose(0, 2);  // [4, 3, 2]
    EXPECT_FALSE(tr.is_contiguous());
    EXPECT_TRUE(tr.shares_storage(t));
    EXPECT_DOUBLE_EQ(tr.get({3, 1, 1}), t.get({1, 1, 3}));
    Tensor p = t.permute({2, 0, 1});  // [4, 2, 3]
    EXPECT_DOUBLE_EQ(p.get({1, 1, 2}), t.get({1, 2, 1}));
    Tensor s = t.slice(2, 1, 4, 2);  // [2, 3, 2]: columns 1 and 3
    EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
    EXPECT_DOUBLE_EQ(s.get({1, 2, 1}), t.get({1, 2, 3}));
    EXPECT_DOUBLE_EQ(t.select(1, -1).get({1, 0}), t.get({1, 2, 0}));
    EXPECT_EQ(t.view(Shape{-1, 4}).shape(), (Shape{6, 4}));
    EXPECT_THROW(tr.view(Shape{24}), Error);
    Tensor c = tr.contiguous();
    EXPECT_TRUE(c.is_contiguous());
    EXPECT_EQ(c.to_vector(), tr.to_vector());
    EXPECT_EQ(tr.reshape(Shape{24}).to_vector(), tr.to_vector());
    Tensor e = Tensor::from(Shape{3, 1}, {1, 2, 3}).expand(Shape{2, 3, 4});
    EXPECT_DOUBLE_EQ(e.get({1, 2, 3}), 3);
    EXPECT_EQ(t.unsqueeze(0).shape(), (Shape{1, 2, 3, 4}));
    EXPECT_EQ(t.unsqueeze(3).squeeze(3).shape(), t.shape());
    EXPECT_THROW(t.transpose(0, 3), Error);
}

TEST(DType, Bf16AndF16RoundTrip) {
    EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
    EXPECT_FLOAT_EQ(bf16_to_float(float_to_bf16(3.140625f)), 3.140625f);
    EXPECT_FLOAT_EQ(bf16_to_float(float_to_bf16(1.00390625f)), 1.0f);  // ties to even
    EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    EXPECT_EQ(float_to_f16(1.0f), 0x3c00);
    EXPECT_EQ(float_to_f16(65504.0f), 0x7bff);
    EXPECT_EQ(float_to_f16(1e6f), 0x7c00);
    EXPECT_EQ(float_to_f16(-2.0f), 0xc000);
    EXPECT_FLOAT_EQ(f16_to_float(0x0001), 5.9604645e-8f);  // smallest subnormal
    EXPECT_FLOAT_EQ(f16_to_float(float_to_f16(0.333251953125f)), 0.333251953125f);
    for (uint32_t h = 0; h < 0x7c00; ++h)  // every finite positive half round-trips exactly
        ASSERT_EQ(float_to_f16(f16_to_float(static_cast<uint16_t>(h))), h);
    Tensor t = Tensor::from(Shape{3}, {1.5, -2.25, 1000}, DType::f32);
    for (DType d : {DType::bf16, DType::f16, DType::f64})
        EXPECT_EQ(t.to(d).to(DType::f32).to_vector(), t.to_vector()) << dtype_name(d);
    EXPECT_EQ(dtype_from_name("bf16"), DType::bf16);
    EXPECT_THROW(dtype_from_name("f8"), Error);
}

TEST(Rng, PhiloxKnownAnswers) {
    // Known-answer vectors of Philox4x32-10 (Random123 kat_vectors).
    auto a = philox4x32_10({0, 0, 0, 0}, {0, 0});
    EXPECT_EQ(a, (PhiloxCounter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
    auto b = philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                           {0xffffffffu, 0xffffffffu});
    EXPECT_EQ(b, (PhiloxCounter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
    auto c = philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                           {0xa4093822u, 0x299f31d0u});
    EXPECT_EQ(c, (PhiloxCounter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Rng, NamedStreamsAreReproducibleAndIndependent) {
    Rng a(42, "init"), b(42, "init"), c(42, "data");
    EXPECT_EQ(a.next_u64(), b.next_u64());
    EXPECT_NE(Rng(42, "init").next_u64(), c.next_u64());
    EXPECT_NE(Rng(42).fork("x").next_u64(), Rng(42).fork("y").next_u64());
    // Bulk fills do not depend on the thread count.
    Tensor t1, t2;
    {
        ThreadScope ts(1);
        Rng r(7, "fill");
        t1 = Tensor::randn(Shape{100000}, r);
    }
    {
        ThreadScope ts(2);
        Rng r(7, "fill");
        t2 = Tensor::randn(Shape{100000}, r);
    }
    EXPECT_EQ(t1.to_vector(), t2.to_vector());
    // Moments of N(0, 1) and U(0, 1).
    const auto v = t1.to_vector();
    double m = 0, s = 0;
    for (double x : v) m += x;
    m /= v.size();
    for (double x : v) s += (x - m) * (x - m);
    s = std::sqrt(s / v.size());
    EXPECT_NEAR(m, 0, 0.02);
    EXPECT_NEAR(s, 1, 0.02);
    Rng u(3);
    double mu = 0;
    for (int i = 0; i < 20000; ++i) mu += u.uniform();
    EXPECT_NEAR(mu / 20000, 0.5, 0.01);
    for (int i = 0; i < 1000; ++i) {
        const int64_t k = u.randint(-3, 4);
        ASSERT_GE(k, -3);
        ASSERT_LT(k, 4);
    }
}

TEST(Pool, ReusesFreedBlocks) {
    const PoolStats before = cpu_pool().stats();
    { Tensor a = Tensor::empty(Shape{1000, 37}); }
    { Tensor b = Tensor::empty(Shape{1000, 37}); }
    const PoolStats after = cpu_pool().stats();
    EXPECT_GE(after.reuses, before.reuses + 1);
    EXPECT_EQ(CpuPool::size_class(100), 128u);
    EXPECT_EQ(CpuPool::size_class(129), 192u);
    EXPECT_EQ(CpuPool::size_class(193), 256u);
}

TEST(Arena, BumpAllocationAndReset) {
    Arena arena(1 << 16);
    const auto m = arena.mark();
    {
        Tensor t = arena.tensor(Shape{100, 10});
        t.fill_(1.0);
        EXPECT_EQ(arena.live_tensors(), 1);
        void* p = arena.allocate(1 << 17);  // larger than a block
        EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    }
    EXPECT_EQ(arena.live_tensors(), 0);
    arena.reset(m);
    EXPECT_EQ(arena.bytes_used(), 0u);
    const size_t reserved = arena.bytes_reserved();
    { Tensor t = arena.tensor(Shape{100, 10}); }
    EXPECT_EQ(arena.bytes_reserved(), reserved);  // memory reused, nothing new
}

TEST(Threads, SetAndRestore) {
    const int n = num_threads();
    {
        ThreadScope s(1);
        EXPECT_EQ(num_threads(), 1);
    }
    EXPECT_EQ(num_threads(), n);
    EXPECT_THROW(set_num_threads(0), Error);
}

TEST(Device, CudaIsAClearErrorWithoutTheBackend) {
    if (cuda_compiled()) GTEST_SKIP() << "CUDA backend compiled in";
    try {
        Tensor::empty(Shape{4}, DType::f32, Device::cuda(0));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos);
    }
}

}  // namespace
}  // namespace goose
