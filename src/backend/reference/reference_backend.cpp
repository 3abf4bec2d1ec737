// The reference backend: plain fp32 loops that follow docs/model.md §2 literally. It is the truth every
// faster backend is measured against, so clarity wins over speed here; the only concession is
// splitting independent rows/columns over the thread pool. Reductions over a row (norm
// statistics, softmax sums) accumulate in double so the reference stays closer to the float64
// golden vectors than any fast backend needs to be.
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/ops.h"
#include "backend/reference/reference_backend.h"
#include "pi0/error.h"
#include "pi0/threads.h"

namespace pi0 {
namespace {

class RefLinear : public LinearWeight {
 public:
  Tensor w;               // [out, in], any float dtype, possibly a view of the map
  std::vector<float> b;   // empty when there is no bias
  // Row j of W as f32 (converted into `buf` unless W is already f32).
  const float* row(int64_t j, std::vector<float>& buf) const {
    if (w.dtype() == DType::F32) return w.data<float>() + j * in;
    buf.resize(static_cast<size_t>(in));
    for (int64_t k = 0; k < in; ++k) buf[k] = w.get_f32(j * in + k);
    return buf.data();
  }
};

float gelu_tanh(float x) {
  const float c = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * x * (1.f + std::tanh(c * (x + 0.044715f * x * x * x)));
}
float silu(float x) { return x / (1.f + std::exp(-x)); }
float apply(Epilogue ep, float x) {
  switch (ep) {
    case Epilogue::None: return x;
    case Epilogue::GeluTanh: return gelu_tanh(x);
    case Epilogue::Silu: return silu(x);
  }
  return x;
}

void check_linear(const Mat& x, const LinearWeight& w, const Mat& y) {
  if (x.cols != w.in || y.cols != w.out || x.rows != y.rows)
    throw Error({.message = "internal: linear shape mismatch",
                 .expected = "x [M," + std::to_string(w.in) + "] -> y [M," + std::to_string(w.out) + "]",
                 .got = "x [" + std::to_string(x.rows) + "," + std::to_string(x.cols) + "] y [" +
                        std::to_string(y.rows) + "," + std::to_string(y.cols) + "]"});
}

class ReferenceBackend : public Backend {
 public:
  std::string name() const override { return "reference"; }
  std::string precision_reason() const override { return "f32 (reference backend: plain f32 loops)"; }

  std::unique_ptr<LinearWeight> prepare_linear(const Tensor& w, const Tensor* bias, int64_t, bool) override {
    auto r = std::make_unique<RefLinear>();
    r->out = w.dim(0);
    r->in = w.numel() / r->out;  // conv kernels [O, C, p, p] are used as [O, C·p·p]
    r->w = w.owned();  // never read the checkpoint's map after load
    if (bias) {
      r->b = bias->to_f32_vector();
      r->has_bias = true;
    }
    return r;
  }

  void linear(const Mat& x, const LinearWeight& lw, const Mat& y, Epilogue ep, bool accumulate) override {
    check_linear(x, lw, y);
    const auto& w = static_cast<const RefLinear&>(lw);
    parallel_for(w.out, [&](int64_t j0, int64_t j1) {
      std::vector<float> buf;
      for (int64_t j = j0; j < j1; ++j) {
        const float* wr = w.row(j, buf);
        for (int64_t i = 0; i < x.rows; ++i) {
          const float* xr = x.row(i);
          float acc = 0.f;
          for (int64_t k = 0; k < w.in; ++k) acc += xr[k] * wr[k];
          if (w.has_bias) acc += w.b[j];
          if (accumulate) y.row(i)[j] += acc;
          else y.row(i)[j] = apply(ep, acc);
        }
      }
    });
  }

  void mlp_geglu(const Mat& x, const LinearWeight& gate, const LinearWeight& up, const LinearWeight& down,
                 const Mat& gate_buf, const Mat& up_buf, const Mat& y, bool accumulate) override {
    linear(x, gate, gate_buf, Epilogue::GeluTanh, false);
    linear(x, up, up_buf, Epilogue::None, false);
    for (int64_t i = 0; i < x.rows; ++i)
      for (int64_t j = 0; j < gate_buf.cols; ++j) gate_buf.row(i)[j] *= up_buf.row(i)[j];
    linear(gate_buf, down, y, Epilogue::None, accumulate);
  }

