// pi0 replay: run a recorded case (tests/data/golden/README.md, section "A case file" input names) and write every output the case
// expects, under the same names without the `expect.` prefix. Also prints how each compares.
#include <cstdio>

#include "cli_util.h"
#include "commands.h"
#include "io/safetensors.h"
#include "model/replay.h"
#include "pi0/error.h"

namespace pi0::cli {

void add_replay(CLI::App& app) {
  auto* cmd = app.add_subcommand("replay", "Run a recorded case file and write the outputs it expects");
  struct Args { std::string checkpoint, case_file, out, backend = default_backend_name(), precision = "auto"; bool quiet = false; };
  auto a = std::make_shared<Args>();
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint directory")->required();
  cmd->add_option("--case", a->case_file, "case .safetensors (inputs + expect.* outputs)")->required();
  cmd->add_option("--out", a->out, "output .safetensors")->required();
  cmd->add_option("--backend", a->backend, "reference | cpu")->capture_default_str();
  add_precision_option(cmd, &a->precision);
  cmd->add_flag("--quiet", a->quiet, "do not print the comparison table");
  cmd->callback([a] {
    auto model = Pi0Model::load(a->checkpoint, a->backend, backend_options(a->precision));
    auto cs = SafeTensorsFile::open(a->case_file);
    auto got = replay_case(*model, *cs);
    std::vector<std::pair<std::string, Tensor>> outs;
    if (!a->quiet) std::printf("%-34s %12s %12s %12s\n", "output", "pcc", "max_abs", "rel_err");
    for (const auto& e : cs->entries()) {
      if (e.name.rfind("expect.", 0) != 0) continue;
      const std::string name = e.name.substr(7);
      auto it = got.find(name);
      if (it == got.end()) throw Error({.message = "the model produced no output for this expected tensor", .file = a->case_file, .tensor = e.name});
      outs.emplace_back(name, it->second);
      if (!a->quiet) {
        Comparison c = compare_tensors(cs->tensor(e), it->second);
        std::printf("%-34s %12.8f %12.3e %12.3e\n", name.c_str(), c.pcc, c.max_abs, c.rel());
      }
    }
    write_safetensors(a->out, outs, {{"backend", a->backend}});
    std::printf("wrote %zu outputs to %s\n", outs.size(), a->out.c_str());
  });
}

}  // namespace pi0::cli
