// openpi's PaligemmaTokenizer (docs/model.md §5): SentencePiece ids for a prompt in the π0 format (BOS +
// cleaned text, then "\n" encoded separately) or the π0.5 format with the discretised state,
// right-padded or truncated to the model's token length with a validity mask.
#pragma once
#include <atomic>
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
// Double precision: openpi normalises with float64 stats, so the state it digitises is float64.
std::vector<int> discretize_state(const std::vector<double>& state);

// PaliGemma's tokenizer has 257 152 pieces and encodes "\n" (the π0 prompt's "start of answer")
// as the single piece 108; π0/π0.5 were trained on that id. A model file of that size whose "\n"
// encodes otherwise is not PaliGemma's (or is damaged) and would shift every prompt silently:
// throws naming `path`. Models of any other size (the demo tokenizers) are not checked.
inline constexpr int kPaligemmaVocabSize = 257152;
inline constexpr int kPaligemmaNewlineId = 108;
void check_paligemma_newline(int vocab_size, const std::vector<int>& newline_ids, const std::string& path);

class PromptTokenizer {
 public:
  // Loads a SentencePiece model file; errors name the file.
  explicit PromptTokenizer(const std::string& model_path);
  ~PromptTokenizer();
  int vocab_size() const;
  std::string piece(int id) const;  // the piece text of an id (debugging, `pi0 tokenize`)
  const std::string& path() const { return path_; }

  std::vector<int> encode(const std::string& text, bool add_bos) const;
  // π0 format when `state` is null (also π0.5 without discrete state input), else π0.5's
  // "Task: …, State: …;\nAction: " with the discretised (normalised, unpadded) state.
  // A prompt longer than max_len is truncated as openpi does; the first truncation of each
  // tokenizer prints one warning to stderr (a robot loop would otherwise flood the log).
  TokenizedPrompt tokenize(const std::string& prompt, int max_len, const std::vector<double>* state = nullptr) const;
  // The text that is tokenised (for debugging and the CLI).
  std::string format(const std::string& prompt, const std::vector<double>* state) const;

 private:
  std::string path_;
  mutable std::atomic<bool> warned_truncation_{false};
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace pi0
