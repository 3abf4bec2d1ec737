// pi0 tokenize: a prompt as the model sees it (docs/model.md §5) — ids and mask in openpi's π0 or π0.5
// format — for checking a tokenizer file or a prompt without loading a model.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "commands.h"
#include "policy/tokenizer.h"

namespace pi0::cli {

void add_tokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Tokenize a prompt in openpi's pi0 / pi0.5 format (ids + mask)");
  struct Args { std::string tokenizer, prompt, state; bool pi05 = false, json = false; int max_len = 0; };
  auto a = std::make_shared<Args>();
  cmd->add_option("--tokenizer", a->tokenizer, "SentencePiece model file (PaliGemma tokenizer.model)")->required();
  cmd->add_option("--prompt", a->prompt, "the task prompt")->required();
  cmd->add_option("--state", a->state, "normalised robot state v1,v2,... (pi0.5 format: discretised into the prompt)");
  cmd->add_flag("--pi05", a->pi05, "pi0.5 format with the discretised state (needs --state)");
  cmd->add_option("--max-len", a->max_len, "token length (default: 48 pi0, 200 pi0.5)")->check(CLI::Range(1, 1 << 20));
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a] {
    PromptTokenizer tok(a->tokenizer);
    std::vector<double> state = parse_number_list(a->state, "--state");
    if (a->pi05 && a->state.empty())
      throw Error(ErrorInfo{.message = "the pi0.5 format puts the state into the prompt: pass --state", .field = "--state"});
    if (!a->pi05 && !a->state.empty())
      throw Error(ErrorInfo{.message = "--state is only used by the pi0.5 format: add --pi05", .field = "--state"});
    const int max_len = a->max_len > 0 ? a->max_len : (a->pi05 ? 200 : 48);
    const std::vector<double>* sp = a->pi05 ? &state : nullptr;
    const TokenizedPrompt t = tok.tokenize(a->prompt, max_len, sp);
    const std::string text = tok.format(a->prompt, sp);
    std::vector<std::string> pieces;
    for (int i = 0; i < std::min<int>(t.untruncated_len, max_len); ++i) pieces.push_back(tok.piece(t.ids[i]));
    if (a->json) {
      nlohmann::ordered_json j;
      j["format"] = a->pi05 ? "pi05" : "pi0";
      j["text"] = text + (a->pi05 ? "" : "\n");
      j["max_len"] = max_len;
      j["untruncated_len"] = t.untruncated_len;
      j["truncated"] = t.truncated();
      j["ids"] = t.ids;
      std::vector<bool> mask(t.mask.begin(), t.mask.end());
      j["mask"] = mask;
      j["pieces"] = pieces;
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("format: %s, %d tokens (%d real%s)\n", a->pi05 ? "pi0.5" : "pi0", max_len,
                std::min(t.untruncated_len, max_len), t.truncated() ? ", truncated" : "");
    std::printf("%6s %8s  %s\n", "pos", "id", "piece");
    for (int i = 0; i < max_len; ++i)
      if (t.mask[i]) std::printf("%6d %8d  %s\n", i, t.ids[i], nlohmann::json(pieces[i]).dump().c_str());
    if (t.untruncated_len < max_len) std::printf("%6s %8s  (%d padding ids 0, mask false)\n", "", "", max_len - t.untruncated_len);
  });
}

}  // namespace pi0::cli
