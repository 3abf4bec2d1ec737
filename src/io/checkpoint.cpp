#include "io/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "pi0/error.h"

namespace pi0 {
namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error({.message = "cannot read file", .file = path});
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// All safetensors files of the checkpoint: one file, or the shards an index names.
std::vector<std::string> model_files(const std::string& dir) {
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) return {single.string()};
  if (!fs::exists(index))
    throw Error({.message = "no model.safetensors or model.safetensors.index.json in checkpoint directory", .file = dir});
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text(index.string()));
  } catch (const nlohmann::json::exception& e) {
    throw Error({.message = std::string("invalid JSON: ") + e.what(), .file = index.string()});
  }
  if (!j.contains("weight_map") || !j["weight_map"].is_object())
    throw Error({.message = "missing weight_map object", .file = index.string(), .field = "weight_map"});
  std::set<std::string> shards;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      throw Error({.message = "shard name must be a string", .file = index.string(), .field = "weight_map." + it.key()});
    const std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
      throw Error({.message = "shard must be a file in the checkpoint directory", .file = index.string(),
                   .field = "weight_map." + it.key(), .got = shard});
    shards.insert(shard);
  }
  std::vector<std::string> out;
  for (const auto& s : shards) out.push_back((fs::path(dir) / s).string());
  return out;
}

}  // namespace

const Tensor& Checkpoint::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw Error({.message = "tensor not in checkpoint", .file = dir, .tensor = name});
  return it->second;
}

Checkpoint open_checkpoint(const std::string& dir, const OpenOptions& opt) {
  Checkpoint ck;
  ck.dir = dir;
  if (!fs::is_directory(dir)) throw Error({.message = "checkpoint directory does not exist", .file = dir});
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg_path)) throw Error({.message = "checkpoint has no config.json", .file = dir});
  ConfigHints hints;
  ModelConfig cfg = parse_config_json(read_text(cfg_path), cfg_path, &hints);

  // Gather every stored tensor, remembering which file holds it.
  std::map<std::string, std::pair<const SafeTensorsFile*, const SafeTensorsEntry*>> stored;
  for (const auto& path : model_files(dir)) {
    auto f = SafeTensorsFile::open(path, opt.populate);
    for (const auto& e : f->entries()) {
      if (stored.count(e.name))
        throw Error({.message = "tensor stored in two files (also in " + stored[e.name].first->path() + ")",
                     .file = path, .tensor = e.name});
      stored[e.name] = {f.get(), &e};
    }
    ck.files.push_back(std::move(f));
  }
  // LeRobot training checkpoints prefix every key with "model.".
  if (!stored.empty()) {
    bool all = true;
    for (const auto& [n, _] : stored) all = all && n.rfind("model.", 0) == 0;
    if (all) {
      ck.lerobot_prefix = true;
      decltype(stored) stripped;
      for (auto& [n, v] : stored) stripped[n.substr(6)] = v;
      stored.swap(stripped);
    }
  }
  const std::string where = ck.files.size() == 1 ? ck.files[0]->path() : dir;
  auto shape_of = [&](const std::string& n) -> const Shape* {
    auto it = stored.find(n);
    return it == stored.end() ? nullptr : &it->second.second->shape;
  };

  // Settle what the config did not say from the tensors (and check what it did say).
  const bool has_adarms = shape_of(names::kExpert + "layers.0.input_layernorm.dense.weight") != nullptr;
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
  if (const Shape* s = shape_of("action_in_proj.weight"); s && s->size() == 2 && !hints.action_dim_given)
    cfg.action_dim = static_cast<int>((*s)[1]);
  const Shape* emb = shape_of(names::kEmbedding);
  if (!emb) emb = shape_of(names::kEmbedTokens);
  if (emb && emb->size() == 2 && !hints.vocab_given) cfg.vlm.vocab_size = static_cast<int>((*emb)[0]);
  cfg.validate(cfg_path);
  ck.config = cfg;
  ck.layout = checkpoint_layout(cfg);

  // Compare the stored set with the layout: report every problem in one message.
  std::vector<std::string> problems;
  std::set<std::string> used;
  for (const auto& spec : ck.layout) {
    std::string name = spec.name;
    if (name == names::kEmbedding && !stored.count(name) && stored.count(names::kEmbedTokens))
      name = names::kEmbedTokens;  // either name of the tied table is fine
    auto it = stored.find(name);
    if (it == stored.end()) {
      if (spec.category != Category::Unused) problems.push_back("missing tensor " + spec.name + " " + shape_str(spec.shape));
      continue;
    }
    used.insert(name);
    const SafeTensorsEntry& e = *it->second.second;
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
    ck.tensors[spec.name] = it->second.first->tensor(e);
  }
  if (stored.count(names::kEmbedTokens) && !used.count(names::kEmbedTokens)) {
    // Both names of the tied table are present: they must be the same shape; the loader uses one.
    if (*shape_of(names::kEmbedTokens) != *shape_of(names::kEmbedding))
      problems.push_back("tensor " + names::kEmbedTokens + " does not match " + names::kEmbedding);
    used.insert(names::kEmbedTokens);
  }
  for (const auto& [n, v] : stored)
    if (!used.count(n)) problems.push_back("unexpected tensor " + n + " " + shape_str(v.second->shape));
  if (!problems.empty()) {
    std::string msg = std::to_string(problems.size()) + " problem(s) with the tensors of this " + cfg.variant() +
                      " checkpoint:";
    const size_t show = std::min<size_t>(problems.size(), 60);
    for (size_t i = 0; i < show; ++i) msg += "\n  " + problems[i];
    if (show < problems.size()) msg += "\n  ... and " + std::to_string(problems.size() - show) + " more";
    throw Error({.message = msg, .file = where});
  }
  return ck;
}

}  // namespace pi0
