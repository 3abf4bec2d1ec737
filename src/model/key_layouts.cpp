#include "model/key_layouts.h"

#include <algorithm>

#include "pi0/error.h"

namespace pi0 {

namespace {

const std::string kPaliGemma = "paligemma_with_expert.paligemma.";

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// The rule of `layout` that covers `rest` (a name after kPaliGemma), or nullptr.
const std::pair<std::string, std::string>* rule_for(const KeyLayout& layout, const std::string& rest) {
  for (const auto& r : layout.renames)
    if (starts_with(rest, r.first)) return &r;
  return nullptr;
}

}  // namespace

const std::vector<KeyLayout>& key_layouts() {
  static const std::vector<KeyLayout> layouts = {
      {"current", "transformers >= 4.52 names (openpi's conversion, LeRobot since its pi0 rewrite)",
       {{"model.", "model."}, {"lm_head.", "lm_head."}}},
      // PaliGemmaForConditionalGeneration before 4.52: the Gemma tower was a GemmaForCausalLM with
      // its own `model.` and `lm_head`, and the vision tower and projector sat beside it.
      {"transformers<4.52", "transformers < 4.52 names (LeRobot before its pi0 rewrite, older ports)",
       {{"language_model.model.", "model.language_model."},
        {"language_model.lm_head.", "lm_head."},
        {"vision_tower.", "model.vision_tower."},
        {"multi_modal_projector.", "model.multi_modal_projector."}}},
      // The towers of today's PaliGemmaModel saved without its `model.` level (some export tools).
      {"no-model-level", "PaliGemma towers without the model. level (paligemma.language_model.layers...)",
       {{"language_model.", "model.language_model."},
        {"vision_tower.", "model.vision_tower."},
        {"multi_modal_projector.", "model.multi_modal_projector."},
        {"lm_head.", "lm_head."}}},
  };
  return layouts;
}

const KeyLayout& adopt_key_layout(TensorFiles& stored) {
  const auto& layouts = key_layouts();
  // How many PaliGemma names each layout covers; names no layout covers are left for the
  // complete-set check to report as unexpected.
  std::vector<size_t> covered(layouts.size(), 0);
  size_t relevant = 0;
  for (const auto& [name, _] : stored.tensors) {
    if (!starts_with(name, kPaliGemma)) continue;
    const std::string rest = name.substr(kPaliGemma.size());
    bool any = false;
    for (size_t i = 0; i < layouts.size(); ++i)
      if (rule_for(layouts[i], rest)) { ++covered[i]; any = true; }
    relevant += any;
  }
  size_t pick = layouts.size();
  for (size_t i = 0; i < layouts.size() && pick == layouts.size(); ++i)
    if (covered[i] == relevant) pick = i;
  if (pick == layouts.size()) {
    // A mix: name a tensor the best-covering layout does not explain, and one it explains that no
    // layout explaining the first one does (a real conflict, not a name shared by layouts).
    const size_t best = std::max_element(covered.begin(), covered.end()) - covered.begin();
    std::string in, out;
    std::vector<bool> covers_out(layouts.size(), false);
    for (const auto& [name, _] : stored.tensors) {
      if (!starts_with(name, kPaliGemma)) continue;
      const std::string rest = name.substr(kPaliGemma.size());
      if (rule_for(layouts[best], rest)) continue;
      for (size_t i = 0; i < layouts.size(); ++i) covers_out[i] = rule_for(layouts[i], rest) != nullptr;
      if (std::find(covers_out.begin(), covers_out.end(), true) != covers_out.end()) { out = name; break; }
    }
    for (const auto& [name, _] : stored.tensors) {
      if (!starts_with(name, kPaliGemma) || !in.empty()) continue;
      const std::string rest = name.substr(kPaliGemma.size());
      bool conflict = rule_for(layouts[best], rest) != nullptr;
      for (size_t i = 0; i < layouts.size() && conflict; ++i) conflict = !(covers_out[i] && rule_for(layouts[i], rest));
      if (conflict) in = name;
    }
    throw Error({.message = "tensor names mix key layouts: " + in + " is named as in " + layouts[best].description +
                            ", " + out + " is not; rename them all one way",
                 .file = stored.where, .tensor = out, .expected = "one key layout for every tensor", .got = "a mix"});
  }
  const KeyLayout& layout = layouts[pick];
  if (pick == 0) return layout;  // today's names: nothing to rename
  decltype(stored.tensors) renamed;
  for (auto& [name, v] : stored.tensors) {
    std::string to = name;
    if (starts_with(name, kPaliGemma))
      if (const auto* r = rule_for(layout, name.substr(kPaliGemma.size())))
        to = kPaliGemma + r->second + name.substr(kPaliGemma.size() + r->first.size());
    if (!renamed.emplace(to, v).second)
      throw Error({.message = "two tensors get the same name in today's key layout (" + layout.description + ")",
                   .file = stored.where, .tensor = name, .got = to});
  }
  stored.tensors.swap(renamed);
  return layout;
}

}  // namespace pi0
