#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/gemm_avx512bf16.h"
#include "backend/cpu/int8_linear.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/precision_probe.h"
#include "pi0/error.h"
#include "pi0/log.h"
#include "pi0/threads.h"

namespace pi0 {
namespace {

using cpu::MatmulSpec;
using cpu::Post;

// Weights in the GEMM's input dtype: bf16 (a view of a bf16 checkpoint, or converted once from
// f32), f32, or s8 (int8 precision).
class CpuLinear : public LinearWeight {
 public:
  Tensor w;                                        // plain [out, in] (unused once packed)
  std::shared_ptr<const cpu::PackedWeights> packed;  // oneDNN's blocked layout
  bool tiny = false;                                 // the hand-written kernel on the calling thread
  std::unique_ptr<cpu::Int8Weights> int8;            // set: this layer runs in int8
  bool merged = false;  // a GeGLU up whose weights pair_geglu moved into its gate (int8->geglu_cols)
  std::vector<float> bias;
};

// What the backend computes in: the GEMM type, and the float type of attention and of the layers
// int8 leaves in float (the probe's faster one).
struct Resolved {
  Precision gemm = Precision::F32;
  bool float_bf16 = false;
  std::string reason;
};

Resolved resolve(Precision want) {
  const bool bf16_ok = cpu::dnnl_bf16_supported();
  const std::string where = cpu::isa_allows_avx512() ? "this CPU" : "PI0_CPU_ISA=avx2";
  // The probe runs only where there is a choice to make.
  const PrecisionChoice fl = bf16_ok ? choose_precision(cpu::probe_float_gemms())
                                     : PrecisionChoice{Precision::F32, "auto: f32 (no bf16 matmul on " + where + ")"};
  switch (want) {
    case Precision::Auto: return {fl.precision, fl.precision == Precision::BF16, fl.reason};
    case Precision::BF16:
      if (!bf16_ok)
        throw Error({.message = "bf16 needs oneDNN's bf16 matmul (AVX-512), which " + where + " does not allow",
                     .field = "precision", .expected = "auto | f32 | int8", .got = "bf16"});
      return {Precision::BF16, true, "bf16 (requested)"};
    case Precision::F32:
      return {Precision::F32, false, cpu::isa_allows_avx512() ? "f32 (requested)" : "f32 (requested; oneDNN capped at AVX2)"};
    case Precision::Int8: {
      const cpu::Int8Support i8 = cpu::int8_support();
      if (!i8.ok)
        throw Error({.message = "int8 needs AVX512-VNNI, AVX-VNNI or AVX2 with FMA (our int8 kernels); " + where +
                                    " has " + i8.why,
                     .field = "precision", .expected = "auto | f32", .got = "int8"});
      const bool naive = cpu::int8_scheme_from_env() == cpu::Int8Scheme::Naive;
      const bool hand = i8.kernel != cpu::Int8Kernel::OneDnnVnni;
      return {Precision::Int8, fl.precision == Precision::BF16,
              std::string("int8 (requested; W8A8 per-channel/per-token") + (naive ? ", naive" : ", Hadamard-rotated") + ", " +
                  i8.why + " kernel; attention, heads" + (hand ? "" : " and small-M layers") + " in " +
                  precision_name(fl.precision) + ", " + fl.reason + ")"};
    }
  }
  return {};
}

// The action/state/time heads: layers whose typical product has at most this many multiply-adds
// over weights of at most this many elements. bench/bench_gemm.cpp: there the hand-written kernel
// matches oneDNN's speed and, running on the calling thread (gemm_bf16_nk's rule for small
// products), skips the thread team's fork/join, which costs more than the product itself
// (milliseconds when the cores are shared with other work).
constexpr int64_t kTinyMacs = 2 << 20, kTinyWeights = 1 << 20;

Post post_of(Epilogue ep) {
  switch (ep) {
    case Epilogue::None: return Post::None;
    case Epilogue::GeluTanh: return Post::GeluTanh;
    case Epilogue::Silu: return Post::Silu;
  }
  return Post::None;
}

// Rows per parallel chunk for a row-wise op over `cols` values per row: at least ~32 Ki values
// per chunk, so the small ops of the denoise loop (51 rows of 1024) run on the calling thread. A
// fork/join costs more than they do, and far more when a team member is descheduled because the
// cores are shared.
int64_t row_grain(int64_t cols, int64_t per_value = 1) {
  return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, cols * per_value));
}

