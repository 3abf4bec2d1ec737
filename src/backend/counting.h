// A backend decorator that counts the floating-point work the model asks for (2 per
// multiply-add of every GEMM and attention product), for benchmarks: the FLOPs of exactly what
// runs (skipped cameras and layers included), not of a formula.
#pragma once
#include <atomic>
#include <memory>

#include "backend/ops.h"

namespace pi0 {

class CountingBackend : public Backend {
 public:
  explicit CountingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  double flops() const { return flops_.load(); }
  void reset() { flops_ = 0; }

  std::unique_ptr<LinearWeight> prepare_linear(const Tensor& w, const Tensor* bias, int64_t rows_hint) override {
    return inner_->prepare_linear(w, bias, rows_hint);
  }
  void linear(const Mat& x, const LinearWeight& w, const Mat& y, Epilogue ep, bool acc) override {
    add_flops(2.0 * x.rows * w.in * w.out);
    inner_->linear(x, w, y, ep, acc);
  }
  void mlp_geglu(const Mat& x, const LinearWeight& g, const LinearWeight& u, const LinearWeight& d, const Mat& gb,
                 const Mat& ub, const Mat& y, bool acc) override {
    add_flops(2.0 * x.rows * (g.in * g.out + u.in * u.out + d.in * d.out));
    inner_->mlp_geglu(x, g, u, d, gb, ub, y, acc);
  }
  void layer_norm(const Mat& x, const float* w, const float* b, float eps, const Mat& y) override { inner_->layer_norm(x, w, b, eps, y); }
  void rms_norm(const Mat& x, const float* s, const float* sh, float eps, const Mat& y) override { inner_->rms_norm(x, s, sh, eps, y); }
  void rope(const Mat& x, int h, int hd, const int32_t* p, double th) override { inner_->rope(x, h, hd, p, th); }
  void attention(const Mat& q, const Mat& k, const Mat& v, const AttentionMask& m, const AttentionShape& s,
                 const Mat& out) override {
    add_flops(4.0 * q.rows * k.rows * s.num_heads * s.head_dim);  // q·kᵀ and p·v
    inner_->attention(q, k, v, m, s, out);
  }
  void activation(const Mat& x, Epilogue ep) override { inner_->activation(x, ep); }
  void add(const Mat& y, const Mat& x, const float* s) override { inner_->add(y, x, s); }

 private:
  void add_flops(double f) {
    double cur = flops_.load();
    while (!flops_.compare_exchange_weak(cur, cur + f)) {}
  }
  std::unique_ptr<Backend> inner_;
  std::atomic<double> flops_{0};
};

}  // namespace pi0
