#include "policy/demo_assets.h"

#include <sentencepiece_trainer.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "pi0/error.h"
#include "policy/normalize.h"
#include "policy/robots.h"

// Exported by libsentencepiece but not declared in Debian's headers; the trainer logs every
// step to stderr otherwise.
namespace sentencepiece::logging {
void SetMinLogLevel(int v);
}

namespace pi0 {

namespace fs = std::filesystem;

namespace {

// Robot-task sentences built from word lists: enough distinct words that BPE can fill any
// vocabulary up to ~1000 pieces, plus π0.5-style "Task: …, State: …;\nAction: " lines.
std::vector<std::string> demo_corpus() {
  const std::vector<std::string> verbs = {"pick up", "put", "place", "move", "push", "pull", "open", "close", "stack",
                                          "fold", "wipe", "pour", "grab", "lift", "drop", "rotate", "insert", "hang",
                                          "sort", "turn on", "turn off", "uncap", "transfer", "slide", "press"};
  const std::vector<std::string> colours = {"red", "green", "blue", "yellow", "black", "white", "orange", "purple",
                                            "pink", "brown", "grey", "small", "large", "empty", "wooden", "metal"};
  const std::vector<std::string> objects = {"block", "cube", "cup", "mug", "bowl", "plate", "towel", "shirt", "drawer",
                                            "lid", "bottle", "spoon", "fork", "knife", "sponge", "box", "ball",
                                            "marker", "pen", "book", "can", "jar", "tray", "cloth", "banana", "apple",
                                            "carrot", "basket", "door", "switch", "faucet", "kettle", "pan", "pot"};
  const std::vector<std::string> places = {"on the table", "in the bowl", "into the drawer", "on the plate",
                                           "to the left", "to the right", "in the basket", "on the shelf",
                                           "next to the sink", "into the box", "onto the tray", "under the lid",
                                           "in the microwave", "on the stove", "behind the cup", "in front of the robot"};
  std::vector<std::string> out;
  size_t k = 0;
  for (const auto& v : verbs)
    for (const auto& c : colours)
      for (size_t o = 0; o < objects.size(); o += 3) {
        const std::string& obj = objects[(o + k) % objects.size()];
        const std::string& pl = places[k % places.size()];
        std::string s = v + " the " + c + " " + obj + " " + pl;
        if (k % 7 == 0) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
        out.push_back(s);
        if (k % 5 == 0) {
          std::string st = "Task: " + s + ", State:";
          for (int d = 0; d < 8; ++d) st += " " + std::to_string((k * 37 + d * 91) % 256);
          out.push_back(st + ";\nAction: ");
        }
        ++k;
      }
  return out;
}

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& v) : v_(v) {}
  bool done() const override { return i_ >= v_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return v_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& v_;
  size_t i_ = 0;
};

std::vector<double> demo_values(int n, double base, double step) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[i] = base + step * std::sin(1.0 + i);
  return v;
}

}  // namespace

std::string train_demo_tokenizer(int vocab_size) {
  sentencepiece::logging::SetMinLogLevel(2);  // errors only
  const auto corpus = demo_corpus();
  VectorIterator it(corpus);
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab_size)},
      {"pad_id", "0"}, {"eos_id", "1"}, {"bos_id", "2"}, {"unk_id", "3"},
      {"pad_piece", "<pad>"}, {"eos_piece", "<eos>"}, {"bos_piece", "<bos>"}, {"unk_piece", "<unk>"},
      {"user_defined_symbols", "\n"},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"character_coverage", "1.0"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"num_threads", "1"},
  };
  std::string proto;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
  if (!status.ok())
    throw Error(ErrorInfo{.message = "training the demo tokenizer failed: " + status.ToString(), .field = "vocab_size",
                 .got = std::to_string(vocab_size)});
  return proto;
}

DemoAssets write_demo_assets(const std::string& dir, const ModelConfig& cfg) {
  DemoAssets out;
  // Training is only sensible for demo vocabularies; a real model needs PaliGemma's 257 152 pieces.
  if (cfg.vlm.vocab_size >= 400 && cfg.vlm.vocab_size <= 1024) {
    const std::string proto = train_demo_tokenizer(cfg.vlm.vocab_size);
    out.tokenizer = (fs::path(dir) / "tokenizer.model").string();
    std::ofstream f(out.tokenizer, std::ios::binary);
    f << proto;
    if (!f) throw Error(ErrorInfo{.message = "cannot write tokenizer", .file = out.tokenizer});
  } else {
    out.tokenizer_note = "vocabulary of " + std::to_string(cfg.vlm.vocab_size) +
                         " pieces: use the PaliGemma tokenizer.model (--tokenizer, or copy it beside the checkpoint)";
  }
  for (const std::string& name : builtin_robot_names()) {
    const RobotConfig r = builtin_robot(name, cfg.pi05);
    std::map<std::string, NormStats> stats;
    auto make = [](int n, double scale) {
      NormStats s;
      s.mean = demo_values(n, 0.0, 0.2 * scale);
      s.std = demo_values(n, 0.5 * scale, 0.1 * scale);
      for (int i = 0; i < n; ++i) {
        s.q01.push_back(s.mean[i] - 2 * s.std[i]);
        s.q99.push_back(s.mean[i] + 2 * s.std[i]);
      }
      return s;
    };
    stats["state"] = make(r.state_dim(), 1.0);
    stats["actions"] = make(r.action_dim, r.delta_mask.empty() ? 1.0 : 0.2);  // deltas are small
    const fs::path p = fs::path(dir) / "assets" / r.asset_id / "norm_stats.json";
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) throw Error(ErrorInfo{.message = "cannot create directory: " + ec.message(), .file = p.parent_path().string()});
    std::ofstream f(p);
    f << norm_stats_to_json(stats);
    if (!f) throw Error(ErrorInfo{.message = "cannot write norm stats", .file = p.string()});
    out.norm_stats.push_back(p.string());
  }
  return out;
}

}  // namespace pi0
