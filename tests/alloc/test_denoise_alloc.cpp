// The denoise loop allocates nothing: a call with more Euler steps makes exactly as many heap
// allocations as one with fewer (same shapes, primitives and workspace already built by a
// warm-up). Its own binary, because it replaces the global operator new to count.
// oneDNN's own execute() builds a small argument map inside the library on every call; those
// allocations (the call site is in libdnnl) are counted apart and reported, not failed: no
// wrapper of ours can remove them.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <dlfcn.h>

#include <cstring>
#include <new>

#include "../model_util.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_allocs{0}, g_dnnl_allocs{0};

bool called_from_onednn(void* site) {
  Dl_info info{};
  return dladdr(site, &info) && info.dli_fname && std::strstr(info.dli_fname, "libdnnl");
}

void* counted(std::size_t n, void* site, std::size_t align = 0) {
  if (g_counting.load(std::memory_order_relaxed))
    (called_from_onednn(site) ? g_dnnl_allocs : g_allocs).fetch_add(1, std::memory_order_relaxed);
  if (n == 0) n = 1;
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (n + align - 1) / align * align) : std::malloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted(n, __builtin_return_address(0)); }
void* operator new[](std::size_t n) { return counted(n, __builtin_return_address(0)); }
void* operator new(std::size_t n, std::align_val_t a) { return counted(n, __builtin_return_address(0), static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted(n, __builtin_return_address(0), static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { try { return counted(n, __builtin_return_address(0)); } catch (...) { return nullptr; } }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { try { return counted(n, __builtin_return_address(0)); } catch (...) { return nullptr; } }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace pi0;
using namespace pi0::test;

namespace {

struct Counts {
  int64_t ours = 0, onednn = 0;
};

Counts allocations_of(const Pi0Model& m, const ModelInputs& in, int steps, bool rtc = false) {
  SampleOptions opt;
  opt.num_steps = steps;
  if (rtc) {  // real-time chunking guides every step: that must not allocate either
    RtcGuidance g;
    g.prev_actions = Tensor::zeros(DType::F32, {in.batch(), 3, 5});
    g.inference_delay = 2;
    opt.rtc = g;
  }
  opt.seed = 7;
  m.sample_actions(in, opt);  // warm-up: workspace, oneDNN primitives, thread team
  g_allocs = 0;
  g_dnnl_allocs = 0;
  g_counting = true;
  m.sample_actions(in, opt);
  g_counting = false;
  return {g_allocs.load(), g_dnnl_allocs.load()};
}

class DenoiseLoop : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

TEST_P(DenoiseLoop, AllocatesNothingPerStep) {
  const auto [preset, backend] = GetParam();
  auto model = random_model(model_preset(preset), std::string("alloc_") + preset + backend, 3, backend);
  ModelInputs in = random_inputs(model->config(), 1, 5);
  const Counts few = allocations_of(*model, in, 2), many = allocations_of(*model, in, 12);
  EXPECT_EQ(many.ours, few.ours) << (many.ours - few.ours) / 10.0 << " allocations per denoise step";
  const Counts rtc_few = allocations_of(*model, in, 2, true), rtc_many = allocations_of(*model, in, 12, true);
  EXPECT_EQ(rtc_many.ours, rtc_few.ours) << (rtc_many.ours - rtc_few.ours) / 10.0 << " allocations per guided (RTC) step";
  EXPECT_GT(few.ours, 0) << "the counter must see the call's own allocations (the returned tensor)";
  std::printf("%s/%s: %lld allocations per call outside the denoise loop; inside oneDNN's execute(): %.1f per step\n",
              preset, backend, static_cast<long long>(few.ours), (many.onednn - few.onednn) / 10.0);
}

INSTANTIATE_TEST_SUITE_P(Backends, DenoiseLoop,
                         ::testing::Combine(::testing::Values("tiny-pi0", "tiny-pi05"), ::testing::Values("cpu", "reference")));

}  // namespace
