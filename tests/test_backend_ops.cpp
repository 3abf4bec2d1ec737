// Every op of the cpu backend against the reference backend on random inputs of awkward
// shapes (llama.cpp's test-backend-ops idea): a new kernel is checked the day it appears.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "backend/ops.h"
#include "ops_util.h"

using namespace pi0;
using namespace pi0::test;

namespace {

// The bf16 kernels where oneDNN has them (auto may pick f32 on this CPU: test_gemm_precisions.cpp
// covers that path and int8), else the f32 ones.
struct Both {
  std::unique_ptr<Backend> ref = make_backend("reference"), cpu = make_backend("cpu", {.precision = bf16_if_available()});
};

}  // namespace

TEST(BackendOps, LinearAllEpiloguesAndShapes) {
  Both b;
  std::mt19937 rng(1);
  // (rows, in, out, rows_hint). The hint picks the path: 0 = oneDNN on the weights as stored;
  // ≤ 128 rows = oneDNN's packed layout, or for the tiny heads (≤ 2 Mi multiply-adds) the
  // hand-written AVX-512-BF16 kernel. Rows may differ from the hint, as in the model.
  for (auto [rows, in, out, hint] : {std::tuple{1, 7, 5, 1}, {3, 33, 17, 3}, {17, 64, 130, 0}, {51, 100, 257, 0},
                                     {51, 100, 257, 51}, {50, 1030, 33, 50}, {51, 640, 130, 51}, {3, 640, 130, 1},
                                     {200, 96, 70, 0}}) {
    for (DType dt : {DType::F32, DType::BF16}) {
      SCOPED_TRACE(testing::Message() << rows << "x" << in << "->" << out << " hint " << hint << " " << dtype_name(dt));
      Tensor w = weight(out, in, rng, dt), bias = weight(1, out, rng, DType::F32).reshaped({out});
      auto wr = b.ref->prepare_linear(w, &bias), wc = b.cpu->prepare_linear(w, &bias, hint);
      M x(rows, in, rng, 1.f, 3);  // padded rows: ld != cols
      for (Epilogue ep : {Epilogue::None, Epilogue::GeluTanh, Epilogue::Silu}) {
        M yr(rows, out, rng, 1.f, 2), yc = yr;
        yc.mat.data = yc.v.data();
        b.ref->linear(x.mat, *wr, yr.mat, ep);
        b.cpu->linear(x.mat, *wc, yc.mat, ep);
        expect_match(yr, yc, 0.999, 3e-2, "linear");
      }
      M yr(rows, out, rng), yc = yr;  // fused residual
      yc.mat.data = yc.v.data();
      b.ref->linear(x.mat, *wr, yr.mat, Epilogue::None, true);
      b.cpu->linear(x.mat, *wc, yc.mat, Epilogue::None, true);
      expect_match(yr, yc, 0.999, 3e-2, "linear accumulate");
    }
  }
}

TEST(BackendOps, GegluMlp) {
  Both b;
  std::mt19937 rng(2);
  for (auto [rows, D, F] : {std::tuple{1, 8, 12}, {5, 32, 96}, {51, 48, 200}}) {
    Tensor g = weight(F, D, rng, DType::BF16), u = weight(F, D, rng, DType::BF16), d = weight(D, F, rng, DType::BF16);
    auto gr = b.ref->prepare_linear(g, nullptr), ur = b.ref->prepare_linear(u, nullptr), dr = b.ref->prepare_linear(d, nullptr);
    auto gc = b.cpu->prepare_linear(g, nullptr), uc = b.cpu->prepare_linear(u, nullptr), dc = b.cpu->prepare_linear(d, nullptr);
    M x(rows, D, rng), g1(rows, F, rng), u1(rows, F, rng), g2(rows, F, rng), u2(rows, F, rng);
    M yr(rows, D, rng), yc = yr;
    yc.mat.data = yc.v.data();
    b.ref->mlp_geglu(x.mat, *gr, *ur, *dr, g1.mat, u1.mat, yr.mat, true);
    b.cpu->mlp_geglu(x.mat, *gc, *uc, *dc, g2.mat, u2.mat, yc.mat, true);
    expect_match(yr, yc, 0.999, 3e-2, "mlp");
  }
}

