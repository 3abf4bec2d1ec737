#include "io/tensor_files.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "pi0/error.h"

namespace pi0 {
namespace fs = std::filesystem;

namespace {

// All safetensors files of the checkpoint: one file, or the shards an index names.
std::vector<std::string> model_files(const std::string& dir) {
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) return {single.string()};
  if (!fs::exists(index))
    throw Error({.message = "no model.safetensors or model.safetensors.index.json in checkpoint directory", .file = dir});
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(index.string()));
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

bool is_lerobot_normalizer_buffer(const std::string& name) {
  for (const char* p : {"normalize_inputs.", "normalize_targets.", "unnormalize_outputs."})
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

std::string read_text_file(const std::string& path, uint64_t max_bytes) {
  // Only regular files of bounded size: /dev/zero would be read forever into memory and a FIFO
  // would block the process without a word.
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw Error({.message = "cannot read file: it does not exist", .file = path});
  if (!fs::is_regular_file(st)) throw Error({.message = "not a regular file", .file = path, .expected = "a file"});
  const uint64_t size = fs::file_size(path, ec);
  if (!ec && size > max_bytes)
    throw Error({.message = "file is too large for what it should hold", .file = path,
                 .expected = "at most " + std::to_string(max_bytes) + " bytes", .got = std::to_string(size) + " bytes"});
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error({.message = "cannot read file", .file = path});
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const Shape* TensorFiles::shape_of(const std::string& name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second.entry->shape;
}

TensorFiles open_tensor_files(const std::string& dir, bool populate) {
  TensorFiles tf;
  for (const auto& path : model_files(dir)) {
    auto f = SafeTensorsFile::open(path, populate);
    for (const auto& e : f->entries()) {
      if (tf.tensors.count(e.name))
        throw Error({.message = "tensor stored in two files (also in " + tf.tensors[e.name].file->path() + ")",
                     .file = path, .tensor = e.name});
      tf.tensors[e.name] = {f.get(), &e};
    }
    tf.files.push_back(std::move(f));
  }
  for (auto it = tf.tensors.begin(); it != tf.tensors.end();) {
    if (is_lerobot_normalizer_buffer(it->first)) {
      tf.normalizer_buffers.insert(*it);
      it = tf.tensors.erase(it);
    } else {
      ++it;
    }
  }
  // LeRobot training checkpoints prefix every key with "model.".
  if (!tf.tensors.empty()) {
    bool all = true;
    for (const auto& [n, _] : tf.tensors) all = all && n.rfind("model.", 0) == 0;
    if (all) {
      tf.lerobot_prefix = true;
      decltype(tf.tensors) stripped;
      for (auto& [n, v] : tf.tensors) stripped[n.substr(6)] = v;
      tf.tensors.swap(stripped);
    }
  }
  tf.where = tf.files.size() == 1 ? tf.files[0]->path() : dir;
  return tf;
}

}  // namespace pi0
