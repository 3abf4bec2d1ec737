#include "backend/cpu/dnnl_matmul.h"

#include <dnnl.hpp>
#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "backend/cpu/huge_buffer.h"
#include "backend/cpu/kernels.h"
#include "pi0/error.h"

namespace pi0::cpu {
namespace {

using dt = dnnl::memory::data_type;

dnnl::engine& engine() {
  static dnnl::engine e = [] {
    // PI0_CPU_ISA=avx2 (kernels.h): oneDNN too must stay off AVX-512, so it has no bf16 path.
    if (!isa_allows_avx512()) dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2);
    return dnnl::engine(dnnl::engine::kind::cpu, 0);
  }();
  return e;
}

// Shape, strides, dtypes, epilogue, and the packed layout's id (0: plain strided weights).
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, int, bool, int64_t, bool>;

struct Entry {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c, bias, scratch;
  size_t scratch_bytes = 0;
};

Entry make_entry(const MatmulSpec& s, const dnnl::memory::desc* packed_b = nullptr) {
  Entry e;
  const dt in = s.s8 ? dt::s8 : s.bf16 ? dt::bf16 : dt::f32;
  e.a = dnnl::memory::desc({s.M, s.K}, in, dnnl::memory::dims{s.lda, 1});
  e.b = packed_b ? *packed_b : dnnl::memory::desc({s.K, s.N}, in, dnnl::memory::dims{s.b_sk, s.b_sn});
  e.c = dnnl::memory::desc({s.M, s.N}, s.s8 ? dt::s32 : s.c_bf16 ? dt::bf16 : dt::f32, dnnl::memory::dims{s.ldc, 1});
  if (s.bias) e.bias = dnnl::memory::desc({1, s.N}, dt::f32, dnnl::memory::format_tag::ab);
  dnnl::post_ops ops;
  if (s.accumulate) ops.append_sum(1.f);
  if (s.post == Post::GeluTanh) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_tanh, 0.f, 0.f);
  if (s.post == Post::Silu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_swish, 1.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per-call scratch: safe across threads
  dnnl::matmul::desc d = s.bias ? dnnl::matmul::desc(e.a, e.b, e.bias, e.c) : dnnl::matmul::desc(e.a, e.b, e.c);
  dnnl::matmul::primitive_desc pd(d, attr, engine());
  e.scratch = pd.scratchpad_desc();
  e.scratch_bytes = e.scratch.get_size();
  e.prim = dnnl::matmul(pd);
  return e;
}

// One thread's memory objects for one primitive: handles re-pointed at each call's buffers.
struct Bound {
  dnnl::memory a, b, c, bias, sp;
  dnnl_exec_arg_t args[5];  // the C API's argument array: the C++ execute() builds a vector per call
  int nargs = 4;
  explicit Bound(const Entry& e)
      : a(e.a, engine(), nullptr), b(e.b, engine(), nullptr), c(e.c, engine(), nullptr), sp(e.scratch, engine(), nullptr) {
    args[0] = {DNNL_ARG_SRC, a.get()};
    args[1] = {DNNL_ARG_WEIGHTS, b.get()};
    args[2] = {DNNL_ARG_DST, c.get()};
    args[3] = {DNNL_ARG_SCRATCHPAD, sp.get()};
    if (!e.bias.is_zero()) {
      bias = dnnl::memory(e.bias, engine(), nullptr);
      args[nargs++] = {DNNL_ARG_BIAS, bias.get()};
    }
  }
};

std::mutex g_mu;
std::map<Key, Entry>& cache() {
  static std::map<Key, Entry> m;
  return m;
}

}  // namespace


// Packed weights live in a HugeBuffer (huge_buffer.h): zero-filling a std::vector first cost 13 s of
// page faults when loading full-size π0 (the reorder writes every byte anyway).
struct PackedWeights {
  dnnl::memory::desc desc;
  int64_t id = 0;  // distinguishes layouts in the primitive cache
  HugeBuffer data;
};