TEST(BackendOps, NormsRopeAddActivation) {
  Both b;
  std::mt19937 rng(3);
  for (int64_t cols : {1, 15, 16, 33, 200}) {
    M x(7, cols, rng, 2.f), w(1, cols, rng), sh(1, cols, rng);
    M r1(7, cols, rng), r2 = r1;
    r2.mat.data = r2.v.data();
    b.ref->rms_norm(x.mat, w.v.data(), sh.v.data(), 1e-6f, r1.mat);
    b.cpu->rms_norm(x.mat, w.v.data(), sh.v.data(), 1e-6f, r2.mat);
    expect_match(r1, r2, 0.999999, 1e-5, "rms_norm");
    b.ref->layer_norm(x.mat, w.v.data(), sh.v.data(), 1e-6f, r1.mat);
    b.cpu->layer_norm(x.mat, w.v.data(), sh.v.data(), 1e-6f, r2.mat);
    expect_match(r1, r2, 0.999999, 1e-5, "layer_norm");
    M a1(7, cols, rng), a2 = a1;
    a2.mat.data = a2.v.data();
    b.ref->add(a1.mat, x.mat, w.v.data());
    b.cpu->add(a2.mat, x.mat, w.v.data());
    expect_match(a1, a2, 0.999999, 1e-6, "add");
    for (Epilogue ep : {Epilogue::GeluTanh, Epilogue::Silu}) {
      b.ref->activation(a1.mat, ep);
      b.cpu->activation(a2.mat, ep);
      expect_match(a1, a2, 0.999999, 1e-5, "activation");
    }
  }
  for (int hd : {2, 8, 16, 72}) {
    M x1(9, 3 * hd, rng), x2 = x1;
    x2.mat.data = x2.v.data();
    std::vector<int32_t> pos = {-1, 0, 0, 1, 5, 6, 100, 1000, 1001};
    b.ref->rope(x1.mat, 3, hd, pos.data(), 10000.0);
    b.cpu->rope(x2.mat, 3, hd, pos.data(), 10000.0);
    expect_match(x1, x2, 0.999999, 1e-5, "rope");
  }
}

TEST(BackendOps, AttentionMasksGroupsAndFullyMaskedRows) {
  Both b;
  std::mt19937 rng(4);
  // (queries, keys, heads, KV heads, head_dim): groups of 1 (MHA), 2, 3, 4 and 8 (MQA) heads per K/V head.
  for (auto [T, S, N, K, hd] : {std::tuple{1, 1, 1, 1, 4}, {3, 7, 2, 1, 8}, {17, 23, 4, 2, 16}, {51, 80, 8, 1, 32},
                                {17, 23, 4, 4, 12}, {33, 40, 8, 2, 16}, {51, 300, 8, 1, 64}, {5, 9, 3, 1, 6},
                                {70, 70, 6, 3, 10}}) {
    M q(T, N * hd, rng), k(S, K * hd, rng), v(S, K * hd, rng);
    std::vector<uint8_t> qv(T), kv(S);
    std::vector<int32_t> qg(T), kg(S);
    for (int i = 0; i < T; ++i) { qv[i] = i % 5 != 3; qg[i] = i % 3; }
    for (int j = 0; j < S; ++j) { kv[j] = j % 4 != 1; kg[j] = j % 4; }
    AttentionMask m{qv.data(), qg.data(), kv.data(), kg.data(), -2.3819763e38f};
    AttentionShape sh{N, K, hd, 1.f / std::sqrt(static_cast<float>(hd))};
    M o1(T, N * hd, rng), o2 = o1;
    o2.mat.data = o2.v.data();
    b.ref->attention(q.mat, k.mat, v.mat, m, sh, o1.mat);
    b.cpu->attention(q.mat, k.mat, v.mat, m, sh, o2.mat);
    expect_match(o1, o2, 0.999, 3e-2, "attention T=" + std::to_string(T));
    // No mask at all (vision).
    b.ref->attention(q.mat, k.mat, v.mat, AttentionMask{}, sh, o1.mat);
    b.cpu->attention(q.mat, k.mat, v.mat, AttentionMask{}, sh, o2.mat);
    expect_match(o1, o2, 0.999, 3e-2, "attention unmasked");
  }
}
