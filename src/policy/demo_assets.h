// The non-weight half of a self-contained demo checkpoint: a tiny SentencePiece tokenizer with the
// PaliGemma conventions and norm stats for every built-in robot, in openpi's layout, so that
// `pi0 infer` / `pi0 serve` run on a `make-checkpoint` output with no other file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pi0/config.h"

namespace pi0 {

// Trains a BPE SentencePiece model of exactly `vocab_size` pieces from a built-in corpus of robot
// prompts: pad 0 / eos 1 / bos 2 / unk 3, "\n" a user-defined piece, byte fallback, digits split,
// no normalisation, no dummy prefix (what openpi's prompt formats rely on). Deterministic.
// `vocab_size` must leave room for the 256 byte pieces and the corpus' characters (>= 400).
std::string train_demo_tokenizer(int vocab_size);

struct DemoAssets {
  std::string tokenizer;                // written tokenizer path, empty when skipped
  std::string tokenizer_note;           // why it was skipped
  std::vector<std::string> norm_stats;  // written norm_stats.json paths
};

// Writes <dir>/tokenizer.model (when the vocabulary is small enough to train one here; full-size
// models need the real PaliGemma tokenizer) and <dir>/assets/<asset_id>/norm_stats.json for each
// built-in robot: plausible made-up statistics (mean, std, q01, q99) at the robot's widths.
DemoAssets write_demo_assets(const std::string& dir, const ModelConfig& cfg);

}  // namespace pi0