namespace {

void run(const MatmulSpec& s, const void* A, const void* B, const dnnl::memory::desc* packed, int64_t packed_id,
         const float* bias, void* C) {
  if (s.M == 0 || s.N == 0) return;
  const Key key{s.M, s.K, s.N, s.lda, packed ? 0 : s.b_sk, packed ? 0 : s.b_sn, s.ldc, s.bf16, s.c_bf16, s.bias,
                static_cast<int>(s.post), s.accumulate, packed_id, s.s8};
  const Entry* e;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = cache().find(key);
    if (it == cache().end()) {
      try {
        it = cache().emplace(key, make_entry(s, packed)).first;
      } catch (const dnnl::error& err) {
        throw Error({.message = std::string("oneDNN cannot build this matmul: ") + err.what(),
                     .got = std::to_string(s.M) + "x" + std::to_string(s.K) + "x" + std::to_string(s.N)});
      }
    }
    e = &it->second;  // std::map nodes are stable
  }
  thread_local std::vector<uint8_t> scratch;
  thread_local dnnl::stream strm(engine());
  // Memory objects and the argument map are made once per primitive and thread, then only
  // re-pointed: building them per call cost ≈ 10 heap allocations per GEMM, > 100 per denoise step.
  thread_local std::unordered_map<const Entry*, Bound> bound;
  if (scratch.size() < e->scratch_bytes) scratch.resize(e->scratch_bytes);
  auto it = bound.find(e);
  if (it == bound.end()) it = bound.emplace(e, Bound(*e)).first;
  Bound& m = it->second;
  m.a.set_data_handle(const_cast<void*>(A));
  m.b.set_data_handle(const_cast<void*>(B));
  m.c.set_data_handle(C);
  m.sp.set_data_handle(scratch.data());
  if (s.bias) m.bias.set_data_handle(const_cast<float*>(bias));
  if (dnnl_primitive_execute(e->prim.get(), strm.get(), m.nargs, m.args) != dnnl_success)
    throw Error({.message = "oneDNN matmul failed", .got = std::to_string(s.M) + "x" + std::to_string(s.K) + "x" + std::to_string(s.N)});
  strm.wait();
}

}  // namespace

void matmul(const MatmulSpec& s, const void* A, const void* B, const float* bias, void* C) {
  run(s, A, B, nullptr, 0, bias, C);
}

void matmul(const MatmulSpec& s, const void* A, const PackedWeights& B, const float* bias, void* C) {
  run(s, A, B.data.data(), &B.desc, B.id, bias, C);
}

namespace {

std::shared_ptr<const PackedWeights> pack(const void* w, int64_t N, int64_t K, dt in, int64_t rows_hint) {
  const dt out = in == dt::s8 ? dt::s32 : dt::f32;
  const int64_t M = std::max<int64_t>(1, rows_hint);
  dnnl::memory::desc a({M, K}, in, dnnl::memory::format_tag::ab), c({M, N}, out, dnnl::memory::format_tag::ab);
  dnnl::memory::desc plain({K, N}, in, dnnl::memory::dims{1, K});
  dnnl::memory::desc any({K, N}, in, dnnl::memory::format_tag::any);
  auto p = std::make_shared<PackedWeights>();
  try {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, any, c), engine());
    p->desc = pd.weights_desc();
    p->data = HugeBuffer(p->desc.get_size());
    dnnl::memory src(plain, engine(), const_cast<void*>(w)), dst(p->desc, engine(), p->data.data());
    dnnl::stream strm(engine());
    dnnl::reorder(src, dst).execute(strm, src, dst);
    strm.wait();
  } catch (const dnnl::error& err) {
    throw Error({.message = std::string("oneDNN cannot pack these weights: ") + err.what(),
                 .got = std::to_string(N) + "x" + std::to_string(K)});
  }
  // Equal descriptors share primitives; a hash of the descriptor's bytes names the layout.
  static std::mutex mu;
  static std::vector<dnnl::memory::desc> seen;
  std::lock_guard<std::mutex> lk(mu);
  auto it = std::find(seen.begin(), seen.end(), p->desc);
  if (it == seen.end()) it = seen.insert(seen.end(), p->desc);
  p->id = 1 + (it - seen.begin());
  return p;
}

}  // namespace

std::shared_ptr<const PackedWeights> pack_weights(const void* w, int64_t N, int64_t K, bool bf16, int64_t rows_hint) {
  return pack(w, N, K, bf16 ? dt::bf16 : dt::f32, rows_hint);
}

std::shared_ptr<const PackedWeights> pack_weights_s8(const int8_t* w, int64_t N, int64_t K, int64_t rows_hint) {
  return pack(w, N, K, dt::s8, rows_hint);
}

bool dnnl_bf16_supported() {
  static const bool ok = [] {
    try {
      MatmulSpec s{.M = 4, .K = 32, .N = 16, .lda = 32, .b_sk = 1, .b_sn = 32, .ldc = 16};
      make_entry(s);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return ok;
}

bool dnnl_int8_vnni_supported() {
  // oneDNN falls back to a reference int8 kernel (hundreds of times slower) where it has no
  // brgemm one; int8 is only worth offering where it runs VNNI.
  static const bool ok = [] {
    if (!isa_allows_avx512() || !__builtin_cpu_supports("avx512vnni")) return false;
    try {
      dnnl::memory::desc a({64, 64}, dt::s8, dnnl::memory::format_tag::ab), c({64, 64}, dt::s32, dnnl::memory::format_tag::ab);
      dnnl::memory::desc any({64, 64}, dt::s8, dnnl::memory::format_tag::any);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, any, c), engine());
      return std::string(pd.impl_info_str()).find("vnni") != std::string::npos;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return ok;
}

}  // namespace pi0::cpu
