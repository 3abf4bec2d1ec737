#include "backend/cpu/dnnl_matmul.h"

#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "pi0/error.h"

namespace pi0::cpu {
namespace {

using dt = dnnl::memory::data_type;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, int, bool>;

struct Entry {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c, bias, scratch;
  size_t scratch_bytes = 0;
};

Entry make_entry(const MatmulSpec& s) {
  Entry e;
  const dt in = s.bf16 ? dt::bf16 : dt::f32;
  e.a = dnnl::memory::desc({s.M, s.K}, in, dnnl::memory::dims{s.lda, 1});
  e.b = dnnl::memory::desc({s.K, s.N}, in, dnnl::memory::dims{s.b_sk, s.b_sn});
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

void matmul(const MatmulSpec& s, const void* A, const void* B, const float* bias, void* C) {
  if (s.M == 0 || s.N == 0) return;
  const Key key{s.M, s.K, s.N, s.lda, s.b_sk, s.b_sn, s.ldc, s.bf16, s.c_bf16, s.bias, static_cast<int>(s.post), s.accumulate};
  const Entry* e;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = cache().find(key);
    if (it == cache().end()) {
      try {
        it = cache().emplace(key, make_entry(s)).first;
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