  void layer_norm(const Mat& x, const float* w, const float* b, float eps, const Mat& y) override {
    parallel_for(x.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        const float* xr = x.row(i);
        double mean = 0, var = 0;
        for (int64_t k = 0; k < x.cols; ++k) mean += xr[k];
        mean /= static_cast<double>(x.cols);
        for (int64_t k = 0; k < x.cols; ++k) var += (xr[k] - mean) * (xr[k] - mean);
        var /= static_cast<double>(x.cols);
        const double inv = 1.0 / std::sqrt(var + eps);
        float* yr = y.row(i);
        for (int64_t k = 0; k < x.cols; ++k) yr[k] = static_cast<float>((xr[k] - mean) * inv) * w[k] + b[k];
      }
    });
  }

  void rms_norm(const Mat& x, const float* scale, const float* shift, float eps, const Mat& y) override {
    parallel_for(x.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        const float* xr = x.row(i);
        double ss = 0;
        for (int64_t k = 0; k < x.cols; ++k) ss += static_cast<double>(xr[k]) * xr[k];
        const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(x.cols) + eps));
        float* yr = y.row(i);
        for (int64_t k = 0; k < x.cols; ++k) {
          float v = xr[k] * inv * (1.f + scale[k]);
          yr[k] = shift ? v + shift[k] : v;
        }
      }
    });
  }

  void rope(const Mat& x, int heads, int head_dim, const int32_t* pos, double theta) override {
    const int half = head_dim / 2;
    parallel_for(x.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        for (int f = 0; f < half; ++f) {
          const double angle = pos[i] * std::pow(theta, -2.0 * f / head_dim);
          const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
          for (int h = 0; h < heads; ++h) {
            float* v = x.row(i) + static_cast<int64_t>(h) * head_dim;
            const float a = v[f], b = v[f + half];
            v[f] = a * c - b * s;
            v[f + half] = b * c + a * s;
          }
        }
      }
    });
  }

  void attention(const Mat& q, const Mat& k, const Mat& v, const AttentionMask& m, const AttentionShape& s,
                 const Mat& out) override {
    const int64_t T = q.rows, S = k.rows, Hd = s.head_dim;
    const int group = s.num_heads / s.num_kv_heads;
    parallel_for(T * s.num_heads, [&](int64_t w0, int64_t w1) {
      thread_local std::vector<float> logits;  // grows once; the denoise loop allocates nothing
      if (logits.size() < static_cast<size_t>(S)) logits.resize(static_cast<size_t>(S));
      for (int64_t w = w0; w < w1; ++w) {
        const int64_t i = w / s.num_heads;
        const int h = static_cast<int>(w % s.num_heads), kvh = h / group;
        const float* qh = q.row(i) + h * Hd;
        float mx = -INFINITY;
        for (int64_t j = 0; j < S; ++j) {
          const float* kh = k.row(j) + kvh * Hd;
          float dot = 0.f;
          for (int64_t d = 0; d < Hd; ++d) dot += qh[d] * kh[d];
          float l = dot * s.scale;
          const bool ok = (!m.q_valid || m.q_valid[i]) && (!m.k_valid || m.k_valid[j]) &&
                          (m.k_group ? m.k_group[j] : 0) <= (m.q_group ? m.q_group[i] : 0);
          if (!ok) l += m.mask_value;
          logits[j] = l;
          mx = std::max(mx, l);
        }
        double sum = 0;
        for (int64_t j = 0; j < S; ++j) {
          logits[j] = std::exp(logits[j] - mx);
          sum += logits[j];
        }
        float* oh = out.row(i) + h * Hd;
        for (int64_t d = 0; d < Hd; ++d) oh[d] = 0.f;
        for (int64_t j = 0; j < S; ++j) {
          const float p = static_cast<float>(logits[j] / sum);
          const float* vh = v.row(j) + kvh * Hd;
          for (int64_t d = 0; d < Hd; ++d) oh[d] += p * vh[d];
        }
      }
    });
  }

  void activation(const Mat& x, Epilogue ep) override {
    for (int64_t i = 0; i < x.rows; ++i)
      for (int64_t j = 0; j < x.cols; ++j) x.row(i)[j] = apply(ep, x.row(i)[j]);
  }

  void add(const Mat& y, const Mat& x, const float* col_scale) override {
    for (int64_t i = 0; i < y.rows; ++i)
      for (int64_t j = 0; j < y.cols; ++j) y.row(i)[j] += col_scale ? x.row(i)[j] * col_scale[j] : x.row(i)[j];
  }
};

}  // namespace

std::unique_ptr<Backend> make_reference_backend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace pi0
