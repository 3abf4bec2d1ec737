// openpi's PaligemmaTokenizer (SPEC §5): SentencePiece ids for a prompt in the π0 format (BOS +
// cleaned text, then "\n" encoded separately) or the π0.5 format with the discretised state,
// right-padded or truncated to the model's token length with a validity mask.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace pi0 {

struct TokenizedPrompt {
  std::vector<int32_t> ids;   // max_len ids, 0-padded
  std::vector<uint8_t> mask;  // 1 = real token
  int untruncated_len = 0;    // ids before padding / truncation
  bool truncated() const { return untruncated_len > static_cast<int>(ids.size()); }
};

// strip() surrounding whitespace, then '_' and '\n' become spaces (no lowercasing).
std::string clean_prompt(const std::string& prompt);
// digitize(state, linspace(−1, 1, 257)[:−1]) − 1: bins −1..255; NaN goes to 255.
std::vector<int> discretize_state(const std::vector<float>& state);

class PromptTokenizer {
 public:
  // Loads a SentencePiece model file; errors name the file.
  explicit PromptTokenizer(const std::string& model_path);
  ~PromptTokenizer();
  int vocab_size() const;
  const std::string& path() const { return path_; }

  std::vector<int> encode(const std::string& text, bool add_bos) const;
  // π0 format when `state` is null (also π0.5 without discrete state input), else π0.5's
  // "Task: …, State: …;\nAction: " with the discretised (normalised, unpadded) state.
  TokenizedPrompt tokenize(const std::string& prompt, int max_len, const std::vector<float>* state = nullptr) const;
  // The text that is tokenised (for debugging and the CLI).
  std::string format(const std::string& prompt, const std::vector<float>* state) const;

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace pi0
