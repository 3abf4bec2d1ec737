#include "policy/tokenizer.h"

#include <sentencepiece_processor.h>

#include <cmath>
#include <filesystem>

#include "pi0/error.h"

namespace pi0 {

std::string clean_prompt(const std::string& prompt) {
  // Python's str.strip() with no argument strips ASCII whitespace (and Unicode spaces, which
  // byte-level input from robots does not carry in practice).
  const char* ws = " \t\n\r\v\f";
  const size_t b = prompt.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  const size_t e = prompt.find_last_not_of(ws);
  std::string s = prompt.substr(b, e - b + 1);
  for (char& c : s)
    if (c == '_' || c == '\n') c = ' ';
  return s;
}

std::vector<int> discretize_state(const std::vector<float>& state) {
  std::vector<int> out;
  out.reserve(state.size());
  for (float f : state) {
    const double x = f;
    if (std::isnan(x)) {
      out.push_back(255);  // numpy.digitize puts NaN past the last edge
      continue;
    }
    int count = 0;  // edges e_k = −1 + k/128 (exact in float64) with e_k <= x
    for (int k = 0; k < 256; ++k) count += (-1.0 + k * (2.0 / 256.0)) <= x;
    out.push_back(count - 1);
  }
  return out;
}

PromptTokenizer::PromptTokenizer(const std::string& model_path)
    : path_(model_path), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  if (!std::filesystem::is_regular_file(model_path))
    throw Error({.message = "tokenizer model not found (pass --tokenizer, or put tokenizer.model beside the checkpoint)",
                 .file = model_path});
  const auto status = sp_->Load(model_path);
  if (!status.ok()) throw Error({.message = "not a SentencePiece model: " + status.ToString(), .file = model_path});
}

PromptTokenizer::~PromptTokenizer() = default;

int PromptTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::vector<int> PromptTokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) throw Error({.message = "tokenizer failed: " + status.ToString(), .file = path_});
  if (add_bos) ids.insert(ids.begin(), sp_->bos_id());
  return ids;
}

std::string PromptTokenizer::format(const std::string& prompt, const std::vector<float>* state) const {
  const std::string cleaned = clean_prompt(prompt);
  if (!state) return cleaned;
  std::string s = "Task: " + cleaned + ", State: ";
  const auto bins = discretize_state(*state);
  for (size_t i = 0; i < bins.size(); ++i) s += (i ? " " : "") + std::to_string(bins[i]);
  return s + ";\nAction: ";
}

TokenizedPrompt PromptTokenizer::tokenize(const std::string& prompt, int max_len, const std::vector<float>* state) const {
  std::vector<int> ids = encode(format(prompt, state), true);
  if (!state) {
    const std::vector<int> nl = encode("\n", false);  // "start of answer", encoded on its own
    ids.insert(ids.end(), nl.begin(), nl.end());
  }
  TokenizedPrompt t;
  t.untruncated_len = static_cast<int>(ids.size());
  t.ids.assign(static_cast<size_t>(max_len), 0);
  t.mask.assign(static_cast<size_t>(max_len), 0);
  for (int i = 0; i < std::min(max_len, t.untruncated_len); ++i) {
    t.ids[i] = ids[i];
    t.mask[i] = 1;
  }
  return t;
}

}  // namespace pi0
