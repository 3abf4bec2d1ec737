// The complete set of tensors a π0 / π0.5 checkpoint holds, by openpi's PyTorch names
// (docs/model.md §4.2, docs/model.md §4.2), derived from the config alone. The checkpoint loader checks
// files against it; make-checkpoint writes exactly it. One list, so the two can never disagree.
#pragma once
#include <string>
#include <vector>

#include "pi0/config.h"
#include "pi0/tensor.h"

namespace pi0 {

enum class Category { Vision, Projector, Language, Expert, Heads, Unused };
const char* category_name(Category c);

// What kind of values a tensor holds, so generated checkpoints get sensible random values.
enum class Init { Linear, Bias, NormOffset, LayerNormScale, Embedding, Small };

struct TensorSpec {
  std::string name;
  Shape shape;
  Category category;
  Init init;
};

namespace names {
inline const std::string kVision = "paligemma_with_expert.paligemma.model.vision_tower.vision_model.";
inline const std::string kProjector = "paligemma_with_expert.paligemma.model.multi_modal_projector.linear.";
inline const std::string kLanguage = "paligemma_with_expert.paligemma.model.language_model.";
inline const std::string kExpert = "paligemma_with_expert.gemma_expert.model.";
inline const std::string kEmbedding = "paligemma_with_expert.paligemma.lm_head.weight";  // tied table
inline const std::string kEmbedTokens = kLanguage + "embed_tokens.weight";               // its alias
inline const std::string kExpertLmHead = "paligemma_with_expert.gemma_expert.lm_head.weight";  // never used
}  // namespace names

// Every tensor, in openpi's order of modules. Includes the unused expert lm_head (real files have it).
std::vector<TensorSpec> checkpoint_layout(const ModelConfig& c);

}  // namespace pi0
