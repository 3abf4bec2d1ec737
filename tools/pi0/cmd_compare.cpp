// pi0 compare: run one case through two backends and print, module by module, how far apart
// they are (PCC and max-abs error of every named intermediate, per layer). The per-op PCC tests
// of the suite, as a tool anyone can run on their own checkpoint and inputs.
#include <cstdio>
#include <map>
#include <sstream>

#include "cli_util.h"
#include "commands.h"
#include "io/safetensors.h"
#include "model/replay.h"
#include "pi0/error.h"

namespace pi0::cli {

namespace {

std::map<std::string, Tensor> run_backend(const std::string& ckpt, const std::string& backend,
                                          const std::string& precision, const SafeTensorsFile& cs) {
  auto model = Pi0Model::load(ckpt, backend, backend_options(precision));
  return replay_case(*model, cs);
}

// Natural order: layer numbers compare as numbers, so layer.10 comes after layer.9.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      long x = std::stol(a.substr(i, ie - i)), y = std::stol(b.substr(j, je - j));
      if (x != y) return x < y;
      i = ie; j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i; ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

}  // namespace

void add_compare(CLI::App& app) {
  auto* cmd = app.add_subcommand("compare", "Per-module PCC and max-abs error between two backends on a case");
  struct Args { std::string checkpoint, case_file, backends = "reference,cpu", precisions = "auto,auto"; };
  auto a = std::make_shared<Args>();
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint directory")->required();
  cmd->add_option("--case", a->case_file, "case .safetensors with the inputs (names as in tests/data/golden/README.md)")->required();
  cmd->add_option("--backends", a->backends, "two backends, comma-separated: baseline,candidate")->capture_default_str();
  cmd->add_option("--precisions", a->precisions,
                  "the two backends' precisions, e.g. bf16,int8 with --backends cpu,cpu (auto | bf16 | f32 | int8)")
      ->capture_default_str();
  cmd->callback([a] {
    const std::vector<std::string> backends = split_list(a->backends), precisions = split_list(a->precisions);
    if (backends.size() != 2)
      throw Error({.message = "give exactly two backends", .field = "--backends", .expected = "baseline,candidate", .got = a->backends});
    if (precisions.size() != 2)
      throw Error({.message = "give exactly two precisions", .field = "--precisions", .expected = "baseline,candidate (e.g. bf16,int8)",
                   .got = a->precisions});
    std::vector<std::string> names;
    for (int i = 0; i < 2; ++i) names.push_back(backends[i] + (precisions[i] == "auto" ? "" : ":" + precisions[i]));
    auto cs = SafeTensorsFile::open(a->case_file);
    auto base = run_backend(a->checkpoint, backends[0], precisions[0], *cs);
    auto cand = run_backend(a->checkpoint, backends[1], precisions[1], *cs);
    std::vector<std::string> keys;
    for (const auto& [k, _] : base) if (cand.count(k)) keys.push_back(k);
    std::sort(keys.begin(), keys.end(), natural_less);
    std::printf("%s (baseline) vs %s\n%-40s %12s %12s %12s\n", names[0].c_str(), names[1].c_str(), "module", "pcc",
                "max_abs", "rel_err");
    double worst = 1.0;
    for (const auto& k : keys) {
      Comparison c = compare_tensors(base[k], cand[k]);
      worst = std::min(worst, c.pcc);
      std::printf("%-40s %12.8f %12.3e %12.3e\n", k.c_str(), c.pcc, c.max_abs, c.rel());
    }
    std::printf("%zu modules compared, lowest pcc %.8f\n", keys.size(), worst);
  });
}

}  // namespace pi0::cli
