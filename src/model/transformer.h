// The mixture-of-transformers decoder (docs/model.md §2.6): per layer, each active stream (VLM over the
// prefix, expert over the suffix) applies its own norms and projections; all of them meet in one
// joint attention over a shared per-batch key sequence that holds every stream's K/V (and, in
// the cached suffix pass, the prefix K/V written earlier).
#pragma once
#include <functional>
#include <span>
#include <vector>

#include "backend/ops.h"
#include "model/buffer.h"
#include "model/weights.h"
#include "pi0/config.h"

namespace pi0 {

// Per-layer K and V for the whole key sequence: [B · seq, K·Hd] each, rows of batch b at b·seq.
struct KVStore {
  std::vector<Buf> k, v;
  int64_t seq = 0;
  void resize(int depth, int64_t batch, int64_t seq_len, int64_t kv_width);
};

// The per-batch layout of the key sequence: validity, cumulative AR group and RoPE position of
// every token (prefix then suffix), [B · seq] each.
struct SequenceLayout {
  std::vector<uint8_t> valid;
  std::vector<int32_t> group, position;
};

struct Stream {
  const GemmaWeights* weights = nullptr;
  const GemmaConfig* config = nullptr;
  int64_t tokens = 0;       // per batch row
  int64_t offset = 0;       // first key row of this stream within the per-batch sequence
  Mat x;                    // [B · tokens, D] residual stream, updated in place
  Mat cond;                 // adaRMS condition [B, cond_dim] (expert of π0.5), else empty
  bool skip_last_tail = false;  // stop after writing the last layer's K/V (output unused)
  // Scratch, sized by prepare().
  Buf y, q, attn, tmp, gate, up, mod;
  void prepare(int64_t batch, int num_heads);
};

using LayerCallback = std::function<void(const Stream& s, int layer)>;

// Runs every layer over the active streams. Keys of batch b are rows [0, kv_len) of the store;
// streams write theirs at their offset. Rows outside the active streams are read as they are
// (the cached prefix in the suffix pass).
void run_transformer(Backend& be, std::span<Stream* const> streams, KVStore& kv, const SequenceLayout& layout,
                     int64_t batch, int64_t kv_len, float mask_value, const LayerCallback& on_layer = {});

// Final norm of a stream (RMSNorm, or adaRMS whose gate is discarded) into `out` [B · tokens, D].
void final_norm(Backend& be, Stream& s, int64_t batch, const Mat& out);

}  // namespace pi0