// Grow-only scratch of the calling thread: after the first call of a shape nothing allocates.
template <class T>
T* scratch(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// cos/sin of RoPE angles per (theta, head_dim) and position, built on first use. Rows live in
// fixed blocks that never move, so a pointer handed out stays valid while other threads (other
// ops, concurrent model calls) grow the table.
class RopeTable {
 public:
  void get(double theta, int head_dim, int32_t pos, const float** c, const float** s) {
    std::lock_guard<std::mutex> lk(mu_);
    auto& blocks = tables_[{theta, head_dim}];
    const int half = head_dim / 2;
    const size_t b = static_cast<size_t>(pos) / kRows;
    while (blocks.size() <= b) {
      const int64_t first = static_cast<int64_t>(blocks.size()) * kRows;
      auto blk = std::make_unique<float[]>(2 * kRows * half);  // cos rows, then sin rows
      for (int64_t r = 0; r < kRows; ++r)
        for (int f = 0; f < half; ++f) {
          const double ang = static_cast<double>(first + r) * std::pow(theta, -2.0 * f / head_dim);
          blk[r * half + f] = static_cast<float>(std::cos(ang));
          blk[(kRows + r) * half + f] = static_cast<float>(std::sin(ang));
        }
      blocks.push_back(std::move(blk));
    }
    const int64_t r = pos % kRows;
    *c = blocks[b].get() + r * half;
    *s = blocks[b].get() + (kRows + r) * half;
  }

 private:
  static constexpr int64_t kRows = 64;
  std::mutex mu_;
  std::map<std::pair<double, int>, std::vector<std::unique_ptr<float[]>>> tables_;
};

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& opt)
      : res_(resolve(opt.precision)), bf16_(res_.float_bf16), int8_(res_.gemm == Precision::Int8),
        scheme_(int8_ ? cpu::int8_scheme_from_env() : cpu::Int8Scheme::Hadamard),
        int8_kernel_(int8_ ? cpu::int8_support().kernel : cpu::Int8Kernel::HandAvx2),
        // Our kernels have no small-M penalty (pi0_bench_gemm on an AVX2 Zen 3: 250-285 GOP/s at
        // M = 51 as at M = 816, 3x oneDNN's f32 there; 1 x 1024 -> 3072 in 0.035 ms against
        // 0.116), so with them every GEMM layer runs in int8, π0.5's one-row adaRMS modulation too
        // (0.47 GB of f32 weights otherwise). oneDNN's int8 keeps its measured threshold.
        int8_min_rows_(int8_kernel_ != cpu::Int8Kernel::OneDnnVnni ? 1 : std::max<int64_t>(2, opt.int8_min_rows)) {}
  std::string name() const override { return "cpu"; }
  Precision precision() const override { return res_.gemm; }
  std::string precision_reason() const override { return res_.reason; }

  std::unique_ptr<LinearWeight> prepare_linear(const Tensor& w, const Tensor* bias, int64_t rows_hint, bool head) override {
    auto r = std::make_unique<CpuLinear>();
    r->out = w.dim(0);
    r->in = w.numel() / r->out;
    const bool small = rows_hint > 0 && rows_hint * r->out * r->in <= kTinyMacs && r->out * r->in <= kTinyWeights;
    // int8: every GEMM layer but the heads; with oneDNN's kernel also not the one-row products
    // (adaRMS modulation) nor the small-M ones (BackendOptions::int8_min_rows), which it runs slowly.
    if (int8_ && !head && rows_hint >= int8_min_rows_) {
      r->int8 = std::make_unique<cpu::Int8Weights>(cpu::quantize_weights(w, rows_hint, scheme_, int8_kernel_));
      w.release_mapped_pages();  // the s8 copy is all the GEMMs read
    } else {
      const DType want = bf16_ ? DType::BF16 : DType::F32;
      // An owned copy either way: after load nothing reads the checkpoint's map (a file rewritten
      // under a running server must not change its weights, nor a truncated one crash it).
      r->w = (w.dtype() == want ? w.owned() : w.to(want)).reshaped({r->out, r->in});
      r->tiny = bf16_ && cpu::has_avx512_bf16() && small;
    }
    // Every other layer is reordered once into oneDNN's blocked layout for its typical row count
    // (pi0_bench_gemm, README "GEMM kernels": +6% to +37% over the stored layout on every π0
    // shape), paid for at load: ≈ 2.3 GB/s plus first touch of the new pages.
    if (!r->int8 && !r->tiny && rows_hint > 0) {
      r->packed = cpu::pack_weights(r->w.raw(), r->out, r->in, bf16_, rows_hint);
      w.release_mapped_pages();  // the packed copy is all the GEMMs read: keep RSS to one copy
      r->w = Tensor();
    }
    if (bias) {
      r->bias = bias->to_f32_vector();
      r->has_bias = true;
    }
    return r;
  }

  void linear(const Mat& x, const LinearWeight& lw, const Mat& y, Epilogue ep, bool accumulate) override {
    const auto& w = static_cast<const CpuLinear&>(lw);
    check(x, w, y);
    check_single(w);
    if (w.int8) return cpu::int8_linear(x, *w.int8, w.has_bias ? w.bias.data() : nullptr, post_of(ep), accumulate, y);
    const void* a = convert_input(x, a_buf_);
    gemm(a, x.rows, w, y.data, y.ld, false, post_of(ep), accumulate);
  }

  // Q, K and V: with int8 the rows are rotated and quantised once for the three (a third of the
  // cost each: 0.3-0.5 ms per VLM layer), in bf16 converted once.
  void linears(const Mat& x, std::span<const LinearWeight* const> ws, std::span<const Mat> ys) override {
    const auto& w0 = static_cast<const CpuLinear&>(*ws[0]);
    bool all_int8 = true, all_float = true;
    for (size_t i = 0; i < ws.size(); ++i) {
      const auto& w = static_cast<const CpuLinear&>(*ws[i]);
      check(x, w, ys[i]);
      check_single(w);
      all_int8 = all_int8 && w.int8 && w0.int8 && cpu::same_quantized_input(*w0.int8, *w.int8);
      all_float = all_float && !w.int8;
    }
    if (all_int8) {
      const cpu::QuantizedRows a = cpu::quantize_rows(x, *w0.int8);
      for (size_t i = 0; i < ws.size(); ++i) {
        const auto& w = static_cast<const CpuLinear&>(*ws[i]);
        cpu::int8_product(a, *w.int8, w.has_bias ? w.bias.data() : nullptr, Post::None, false, ys[i]);
      }
      return;
    }
    if (!all_float) return Backend::linears(x, ws, ys);
    const void* a = convert_input(x, a_buf_);
    for (size_t i = 0; i < ws.size(); ++i) {
      const auto& w = static_cast<const CpuLinear&>(*ws[i]);
      gemm(a, x.rows, w, ys[i].data, ys[i].ld, false, Post::None, false);
    }
  }

  // int8 on the VNNI kernel: gate and up become one product whose epilogue computes gelu(gate) ⊙ up
  // (cpu::merge_geglu): one quantisation of the input, and no [M, F] f32 gate buffer written and
  // read back (53 MB per VLM layer for π0).
  void pair_geglu(LinearWeight& gate, LinearWeight& up) override {
    auto& g = static_cast<CpuLinear&>(gate);
    auto& u = static_cast<CpuLinear&>(up);
    if (!g.int8 || !u.int8 || g.has_bias || u.has_bias || !cpu::can_merge_geglu(*g.int8, *u.int8)) return;
    g.int8 = std::make_unique<cpu::Int8Weights>(cpu::merge_geglu(*g.int8, *u.int8));
    u.int8.reset();
    u.merged = true;
  }

  void mlp_geglu(const Mat& x, const LinearWeight& gate, const LinearWeight& up, const LinearWeight& down,
                 const Mat& gate_buf, const Mat& up_buf, const Mat& y, bool accumulate) override {
    const auto& g = static_cast<const CpuLinear&>(gate);
    const auto& u = static_cast<const CpuLinear&>(up);
    const auto& d = static_cast<const CpuLinear&>(down);
    const int64_t M = x.rows, F = g.out;
    if (g.int8 && g.int8->geglu_cols > 0) {  // a merged pair (pair_geglu): one product
      if (!u.merged || x.cols != g.in || up_buf.cols != F || up_buf.rows != M)
        throw Error(std::string("internal: mlp_geglu with a merged gate needs its own up and [M, F] scratch"));
      if (d.int8) {  // gelu(gate) ⊙ up as bf16 in the caller's f32 scratch, straight into down's quantiser
        auto* h = reinterpret_cast<uint16_t*>(up_buf.data);
        cpu::int8_geglu_bf16(x, *g.int8, h, F);
        check(up_buf, d, y);
        check_single(d);
        const cpu::QuantizedRows a = cpu::quantize_rows_bf16(h, M, F, *d.int8);
        cpu::int8_product(a, *d.int8, d.has_bias ? d.bias.data() : nullptr, Post::None, accumulate, y);
        return;
      }
      cpu::int8_linear(x, *g.int8, nullptr, Post::None, false, up_buf);
      linear(up_buf, d, y, Epilogue::None, accumulate);
      return;
    }
    if (g.int8 || u.int8 || d.int8) {  // f32 intermediates
      if (g.int8 && u.int8 && cpu::same_quantized_input(*g.int8, *u.int8)) {  // x quantised once for both
        check(x, g, gate_buf);
        check(x, u, up_buf);
        const cpu::QuantizedRows a = cpu::quantize_rows(x, *g.int8);
        cpu::int8_product(a, *g.int8, g.has_bias ? g.bias.data() : nullptr, Post::GeluTanh, false, gate_buf);
        // up's epilogue multiplies by gelu(gate): no separate pass over [M, F]
        cpu::int8_product(a, *u.int8, u.has_bias ? u.bias.data() : nullptr, Post::None, false, up_buf, &gate_buf);
        linear(up_buf, d, y, Epilogue::None, accumulate);
        return;
      }
      linear(x, g, gate_buf, Epilogue::GeluTanh, false);
      if (u.int8) {  // up's epilogue multiplies by gelu(gate): no separate pass over [M, F]
        cpu::int8_linear(x, *u.int8, u.has_bias ? u.bias.data() : nullptr, cpu::Post::None, false, up_buf, &gate_buf);
        linear(up_buf, d, y, Epilogue::None, accumulate);
        return;
      }
      linear(x, u, up_buf, Epilogue::None, false);
      multiply_rows(gate_buf, up_buf);
      linear(gate_buf, d, y, Epilogue::None, accumulate);
      return;
    }
    const void* a = convert_input(x, a_buf_);
    if (!bf16_) {
      gemm(a, M, g, gate_buf.data, gate_buf.ld, false, Post::GeluTanh, false);
      gemm(a, M, u, up_buf.data, up_buf.ld, false, Post::None, false);
      multiply_rows(gate_buf, up_buf);
      gemm(gate_buf.data, M, d, y.data, y.ld, false, Post::None, accumulate, gate_buf.ld);
      return;
    }
    // bf16 intermediates live in the caller's f32 scratch (half its bytes): gelu(gate) and up come
    // out of the GEMMs as bf16, their product feeds the down projection directly.
    auto* gb = reinterpret_cast<uint16_t*>(gate_buf.data);
    auto* ub = reinterpret_cast<uint16_t*>(up_buf.data);
    gemm(a, M, g, gb, F, true, Post::GeluTanh, false);
    gemm(a, M, u, ub, F, true, Post::None, false);
    parallel_for(M, [&](int64_t r0, int64_t r1) { cpu::mul_bf16(gb + r0 * F, ub + r0 * F, (r1 - r0) * F, gb + r0 * F); }, row_grain(F));
    gemm(gb, M, d, y.data, y.ld, false, Post::None, accumulate, F);
  }

  void layer_norm(const Mat& x, const float* w, const float* b, float eps, const Mat& y) override {
    parallel_for(x.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) cpu::layer_norm_row(x.row(r), x.cols, w, b, eps, y.row(r));
    }, row_grain(x.cols));
  }

  void rms_norm(const Mat& x, const float* scale, const float* shift, float eps, const Mat& y) override {
    parallel_for(x.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) cpu::rms_norm_row(x.row(r), x.cols, scale, shift, eps, y.row(r));
    }, row_grain(x.cols));
  }

  void rope(const Mat& x, int heads, int head_dim, const int32_t* pos, double theta) override {
    const int half = head_dim / 2;
    parallel_for(x.rows, [&](int64_t r0, int64_t r1) {
      std::vector<float> own;
      for (int64_t r = r0; r < r1; ++r) {
        const float *c, *s;
        if (pos[r] >= 0) {
          rope_.get(theta, head_dim, pos[r], &c, &s);
        } else {  // a masked first token (position −1): rare, computed directly
          own.resize(2 * half);
          for (int f = 0; f < half; ++f) {
            const double a = pos[r] * std::pow(theta, -2.0 * f / head_dim);
            own[f] = static_cast<float>(std::cos(a));
            own[half + f] = static_cast<float>(std::sin(a));
          }
          c = own.data();
          s = own.data() + half;
        }
        for (int h = 0; h < heads; ++h) {
          float* v = x.row(r) + static_cast<int64_t>(h) * head_dim;
#pragma omp simd
          for (int f = 0; f < half; ++f) {
            const float a = v[f], b = v[f + half];
            v[f] = a * c[f] - b * s[f];
            v[f + half] = b * c[f] + a * s[f];
          }
        }
      }
    }, row_grain(x.cols));
  }

  // Blocked attention: per KV head, the queries of its head group are stacked into one matrix
  // (MQA: the 8 heads share every K/V row load), so logits and P·V are two GEMMs per block of
  // queries, and only one block of scores per thread ever exists. Work items (KV head, query
  // block) run in parallel, each on one thread with serial GEMMs: two parallel regions per call
  // whatever the head count, which keeps the many small vision heads cheap.
  void attention(const Mat& q, const Mat& k, const Mat& v, const AttentionMask& m, const AttentionShape& sh,
                 const Mat& out) override {
    const int64_t T = q.rows, S = k.rows, Hd = sh.head_dim, Kh = sh.num_kv_heads, G = sh.num_heads / Kh;
    // Blocks of ≤ 256 stacked query rows, as many work items as a multiple of the team size and of
    // near-equal size: the denoise loop's 51 queries × 8 heads become 2 × 204 rows, not 256 + 152.
    const int64_t nt = num_threads();
    int64_t items = Kh * ((T * G + 255) / 256);
    items = (items + nt - 1) / nt * nt;
    const int64_t want = std::min<int64_t>(T, std::max<int64_t>(1, (items + Kh - 1) / Kh));
    const int64_t Tb = (T + want - 1) / want;
    const int64_t blocks = (T + Tb - 1) / Tb;
    const size_t esz = bf16_ ? 2 : 4;
    // K and V of every KV head in the GEMM dtype, head-major: [Kh][S][Hd].
    auto* kb = reinterpret_cast<char*>(scratch(kb_, (Kh * S * Hd * esz + 3) / 4));
    auto* vb = reinterpret_cast<char*>(scratch(vb_, (Kh * S * Hd * esz + 3) / 4));
    parallel_for(S, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t g = 0; g < Kh; ++g) {
          store(kb, (g * S + j) * Hd, k.row(j) + g * Hd, Hd, 1.f);
          store(vb, (g * S + j) * Hd, v.row(j) + g * Hd, Hd, 1.f);
        }
    }, row_grain(2 * Kh * Hd));
    parallel_for(Kh * blocks, [&](int64_t w0, int64_t w1) {
      thread_local std::vector<float> qbuf, lbuf, pbuf, obuf;
      for (int64_t w = w0; w < w1; ++w) {
        const int64_t g = w / blocks, t0 = (w % blocks) * Tb, tb = std::min(Tb, T - t0), R = tb * G;
        auto* qb = reinterpret_cast<char*>(scratch(qbuf, (R * Hd * esz + 3) / 4));
        float* logits = scratch(lbuf, R * S);
        auto* pb = reinterpret_cast<char*>(scratch(pbuf, (R * S * esz + 3) / 4));
        float* ob = scratch(obuf, R * Hd);
        for (int64_t r = 0; r < R; ++r) store(qb, r * Hd, q.row(t0 + r / G) + (g * G + r % G) * Hd, Hd, sh.scale);
        const char* kg = kb + g * S * Hd * esz;
        const char* vg = vb + g * S * Hd * esz;
        MatmulSpec qk{.M = R, .K = Hd, .N = S, .lda = Hd, .b_sk = 1, .b_sn = Hd, .ldc = S, .bf16 = bf16_};
        cpu::matmul(qk, qb, kg, nullptr, logits);
        for (int64_t r = 0; r < R; ++r) {
          const int64_t i = t0 + r / G;
          float* l = logits + r * S;
          const bool qv = !m.q_valid || m.q_valid[i];
          float mx;
          if (qv) {
            mx = cpu::mask_max_row(l, S, m.k_valid, m.k_group, m.q_group ? m.q_group[i] : 0, m.mask_value);
          } else {  // a padded query: every key masked, a uniform row (as the reference computes it)
            std::fill(l, l + S, m.mask_value);
            mx = m.mask_value;
          }
          const float sum = cpu::exp_sum_row(l, S, mx);
          store(pb, r * S, l, S, 1.f / sum);
        }
        MatmulSpec pv{.M = R, .K = S, .N = Hd, .lda = S, .b_sk = Hd, .b_sn = 1, .ldc = Hd, .bf16 = bf16_};
        cpu::matmul(pv, pb, vg, nullptr, ob);
        for (int64_t r = 0; r < R; ++r)
          std::memcpy(out.row(t0 + r / G) + (g * G + r % G) * Hd, ob + r * Hd, sizeof(float) * Hd);
      }
    });
  }

  void activation(const Mat& x, Epilogue ep) override {
    parallel_for(x.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t j = 0; j < x.cols; ++j) {
          float& z = x.row(r)[j];
          if (ep == Epilogue::GeluTanh) z = 0.5f * z * (1.f + std::tanh(0.7978845608028654f * (z + 0.044715f * z * z * z)));
          else if (ep == Epilogue::Silu) z = z / (1.f + std::exp(-z));
        }
    }, row_grain(x.cols, 16));
  }

  void add(const Mat& y, const Mat& x, const float* col_scale) override {
    parallel_for(y.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        float* yr = y.row(r);
        const float* xr = x.row(r);
        if (col_scale) {
#pragma omp simd
          for (int64_t j = 0; j < y.cols; ++j) yr[j] += xr[j] * col_scale[j];
        } else {
#pragma omp simd
          for (int64_t j = 0; j < y.cols; ++j) yr[j] += xr[j];
        }
      }
    }, row_grain(y.cols));
  }

 private:
  // g ⊙= u over [rows, cols] (GeGLU's product in f32).
  static void multiply_rows(const Mat& g, const Mat& u) {
    parallel_for(g.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
#pragma omp simd
        for (int64_t j = 0; j < g.cols; ++j) g.row(r)[j] *= u.row(r)[j];
    }, row_grain(g.cols));
  }

  // n floats from src, times s, into element idx of a buffer of the GEMM dtype.
  void store(char* dst, int64_t idx, const float* src, int64_t n, float s) const {
    if (bf16_) cpu::to_bf16_scaled(src, n, s, reinterpret_cast<uint16_t*>(dst) + idx);
    else for (int64_t i = 0; i < n; ++i) reinterpret_cast<float*>(dst)[idx + i] = src[i] * s;
  }

  // A merged GeGLU pair is one product only mlp_geglu computes.
  static void check_single(const CpuLinear& w) {
    if (w.merged || (w.int8 && w.int8->geglu_cols > 0))
      throw Error(std::string("internal: a merged GeGLU gate/up weight used as a plain linear layer"));
  }

  static void check(const Mat& x, const CpuLinear& w, const Mat& y) {
    if (x.cols != w.in || y.cols != w.out || x.rows != y.rows)
      throw Error({.message = "internal: linear shape mismatch",
                   .expected = "x [M," + std::to_string(w.in) + "] -> y [M," + std::to_string(w.out) + "]",
                   .got = "x [" + std::to_string(x.rows) + "," + std::to_string(x.cols) + "] y [" +
                          std::to_string(y.rows) + "," + std::to_string(y.cols) + "]"});
  }

  // The activation in the GEMM's input dtype (bf16 copy, or the f32 rows themselves).
  const void* convert_input(const Mat& x, std::vector<uint16_t>& buf) {
    if (!bf16_) {
      if (x.ld == x.cols) return x.data;
      auto* f = reinterpret_cast<float*>(scratch(buf, 2 * x.rows * x.cols));
      for (int64_t r = 0; r < x.rows; ++r) std::memcpy(f + r * x.cols, x.row(r), sizeof(float) * x.cols);
      return f;
    }
    uint16_t* a = scratch(buf, x.rows * x.cols);
    // Inputs under ~64 Ki values convert on this thread: a fork/join would cost more.
    parallel_for(x.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) cpu::to_bf16(x.row(r), x.cols, a + r * x.cols);
    }, std::max<int64_t>(4, (int64_t{1} << 16) / std::max<int64_t>(1, x.cols)));
    return a;
  }

  void gemm(const void* a, int64_t M, const CpuLinear& w, void* c, int64_t ldc, bool c_bf16, Post post, bool accumulate,
            int64_t lda = -1) {
    MatmulSpec s{.M = M, .K = w.in, .N = w.out, .lda = lda < 0 ? w.in : lda, .b_sk = 1, .b_sn = w.in, .ldc = ldc,
                 .bf16 = bf16_, .c_bf16 = c_bf16, .bias = w.has_bias, .post = post, .accumulate = accumulate};
    const float* b = w.has_bias ? w.bias.data() : nullptr;
    if (w.tiny) cpu::gemm_bf16_nk(s, static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(w.w.raw()), b, c);
    else if (w.packed) cpu::matmul(s, a, *w.packed, b, c);
    else cpu::matmul(s, a, w.w.raw(), b, c);
  }

  const Resolved res_;
  const bool bf16_;  // float GEMMs and attention in bf16 (else f32)
  const bool int8_;  // GEMM layers in int8 where prepare_linear quantised them
  const cpu::Int8Scheme scheme_;
  const cpu::Int8Kernel int8_kernel_;
  const int64_t int8_min_rows_;
  RopeTable rope_;
  // Per calling thread, so concurrent model calls never share scratch.
  static thread_local std::vector<uint16_t> a_buf_;
  static thread_local std::vector<float> kb_, vb_;
};

thread_local std::vector<uint16_t> CpuBackend::a_buf_;
thread_local std::vector<float> CpuBackend::kb_, CpuBackend::vb_;

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options) { return std::make_unique<CpuBackend>(options); }

}  // namespace pi0
