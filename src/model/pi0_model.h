// π0 / π0.5 (docs/model.md §2, §3): the whole model, written once against the Backend ops interface.
// A Pi0Model holds prepared weights and is immutable after load; every call gets its own
// workspace (taken from a pool, sized once per batch and prefix length), so concurrent calls
// never share buffers.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "model/checkpoint.h"
#include "model/rtc.h"
#include "pi0/config.h"
#include "pi0/tensor.h"

namespace pi0 {

// Inputs of one batch of B rows (tests/data/golden/README.md, section "A case file" names them).
struct ModelInputs {
  std::vector<Tensor> images;       // one per config camera, in config order: F32 [B, C, H, W] in [-1, 1]
  std::vector<Tensor> image_masks;  // one per camera: U8 [B], 1 = present
  Tensor tokens;                    // I32 [B, L]
  Tensor token_mask;                // U8 [B, L]
  Tensor state;                     // F32 [B, A] normalised, padded (π0's state token; unused by π0.5)
  Tensor noise;                     // F32 [B, H, A]; undefined -> drawn fresh for this call
  int64_t batch() const { return tokens.defined() && tokens.ndim() == 2 ? tokens.dim(0) : 0; }
};

// Receives named intermediates (`image_emb.<camera>`, `prefix_out`, `velocity_t1`, ...,
// plus per-layer module outputs) when set; the model never prints.
using Observer = std::function<void(const std::string& name, const Tensor& value)>;

// Wall time of each stage of one sample_actions call, in milliseconds.
struct SampleTimings {
  double vision_ms = 0, prefix_ms = 0;  // prefix_ms: the VLM layers over the prefix (after vision)
  std::vector<double> step_ms;          // one per denoising step
};

struct SampleOptions {
  int num_steps = 0;                 // 0: the config's num_steps
  std::optional<uint64_t> seed;      // noise seed when inputs.noise is undefined
  Observer observer;                 // null: skip work no output needs (masked cameras, last VLM layer)
  SampleTimings* timings = nullptr;  // filled when set
  // Real-time chunking guidance towards the previous chunk's remainder (model/rtc.h); absent:
  // plain sampling, bit for bit.
  std::optional<RtcGuidance> rtc;
};

struct TrainOutputs {
  Tensor velocity;  // F32 [B, H, A]
  Tensor loss;      // F32 [B, H, A], (noise − actions − velocity)²
};

class Pi0Model {
 public:
  Pi0Model(Checkpoint checkpoint, std::unique_ptr<Backend> backend);
  ~Pi0Model();
  // Opens the checkpoint directory (memory-mapped, checked) and prepares the weights.
  static std::unique_ptr<Pi0Model> load(const std::string& dir, const std::string& backend = default_backend_name(),
                                        const BackendOptions& options = {});

  const ModelConfig& config() const;
  const Backend& backend() const;

  // Flow-matching sampling (docs/model.md §3.2): F32 [B, H, A] normalised actions. Thread-safe.
  Tensor sample_actions(const ModelInputs& in, const SampleOptions& opt = {}) const;
  // Training forward (docs/model.md §3.3): one joint pass at flow time `time` (F32 [B]). Thread-safe.
  TrainOutputs forward_training(const ModelInputs& in, const Tensor& actions, const Tensor& time,
                                const Observer& observer = {}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pi0
