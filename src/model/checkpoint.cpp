#include "model/checkpoint.h"

#include <filesystem>
#include <set>

#include "model/key_layouts.h"
#include "pi0/error.h"

namespace pi0 {
namespace fs = std::filesystem;

const Tensor& Checkpoint::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw Error({.message = "tensor not in checkpoint", .file = dir, .tensor = name});
  return it->second;
}

namespace {

// What config.json did not say, settled from the tensors (and what it did say, checked).
void settle_config(ModelConfig& cfg, const ConfigHints& hints, const TensorFiles& stored, const std::string& cfg_path) {
  const bool has_adarms = stored.shape_of(names::kExpert + "layers.0.input_layernorm.dense.weight") != nullptr;
  if (!hints.pi05_given) {
    cfg.pi05 = has_adarms;
    cfg.expert.adarms = cfg.pi05;
    cfg.expert.adarms_cond_dim = cfg.pi05 ? cfg.expert.width : 0;
    if (cfg.max_token_len == 0) cfg.max_token_len = cfg.pi05 ? 200 : 48;
  } else if (has_adarms != cfg.pi05) {
    throw Error({.message = cfg.pi05 ? "config says pi05 but the expert has no adaptive-RMSNorm tensors"
                                     : "config says pi0 but the expert has adaptive-RMSNorm (pi05) tensors",
                 .file = cfg_path, .field = "pi05", .expected = has_adarms ? "true" : "false",
                 .got = cfg.pi05 ? "true" : "false"});
  }
  if (const Shape* s = stored.shape_of("action_in_proj.weight"); s && s->size() == 2 && !hints.action_dim_given)
    cfg.action_dim = static_cast<int>((*s)[1]);
  const Shape* emb = stored.shape_of(names::kEmbedding);
  if (!emb) emb = stored.shape_of(names::kEmbedTokens);
  if (emb && emb->size() == 2 && !hints.vocab_given) cfg.vlm.vocab_size = static_cast<int>((*emb)[0]);
  cfg.validate(cfg_path);
}

// Takes every tensor the layout demands from `stored` into ck.tensors; returns every problem
// (missing, wrong shape or dtype, unexpected) so that one message can list them all.
std::vector<std::string> take_tensors(Checkpoint& ck, const TensorFiles& stored) {
  std::vector<std::string> problems;
  std::set<std::string> used;
  for (const auto& spec : ck.layout) {
    std::string name = spec.name;
    if (name == names::kEmbedding && !stored.tensors.count(name) && stored.tensors.count(names::kEmbedTokens))
      name = names::kEmbedTokens;  // either name of the tied table is fine
    auto it = stored.tensors.find(name);
    if (it == stored.tensors.end()) {
      if (spec.category != Category::Unused) problems.push_back("missing tensor " + spec.name + " " + shape_str(spec.shape));
      continue;
    }
    used.insert(name);
    const SafeTensorsEntry& e = *it->second.entry;
    if (e.shape != spec.shape) {
      problems.push_back("tensor " + it->first + " has shape " + shape_str(e.shape) + ", expected " + shape_str(spec.shape));
      continue;
    }
    if (e.dtype != DType::F32 && e.dtype != DType::BF16 && e.dtype != DType::F16) {
      problems.push_back("tensor " + it->first + " has dtype " + dtype_name(e.dtype) + ", expected F32, BF16 or F16");
      continue;
    }
    if (spec.category == Category::Unused) {
      ck.ignored.push_back(spec.name);
      continue;
    }
    ck.tensors[spec.name] = it->second.file->tensor(e);
  }
  if (stored.tensors.count(names::kEmbedTokens) && !used.count(names::kEmbedTokens)) {
    // Both names of the tied table are present: they must be the same shape; the loader uses one.
    if (*stored.shape_of(names::kEmbedTokens) != *stored.shape_of(names::kEmbedding))
      problems.push_back("tensor " + names::kEmbedTokens + " does not match " + names::kEmbedding);
    used.insert(names::kEmbedTokens);
  }
  for (const auto& [n, v] : stored.tensors)
    if (!used.count(n)) problems.push_back("unexpected tensor " + n + " " + shape_str(v.entry->shape));
  return problems;
}

[[noreturn]] void report_problems(const std::vector<std::string>& problems, const ModelConfig& cfg,
                                  const std::string& where) {
  std::string msg = std::to_string(problems.size()) + " problem(s) with the tensors of this " + cfg.variant() +
                    " checkpoint:";
  const size_t show = std::min<size_t>(problems.size(), 60);
  for (size_t i = 0; i < show; ++i) msg += "\n  " + problems[i];
  if (show < problems.size()) msg += "\n  ... and " + std::to_string(problems.size() - show) + " more";
  throw Error({.message = msg, .file = where});
}

}  // namespace

Checkpoint open_checkpoint(const std::string& dir, const OpenOptions& opt) {
  Checkpoint ck;
  ck.dir = dir;
  if (fs::exists(dir) && !fs::is_directory(dir))
    throw Error({.message = "is a file, not a checkpoint directory", .file = dir,
                 .expected = "a directory holding config.json and model.safetensors"});
  if (!fs::is_directory(dir)) throw Error({.message = "checkpoint directory does not exist", .file = dir});
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg_path)) throw Error({.message = "checkpoint has no config.json", .file = dir});
  ConfigHints hints;
  ModelConfig cfg = parse_config_json(read_text_file(cfg_path), cfg_path, &hints);
  TensorFiles stored = open_tensor_files(dir, opt.populate);
  ck.lerobot_prefix = stored.lerobot_prefix;
  // Older names first: the config is settled from the tensors by today's names.
  const KeyLayout& layout = adopt_key_layout(stored);
  ck.key_layout = layout.id;
  ck.key_layout_description = layout.description;
  for (const auto& [n, _] : stored.normalizer_buffers) ck.normalizer_buffers.push_back(n);
  settle_config(cfg, hints, stored, cfg_path);
  ck.config = cfg;
  ck.layout = checkpoint_layout(cfg);
  const std::vector<std::string> problems = take_tensors(ck, stored);
  if (!problems.empty()) report_problems(problems, cfg, stored.where);
  ck.files = std::move(stored.files);
  return ck;
}

}  // namespace pi0
