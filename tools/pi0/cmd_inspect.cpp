// pi0 inspect DIR [--json]: what a checkpoint is (π0 / π0.5), its dimensions, and its tensors
// per category. Opening checks every tensor name, shape and dtype.
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "commands.h"
#include "model/checkpoint.h"
#include "policy/normalizer.h"

namespace pi0::cli {

namespace {

struct Tally {
  int64_t tensors = 0, params = 0;
  uint64_t bytes = 0;
  std::set<std::string> dtypes;
};

std::string join(const std::set<std::string>& s) {
  std::string r;
  for (const auto& x : s) r += (r.empty() ? "" : ",") + x;
  return r;
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / double(1ull << 20));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  return buf;
}

void run(const std::string& dir, bool as_json) {
  auto t0 = std::chrono::steady_clock::now();
  Checkpoint ck = open_checkpoint(dir);
  double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const ModelConfig& c = ck.config;

  std::map<std::string, Tally> cats;
  Tally total;
  for (const auto& spec : ck.layout) {
    const Tensor* t = nullptr;
    if (auto it = ck.tensors.find(spec.name); it != ck.tensors.end()) t = &it->second;
    const bool ignored = std::find(ck.ignored.begin(), ck.ignored.end(), spec.name) != ck.ignored.end();
    if (!t && !ignored) continue;  // optional tensor that is absent
    std::string dt = "?";
    uint64_t bytes = 0;
    if (t) { dt = dtype_name(t->dtype()); bytes = t->nbytes(); }
    else {
      for (const auto& f : ck.files)
        if (auto* e = f->find((ck.lerobot_prefix ? "model." : "") + spec.name)) { dt = dtype_name(e->dtype); bytes = e->end - e->begin; }
    }
    for (Tally* tl : {&cats[category_name(spec.category)], &total}) {
      tl->tensors++;
      tl->params += shape_numel(spec.shape);
      tl->bytes += bytes;
      tl->dtypes.insert(dt);
    }
  }
  if (as_json) {
    nlohmann::ordered_json j;
    j["checkpoint"] = dir;
    j["kind"] = c.variant();
    j["lerobot_prefix"] = ck.lerobot_prefix;
    j["key_layout"] = ck.key_layout;
    j["normalizers"] = describe_normalizers(dir);
    j["tensors"] = total.tensors;
    j["parameters"] = total.params;
    j["parameters_used"] = total.params - cats["unused"].params;
    j["bytes"] = total.bytes;
    j["dtypes"] = total.dtypes;
    j["open_seconds"] = open_s;
    for (const auto& [name, t] : cats)
      j["categories"][name] = {{"tensors", t.tensors}, {"parameters", t.params}, {"bytes", t.bytes}, {"dtypes", t.dtypes}};
    j["config"] = nlohmann::json::parse(config_to_json(c))["architecture"];
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("checkpoint   %s%s\n", dir.c_str(), ck.lerobot_prefix ? "  (LeRobot 'model.' key prefix)" : "");
  std::printf("key layout   %s\n", ck.key_layout_description.c_str());
  // In the order a policy prefers them (an openpi asset only for robots with that asset_id).
  const std::vector<std::string> norms = describe_normalizers(dir);
  if (norms.empty()) std::printf("normaliser   none found (pass --norm-stats to infer/serve)\n");
  for (size_t i = 0; i < norms.size(); ++i) std::printf("%s %s\n", i ? "            " : "normaliser  ", norms[i].c_str());
  // openpi's conversion leaves discrete_state_input out; then the robot decides at load.
  const char* prompt = !c.pi05                    ? ""
                       : !c.discrete_state_input  ? "  (prompt format not stated in config.json: the robot decides at "
                                                    "load as openpi's train configs do: libero without the state, "
                                                    "droid/aloha with it)"
                       : *c.discrete_state_input  ? "  (state in the prompt, as config.json says)"
                                                  : "  (no state input, as config.json says)";
  std::printf("kind         %s%s\n", c.pi05 ? "pi0.5" : "pi0", prompt);
  std::printf("vision       SigLIP width %d, depth %d, %d heads x %d, mlp %d, patch %d, %d tokens/image\n",
              c.vision.width, c.vision.depth, c.vision.num_heads, c.vision.head_dim, c.vision.mlp_dim,
              c.vision.patch_size, c.vision.num_patches);
  std::printf("language     Gemma width %d, depth %d, %d heads / %d kv x %d, mlp %d, vocab %d\n", c.vlm.width,
              c.vlm.depth, c.vlm.num_heads, c.vlm.num_kv_heads, c.vlm.head_dim, c.vlm.mlp_dim, c.vlm.vocab_size);
  std::printf("expert       Gemma width %d, depth %d, %d heads / %d kv x %d, mlp %d%s\n", c.expert.width,
              c.expert.depth, c.expert.num_heads, c.expert.num_kv_heads, c.expert.head_dim, c.expert.mlp_dim,
              c.expert.adarms ? ", adaRMS" : "");
  std::printf("io           %zu cameras %dx%d, %d prompt tokens, actions %d x %d, %d steps; prefix %d, suffix %d\n",
              c.cameras.size(), c.image_height, c.image_width, c.max_token_len, c.action_horizon, c.action_dim,
              c.num_steps, c.prefix_len(), c.suffix_len());
  std::printf("\n%-10s %8s %15s %10s  %s\n", "category", "tensors", "parameters", "bytes", "dtypes");
  for (const auto& [name, t] : cats)
    std::printf("%-10s %8lld %15lld %10s  %s\n", name.c_str(), (long long)t.tensors, (long long)t.params,
                human_bytes(t.bytes).c_str(), join(t.dtypes).c_str());
  std::printf("%-10s %8lld %15lld %10s  %s\n", "total", (long long)total.tensors, (long long)total.params,
              human_bytes(total.bytes).c_str(), join(total.dtypes).c_str());
  std::printf("%-10s %8s %15lld  (without the unused expert lm_head)\n", "used", "", (long long)(total.params - cats["unused"].params));
  std::printf("\nopened and checked in %.3f s\n", open_s);
}

}  // namespace

void add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Check a checkpoint and show its kind, dimensions and tensors");
  auto dir = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("dir", *dir, "checkpoint directory (config.json + model.safetensors)")->required();
  cmd->add_flag("--json", *json, "print one JSON object instead of the table");
  cmd->callback([dir, json] { run(*dir, *json); });
}

}  // namespace pi0::cli
