#include "backend/cpu/dnnl_matmul.h"

#include <dnnl.hpp>
#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

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
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, int, bool, int64_t>;

struct Entry {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c, bias, scratch;
  size_t scratch_bytes = 0;
};

Entry make_entry(const MatmulSpec& s, const dnnl::memory::desc* packed_b = nullptr) {
  Entry e;
  const dt in = s.bf16 ? dt::bf16 : dt::f32;
  e.a = dnnl::memory::desc({s.M, s.K}, in, dnnl::memory::dims{s.lda, 1});
  e.b = packed_b ? *packed_b : dnnl::memory::desc({s.K, s.N}, in, dnnl::memory::dims{s.b_sk, s.b_sn});
  e.c = dnnl::memory::desc({s.M, s.N}, s.c_bf16 ? dt::bf16 : dt::f32, dnnl::memory::dims{s.ldc, 1});
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

std::mutex g_mu;
std::map<Key, Entry>& cache() {
  static std::map<Key, Entry> m;
  return m;
}

}  // namespace


struct PackedWeights {
  dnnl::memory::desc desc;
  int64_t id = 0;  // distinguishes layouts in the primitive cache
  std::vector<uint8_t> data;
};

namespace {

void run(const MatmulSpec& s, const void* A, const void* B, const dnnl::memory::desc* packed, int64_t packed_id,
         const float* bias, void* C) {
  if (s.M == 0 || s.N == 0) return;
  const Key key{s.M, s.K, s.N, s.lda, packed ? 0 : s.b_sk, packed ? 0 : s.b_sn, s.ldc, s.bf16, s.c_bf16, s.bias,
                static_cast<int>(s.post), s.accumulate, packed_id};
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
  if (scratch.size() < e->scratch_bytes) scratch.resize(e->scratch_bytes);
  dnnl::memory a(e->a, engine(), const_cast<void*>(A)), b(e->b, engine(), const_cast<void*>(B)), c(e->c, engine(), C);
  dnnl::memory sp(e->scratch, engine(), scratch.data());
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}, {DNNL_ARG_SCRATCHPAD, sp}};
  if (s.bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(e->bias, engine(), const_cast<float*>(bias)));
  e->prim.execute(strm, args);
  strm.wait();
}

}  // namespace

void matmul(const MatmulSpec& s, const void* A, const void* B, const float* bias, void* C) {
  run(s, A, B, nullptr, 0, bias, C);
}

void matmul(const MatmulSpec& s, const void* A, const PackedWeights& B, const float* bias, void* C) {
  run(s, A, B.data.data(), &B.desc, B.id, bias, C);
}

std::shared_ptr<const PackedWeights> pack_weights(const void* w, int64_t N, int64_t K, bool bf16, int64_t rows_hint) {
  const dt in = bf16 ? dt::bf16 : dt::f32;
  const int64_t M = std::max<int64_t>(1, rows_hint);
  dnnl::memory::desc a({M, K}, in, dnnl::memory::format_tag::ab), c({M, N}, dt::f32, dnnl::memory::format_tag::ab);
  dnnl::memory::desc plain({K, N}, in, dnnl::memory::dims{1, K});
  dnnl::memory::desc any({K, N}, in, dnnl::memory::format_tag::any);
  auto p = std::make_shared<PackedWeights>();
  try {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, any, c), engine());
    p->desc = pd.weights_desc();
    p->data.resize(p->desc.get_size());
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

}  // namespace pi0::cpu
