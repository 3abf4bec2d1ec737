#include "model/random_checkpoint.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/progress.h"
#include "core/random.h"
#include "io/safetensors.h"
#include "model/layout.h"
#include "pi0/error.h"
#include "pi0/threads.h"

namespace pi0 {

namespace {

// Scales chosen so activations stay O(1) through the tiny and the full-size towers.
float init_value(Init init, const Shape& shape, uint64_t seed, uint64_t stream, uint64_t i) {
  const float z = approx_normal_at(seed, stream, i);
  switch (init) {
    case Init::Linear: {
      int64_t fan_in = 1;
      for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
      return z / std::sqrt(static_cast<float>(fan_in));
    }
    case Init::Bias: return 0.02f * z;
    case Init::NormOffset: return 0.1f * z;
    case Init::LayerNormScale: return 1.0f + 0.1f * z;
    case Init::Embedding: return z / std::sqrt(static_cast<float>(shape.back()));
    case Init::Small: return 0.02f * z;
  }
  return 0.f;
}

}  // namespace

void write_random_checkpoint(const std::string& dir, const ModelConfig& cfg, const RandomCheckpointOptions& opt) {
  if (opt.dtype != DType::F32 && opt.dtype != DType::BF16)
    throw Error({.message = "checkpoint dtype must be f32 or bf16", .field = "dtype", .got = dtype_name(opt.dtype)});
  cfg.validate();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error({.message = "cannot create directory: " + ec.message(), .file = dir});

  const auto layout = checkpoint_layout(cfg);
  std::vector<SafeTensorsWriteItem> items;
  uint64_t total_bytes = 0;
  for (size_t k = 0; k < layout.size(); ++k) {
    const TensorSpec spec = layout[k];
    const DType dt = opt.dtype;
    total_bytes += static_cast<uint64_t>(shape_numel(spec.shape)) * dtype_size(dt);
    items.push_back({spec.name, dt, spec.shape, [spec, dt, k, seed = opt.seed]() {
                       Tensor t = Tensor::zeros(dt, spec.shape);
                       const int64_t n = t.numel();
                       void* out = t.raw_mut();
                       parallel_for(n, [&](int64_t b, int64_t e) {
                         for (int64_t i = b; i < e; ++i) {
                           float v = init_value(spec.init, spec.shape, seed, k, static_cast<uint64_t>(i));
                           if (dt == DType::F32) static_cast<float*>(out)[i] = v;
                           else static_cast<uint16_t*>(out)[i] = f32_to_bf16(v);
                         }
                       }, 1 << 16);
                       return t;
                     }});
  }
  // openpi's file maps the missing embed_tokens name to the kept lm_head name in the metadata.
  std::map<std::string, std::string> meta = {{"format", "pt"}, {names::kEmbedTokens, names::kEmbedding}};
  Progress bar("writing " + dir, total_bytes, opt.progress);
  write_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), items, meta,
                    [&](size_t, uint64_t bytes) { bar.update(bytes); });
  bar.finish();
  std::string json = config_to_json(cfg);
  // Record the stored precision as openpi's converter does.
  const std::string key = "\"precision\": \"float32\"";
  if (auto pos = json.find(key); pos != std::string::npos && opt.dtype == DType::BF16)
    json.replace(pos, key.size(), "\"precision\": \"bfloat16\"");
  std::ofstream f(std::filesystem::path(dir) / "config.json");
  f << json;
  if (!f) throw Error({.message = "cannot write config.json", .file = dir});
}

}  // namespace pi0
