#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pi0/error.h"
#include "pi0/tensor.h"
#include "pi0/threads.h"

using namespace pi0;

static uint32_t bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
static float from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

TEST(BF16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // Exactly half-way between 0x3f80 and 0x3f81: ties go to the even mantissa (0x3f80).
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000u)), 0x3f80);
  // Half-way between 0x3f81 and 0x3f82: goes up to even 0x3f82.
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000u)), 0x3f82);
  // Just above half-way rounds up.
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(-2.5f), 0xc020);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(INFINITY)), INFINITY);
  // Rounding overflow into infinity, as PyTorch does for the largest finite values.
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(from_bits(0x7f7fffffu))), INFINITY);
  EXPECT_EQ(bits(bf16_to_f32(0x3f80)), 0x3f800000u);
}

TEST(F16, RoundTripsAndRounds) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f32_to_f16(65504.f), 0x7bff);
  EXPECT_EQ(f16_to_f32(f32_to_f16(1e6f)), INFINITY);
  // 1 + 2^-11 is half-way between 1 and 1 + 2^-10: ties to even (1.0).
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // Every half value round-trips exactly, and midpoints between neighbours go to the even one.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN payloads
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
    const uint32_t next = h + 1;
    if ((h & 0x7fff) >= 0x7bff) continue;
    const float mid = (f + f16_to_f32(static_cast<uint16_t>(next))) / 2;  // exact in f32
    ASSERT_EQ(f32_to_f16(mid), (h & 1) ? next : h) << std::hex << h;
  }
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(1e-10f), 0);
}

TEST(Tensor, ConvertsBetweenDtypes) {
  Tensor t = Tensor::from_f32({1.f, -2.5f, 3.25f, 1e-3f}, {2, 2});
  Tensor b = t.to(DType::BF16);
  EXPECT_EQ(b.dtype(), DType::BF16);
  EXPECT_EQ(b.shape(), (Shape{2, 2}));
  EXPECT_FLOAT_EQ(b.get_f32(1), -2.5f);
  EXPECT_NEAR(b.get_f32(3), 1e-3f, 1e-5f);
  Tensor i = t.to(DType::I32);
  EXPECT_EQ(i.data<int32_t>()[1], -2);
  Tensor d = t.to(DType::F64);
  EXPECT_DOUBLE_EQ(reinterpret_cast<const double*>(d.raw())[2], 3.25);
  EXPECT_EQ(t.reshaped({4}).shape(), (Shape{4}));
  EXPECT_THROW(t.reshaped({3}), Error);
}

TEST(Tensor, ViewsAreReadOnlyAndKeepMemoryAlive) {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3});
  Tensor v = Tensor::view(DType::F32, {3}, owner->data(), owner);
  EXPECT_FALSE(v.owns_memory());
  EXPECT_THROW(v.raw_mut(), Error);
  std::weak_ptr<std::vector<float>> weak = owner;
  owner.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(v.get_f32(2), 3.f);
}

TEST(Tensor, ShapeOverflowIsAnError) {
  EXPECT_THROW(shape_numel({1ll << 40, 1ll << 40}), Error);
  EXPECT_THROW(shape_numel({-1}), Error);
  EXPECT_EQ(shape_numel({}), 1);
}

TEST(Threads, ParallelForCoversEveryIndexOnce) {
  set_num_threads(3);
  std::vector<int> hits(1000, 0);
  parallel_for(1000, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) hits[i]++; });
  for (int h : hits) ASSERT_EQ(h, 1);
  // Nested calls run inline instead of deadlocking.
  std::atomic<int> total{0};
  parallel_for(4, [&](int64_t b, int64_t e) {
    parallel_for(10, [&](int64_t b2, int64_t e2) { total += static_cast<int>(e2 - b2); });
  });
  EXPECT_GT(total.load(), 0);
  EXPECT_THROW(parallel_for(10, [](int64_t, int64_t) { throw Error("boom"); }), Error);
  set_num_threads(0);
}

// to_releasing: the same values as to(), chunk by chunk (20 MiB of f32 spans two 16 MiB chunks
// and ends mid-chunk), and a file-backed view stays readable after its pages are released.
TEST(Tensor, ToReleasingCopiesAMappedViewExactly) {
  const int64_t n = 5'000'003;
  std::vector<float> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[i] = std::sin(static_cast<float>(i)) * 100.f;
  const std::string path = testing::TempDir() + "/to_releasing.bin";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(values.data(), 4, values.size(), f), values.size());
    std::fclose(f);
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = ::mmap(nullptr, values.size() * 4, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  ASSERT_NE(map, MAP_FAILED);
  std::shared_ptr<const void> keep(map, [bytes = values.size() * 4](const void* p) { ::munmap(const_cast<void*>(p), bytes); });
  const Tensor view = Tensor::mapped_view(DType::F32, {n}, map, keep);
  const Tensor want = Tensor::from_f32(values, {n}).to(DType::BF16);
  const Tensor got = view.to_releasing(DType::BF16);
  ASSERT_TRUE(got.owns_memory());
  ASSERT_EQ(got.dtype(), DType::BF16);
  EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0);
  const Tensor same = view.to_releasing(DType::F32);
  EXPECT_EQ(std::memcmp(same.raw(), values.data(), values.size() * 4), 0);
  EXPECT_EQ(view.get_f32(n - 1), values.back());  // released pages read back from the file
  std::remove(path.c_str());
}
