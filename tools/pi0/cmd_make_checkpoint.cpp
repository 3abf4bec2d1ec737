// pi0 make-checkpoint: a random-weight checkpoint in exactly openpi's layout, for the demo, tests
// and full-size benchmarks without downloading anything. Besides the weights it writes what a
// policy needs (policy/demo_assets.h): a tokenizer for the tiny presets and norm stats for every
// built-in robot under assets/<asset_id>/, so `pi0 infer` runs on the result alone.
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "core/progress.h"
#include "model/random_checkpoint.h"
#include "pi0/error.h"
#include "policy/demo_assets.h"

namespace pi0::cli {

void add_make_checkpoint(CLI::App& app) {
  auto* cmd = app.add_subcommand("make-checkpoint", "Write a random-weight checkpoint (openpi layout)");
  struct Args { std::string preset, out, dtype = "f32"; uint64_t seed = 0; bool force = false; };
  auto a = std::make_shared<Args>();
  cmd->add_option("--preset", a->preset, "tiny-pi0 | tiny-pi05 (demo size) or pi0 | pi05 (full size, 3.5 B parameters)")
      ->required()->check(CLI::IsMember(model_preset_names()));
  cmd->add_option("--out", a->out, "output directory (created)")->required();
  cmd->add_option("--dtype", a->dtype, "stored dtype: f32 or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("--seed", a->seed, "random seed (same seed, same weights)");
  cmd->add_flag("--force", a->force, "replace a checkpoint already in --out (refused without it)");
  cmd->callback([a] {
    // A trained checkpoint overwritten by random weights is lost work: never silently.
    for (const char* f : {"config.json", "model.safetensors", "model.safetensors.index.json"})
      if (!a->force && std::filesystem::exists(std::filesystem::path(a->out) / f))
        throw Error(ErrorInfo{.message = "already holds a checkpoint (" + std::string(f) + "); pass --force to replace it",
                              .file = a->out});
    ModelConfig cfg = model_preset(a->preset);
    RandomCheckpointOptions opt;
    opt.dtype = a->dtype == "bf16" ? DType::BF16 : DType::F32;
    opt.seed = a->seed;
    opt.progress = stderr_is_tty();
    write_random_checkpoint(a->out, cfg, opt);
    const DemoAssets assets = write_demo_assets(a->out, cfg);
    std::printf("wrote %s checkpoint (%s) to %s\n", a->preset.c_str(), a->dtype.c_str(), a->out.c_str());
    if (!assets.tokenizer.empty()) std::printf("  tokenizer: %s\n", assets.tokenizer.c_str());
    else std::printf("  no tokenizer: %s\n", assets.tokenizer_note.c_str());
    for (const auto& p : assets.norm_stats) std::printf("  norm stats: %s\n", p.c_str());
  });
}

}  // namespace pi0::cli
