// The small interface the model calls. `model/` says *what* is computed, once; a Backend says
// *how*. Activations are row-major f32 matrices owned by the model; weights are prepared by the
// backend once at load (converted, packed) and are opaque to the model. Nothing here knows π0.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/precision.h"
#include "pi0/tensor.h"

namespace pi0 {

// A row-major f32 matrix view: `rows` x `cols`, rows `ld` floats apart.
struct Mat {
  float* data = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;
  float* row(int64_t i) const { return data + i * ld; }
  Mat rows_view(int64_t begin, int64_t count) const { return {data + begin * ld, count, cols, ld}; }
  Mat cols_view(int64_t begin, int64_t count) const { return {data + begin, rows, count, ld}; }
};

// A prepared linear layer y = x·Wᵀ + b, W stored [out, in] as in the checkpoint.
class LinearWeight {
 public:
  virtual ~LinearWeight() = default;
  int64_t out = 0, in = 0;
  bool has_bias = false;
};

enum class Epilogue { None, GeluTanh, Silu };

// Which keys a query may attend (docs/model.md §2.5): allowed(i, j) = q_valid[i] && k_valid[j] &&
// k_group[j] <= q_group[i], where group is the cumulative AR count. Disallowed logits get
// `mask_value` added (finite, as openpi: a query with no allowed key gets a uniform softmax).
// A null q_valid means every query is valid; null groups mean all zero (bidirectional).
struct AttentionMask {
  const uint8_t* q_valid = nullptr;
  const int32_t* q_group = nullptr;
  const uint8_t* k_valid = nullptr;
  const int32_t* k_group = nullptr;
  float mask_value = -2.3819763e38f;
};

struct AttentionShape {
  int num_heads = 0, num_kv_heads = 0, head_dim = 0;
  float scale = 1.f;  // logits = q·k · scale
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // The compute type of the matrix products, resolved (never Auto), and one line saying why
  // (printed when a model loads).
  virtual Precision precision() const { return Precision::F32; }
  virtual std::string precision_reason() const { return "f32"; }

  // Called once per weight at load. `bias` may be null. The tensors may be F32/BF16/F16 views
  // into a memory map that outlives the backend's weights. `rows_hint` is how many rows the
  // layer typically sees (0: unknown), so a backend can pick a layout for small-M products.
  // `head`: one of the model's input/output heads (action, state, time MLP), which a backend
  // computing in int8 keeps in float (they set the scale of everything downstream).
  virtual std::unique_ptr<LinearWeight> prepare_linear(const Tensor& w, const Tensor* bias, int64_t rows_hint = 0,
                                                       bool head = false) = 0;

  // y = epilogue(x·Wᵀ + b), or y += x·Wᵀ + b when `accumulate` (fused residual; epilogue None).
  virtual void linear(const Mat& x, const LinearWeight& w, const Mat& y, Epilogue ep = Epilogue::None,
                      bool accumulate = false) = 0;

  // ys[i] = x·W_iᵀ + b_i for products that read the same input (Q, K and V of a layer): a backend
  // may convert or quantise x once for all of them. The default runs them one by one.
  virtual void linears(const Mat& x, std::span<const LinearWeight* const> ws, std::span<const Mat> ys) {
    for (size_t i = 0; i < ws.size(); ++i) linear(x, *ws[i], ys[i]);
  }

  // Called once at load with a GeGLU MLP's gate and up, after both were prepared: a backend may
  // merge them into one product (then only mlp_geglu may be called with them, as the pair).
  virtual void pair_geglu(LinearWeight& gate, LinearWeight& up) {}

  // Gemma GeGLU MLP: y (+)= down(gelu_tanh(gate(x)) ⊙ up(x)). gate_buf / up_buf are [rows, F]
  // scratch owned by the caller (no allocation on the hot path).
  virtual void mlp_geglu(const Mat& x, const LinearWeight& gate, const LinearWeight& up, const LinearWeight& down,
                         const Mat& gate_buf, const Mat& up_buf, const Mat& y, bool accumulate) = 0;

  // LayerNorm over each row: (x − mean) / sqrt(var + eps) · w + b (biased variance).
  virtual void layer_norm(const Mat& x, const float* w, const float* b, float eps, const Mat& y) = 0;

  // RMSNorm over each row: x / sqrt(mean(x²) + eps) · (1 + scale) [+ shift]. `scale` is the
  // stored offset (Gemma) or the adaRMS modulation; `shift` may be null.
  virtual void rms_norm(const Mat& x, const float* scale, const float* shift, float eps, const Mat& y) = 0;

  // Rotate-half RoPE in place on each row of x, which holds `heads` heads of `head_dim`:
  // angle_i = pos · theta^(−2i/head_dim), pairs (i, i + head_dim/2).
  virtual void rope(const Mat& x, int heads, int head_dim, const int32_t* positions, double theta) = 0;

  // Softmax attention of q [T, N·Hd] over k, v [S, K·Hd] (query head h reads KV head h / (N/K)),
  // out [T, N·Hd]. One batch row at a time.
  virtual void attention(const Mat& q, const Mat& k, const Mat& v, const AttentionMask& mask,
                         const AttentionShape& shape, const Mat& out) = 0;

  // Elementwise helpers on [rows, cols]: x = act(x); y += x ⊙ col_scale (col_scale null: y += x).
  virtual void activation(const Mat& x, Epilogue ep) = 0;
  virtual void add(const Mat& y, const Mat& x, const float* col_scale) = 0;
};

// "reference" (plain fp32 loops, the truth) or "cpu" (the fast default). Throws pi0::Error
// listing the known names otherwise, or when the backend cannot compute in the precision asked
// for (reference: f32 only; cpu: bf16 needs oneDNN's bf16 matmul, int8 needs AVX512-VNNI or AVX2).
std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& options = {});
std::vector<std::string> backend_names();
std::string default_backend_name();

}  // namespace pi0
