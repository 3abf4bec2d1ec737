// A backend decorator that counts the floating-point work the model asks for (2 per
// multiply-add of every GEMM and attention product), for benchmarks: the FLOPs of exactly what
// runs (skipped cameras and layers included), not of a formula. With profiling on it also times
// every op, grouped by kind and shape (`pi0 bench --profile`), to show where the time goes.
#pragma once
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "backend/ops.h"

namespace pi0 {

struct OpProfile {
  int64_t calls = 0;
  double seconds = 0, flops = 0;
};

class CountingBackend : public Backend {
 public:
  explicit CountingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  Precision precision() const override { return inner_->precision(); }
  std::string precision_reason() const override { return inner_->precision_reason(); }
  double flops() const { return flops_.load(); }
  void reset() {
    flops_ = 0;
    std::lock_guard<std::mutex> lk(mu_);
    profile_.clear();
  }
  // Time each op (one clock read before and after: ≈ 50 ns per op, off by default).
  void set_profiling(bool on) { profiling_ = on; }
  std::map<std::string, OpProfile> profile() const {
    std::lock_guard<std::mutex> lk(mu_);
    return profile_;
  }

  std::unique_ptr<LinearWeight> prepare_linear(const Tensor& w, const Tensor* bias, int64_t rows_hint, bool head) override {
    return inner_->prepare_linear(w, bias, rows_hint, head);
  }
  void linear(const Mat& x, const LinearWeight& w, const Mat& y, Epilogue ep, bool acc) override {
    const double f = 2.0 * x.rows * w.in * w.out;
    timed([&] { return "linear " + dims(x.rows, w.in, w.out); }, f, [&] { inner_->linear(x, w, y, ep, acc); });
  }
  void linears(const Mat& x, std::span<const LinearWeight* const> ws, std::span<const Mat> ys) override {
    double f = 0;
    std::string outs;
    for (const LinearWeight* w : ws) {
      f += 2.0 * x.rows * w->in * w->out;
      if (profiling_) outs += (outs.empty() ? "" : "+") + std::to_string(w->out);
    }
    timed([&] { return "linears " + std::to_string(x.rows) + "x" + std::to_string(x.cols) + "->" + outs; }, f,
          [&] { inner_->linears(x, ws, ys); });
  }
  void pair_geglu(LinearWeight& gate, LinearWeight& up) override { inner_->pair_geglu(gate, up); }
  void mlp_geglu(const Mat& x, const LinearWeight& g, const LinearWeight& u, const LinearWeight& d, const Mat& gb,
                 const Mat& ub, const Mat& y, bool acc) override {
    const double f = 2.0 * x.rows * (g.in * g.out + u.in * u.out + d.in * d.out);
    timed([&] { return "mlp_geglu " + dims(x.rows, g.in, g.out); }, f, [&] { inner_->mlp_geglu(x, g, u, d, gb, ub, y, acc); });
  }
  void layer_norm(const Mat& x, const float* w, const float* b, float eps, const Mat& y) override {
    timed([] { return std::string("layer_norm"); }, 0, [&] { inner_->layer_norm(x, w, b, eps, y); });
  }
  void rms_norm(const Mat& x, const float* s, const float* sh, float eps, const Mat& y) override {
    timed([] { return std::string("rms_norm"); }, 0, [&] { inner_->rms_norm(x, s, sh, eps, y); });
  }
  void rope(const Mat& x, int h, int hd, const int32_t* p, double th) override {
    timed([] { return std::string("rope"); }, 0, [&] { inner_->rope(x, h, hd, p, th); });
  }
  void attention(const Mat& q, const Mat& k, const Mat& v, const AttentionMask& m, const AttentionShape& s,
                 const Mat& out) override {
    const double f = 4.0 * q.rows * k.rows * s.num_heads * s.head_dim;  // q·kᵀ and p·v
    timed([&] {
            return "attention " + std::to_string(q.rows) + "q x " + std::to_string(k.rows) + "k x " +
                   std::to_string(s.num_heads) + "h x " + std::to_string(s.head_dim);
          },
          f, [&] { inner_->attention(q, k, v, m, s, out); });
  }
  void activation(const Mat& x, Epilogue ep) override {
    timed([] { return std::string("activation"); }, 0, [&] { inner_->activation(x, ep); });
  }
  void add(const Mat& y, const Mat& x, const float* s) override {
    timed([] { return std::string("add"); }, 0, [&] { inner_->add(y, x, s); });
  }

 private:
  static std::string dims(int64_t m, int64_t k, int64_t n) {
    return std::to_string(m) + "x" + std::to_string(k) + "->" + std::to_string(n);
  }
  template <class Key, class F>
  void timed(Key&& key, double f, F&& op) {  // key() only when profiling: no strings otherwise
    if (f > 0) {  // row ops count no FLOPs: no atomic update for them
      double cur = flops_.load();
      while (!flops_.compare_exchange_weak(cur, cur + f)) {}
    }
    if (!profiling_) {
      op();
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    op();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard<std::mutex> lk(mu_);
    OpProfile& p = profile_[key()];
    p.calls += 1;
    p.seconds += s;
    p.flops += f;
  }
  std::unique_ptr<Backend> inner_;
  std::atomic<double> flops_{0};
  bool profiling_ = false;
  mutable std::mutex mu_;
  std::map<std::string, OpProfile> profile_;
};

}  // namespace pi0
