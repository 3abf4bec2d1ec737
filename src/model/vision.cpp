#include "model/vision.h"

#include <cmath>

namespace pi0 {

void run_vision(Backend& be, const ModelConfig& c, const VisionWeights& w, const Tensor& images, VisionScratch& s,
                const Mat& out, const std::function<void(int, const Mat&)>& on_layer) {
  const VisionConfig& v = c.vision;
  const int64_t B = images.dim(0), C = c.image_channels, H = c.image_height, W = c.image_width;
  const int64_t p = v.patch_size, gw = W / p, Np = v.num_patches, Dv = v.width, rows = B * Np;
  const float* img = images.data<float>();

  // im2col: row (b, i·gw + j) holds the patch at (i, j) in the kernel's [C, p, p] order.
  Mat patches = s.patches.mat(rows, C * p * p);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < Np; ++n) {
      const int64_t i = n / gw, j = n % gw;
      float* dst = patches.row(b * Np + n);
      for (int64_t ch = 0; ch < C; ++ch)
        for (int64_t kh = 0; kh < p; ++kh) {
          const float* src = img + ((b * C + ch) * H + i * p + kh) * W + j * p;
          for (int64_t kw = 0; kw < p; ++kw) *dst++ = src[kw];
        }
    }
  Mat x = s.x.mat(rows, Dv);
  be.linear(patches, *w.patch, x);
  for (int64_t r = 0; r < rows; ++r) {
    const float* pos = w.position.data() + (r % Np) * Dv;
    for (int64_t d = 0; d < Dv; ++d) x.row(r)[d] += pos[d];
  }

  const float eps = static_cast<float>(v.layer_norm_eps);
  const AttentionShape shape{v.num_heads, v.num_heads, v.head_dim, 1.f / std::sqrt(static_cast<float>(v.head_dim))};
  Mat y = s.y.mat(rows, Dv), q = s.q.mat(rows, Dv), k = s.k.mat(rows, Dv), vv = s.v.mat(rows, Dv);
  Mat attn = s.attn.mat(rows, Dv), h = s.h.mat(rows, v.mlp_dim);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const VisionLayerWeights& L = w.layers[l];
    be.layer_norm(x, L.ln1_w.data(), L.ln1_b.data(), eps, y);
    const LinearWeight* qkv[] = {L.q.get(), L.k.get(), L.v.get()};
    const Mat outs[] = {q, k, vv};
    be.linears(y, qkv, outs);
    for (int64_t b = 0; b < B; ++b)  // no mask: every patch sees every patch of its image
      be.attention(q.rows_view(b * Np, Np), k.rows_view(b * Np, Np), vv.rows_view(b * Np, Np), AttentionMask{},
                   shape, attn.rows_view(b * Np, Np));
    be.linear(attn, *L.out, x, Epilogue::None, /*accumulate=*/true);
    be.layer_norm(x, L.ln2_w.data(), L.ln2_b.data(), eps, y);
    be.linear(y, *L.fc1, h, Epilogue::GeluTanh);
    be.linear(h, *L.fc2, x, Epilogue::None, /*accumulate=*/true);
    if (on_layer) on_layer(static_cast<int>(l), x);
  }
  be.layer_norm(x, w.post_w.data(), w.post_b.data(), eps, y);
  be.linear(y, *w.projector, out);
}

}  // namespace pi0
