#include "policy/tokenizer.h"

#include <sentencepiece_processor.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "io/tensor_files.h"
#include "pi0/error.h"
#include "pi0/log.h"

namespace pi0 {

namespace {

// Length of the whitespace character (as Python's str.isspace() defines it) that starts at
// s[i], or 0. UTF-8: ASCII \t \n \v \f \r, \x1c-\x1f and space; U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
size_t space_at(const std::string& s, size_t i) {
  const auto u = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
  const unsigned c = u(i);
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
  if (c == 0xc2 && (u(i + 1) == 0x85 || u(i + 1) == 0xa0)) return 2;
  if (c == 0xe1 && u(i + 1) == 0x9a && u(i + 2) == 0x80) return 3;
  if (c == 0xe2 && u(i + 1) == 0x80) {
    const unsigned d = u(i + 2);
    if ((d >= 0x80 && d <= 0x8a) || d == 0xa8 || d == 0xa9 || d == 0xaf) return 3;
  }
  if (c == 0xe2 && u(i + 1) == 0x81 && u(i + 2) == 0x9f) return 3;
  if (c == 0xe3 && u(i + 1) == 0x80 && u(i + 2) == 0x80) return 3;
  return 0;
}

// Length of the whitespace character that ends just before s[e] (exclusive end), or 0.
size_t space_before(const std::string& s, size_t e) {
  for (size_t n = 1; n <= 3 && n <= e; ++n)
    if (space_at(s, e - n) == n) return n;
  return 0;
}

}  // namespace

std::string clean_prompt(const std::string& prompt) {
  // Python's str.strip(): Unicode whitespace at both ends (robots' prompts are UTF-8 text).
  size_t b = 0, e = prompt.size();
  while (b < e) {
    const size_t n = space_at(prompt, b);
    if (!n) break;
    b += n;
  }
  while (e > b) {
    const size_t n = space_before(prompt, e);
    if (!n) break;
    e -= n;
  }
  std::string s = prompt.substr(b, e - b);
  for (char& c : s)
    if (c == '_' || c == '\n') c = ' ';
  return s;
}

std::vector<int> discretize_state(const std::vector<double>& state) {
  std::vector<int> out;
  out.reserve(state.size());
  for (const double x : state) {
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
  if (!std::filesystem::exists(model_path))  // other kinds of file: read_text_file below says which
    throw Error(ErrorInfo{.message = "tokenizer model not found (pass --tokenizer, or put tokenizer.model beside the checkpoint)",
                 .file = model_path});
  // Read by us (a regular file, at most 64 MiB; PaliGemma's is 4.2 MB) so that a FIFO or a device is
  // refused by name instead of read without end.
  const auto status = sp_->LoadFromSerializedProto(read_text_file(model_path));
  if (!status.ok()) throw Error(ErrorInfo{.message = "not a SentencePiece model: " + status.ToString(), .file = model_path});
  // openpi's formats need BOS; a model without one would silently produce different ids.
  if (sp_->bos_id() < 0)
    throw Error(ErrorInfo{.message = "SentencePiece model has no BOS piece", .file = model_path, .field = "bos_id",
                 .expected = ">= 0 (PaliGemma: 2)", .got = std::to_string(sp_->bos_id())});
  check_paligemma_newline(vocab_size(), encode("\n", false), model_path);
}

void check_paligemma_newline(int vocab_size, const std::vector<int>& newline_ids, const std::string& path) {
  if (vocab_size != kPaligemmaVocabSize || newline_ids == std::vector<int>{kPaligemmaNewlineId}) return;
  std::string got = "[";
  for (size_t i = 0; i < newline_ids.size(); ++i) got += (i ? ", " : "") + std::to_string(newline_ids[i]);
  throw Error(ErrorInfo{.message = "tokenizer has PaliGemma's vocabulary size but is not PaliGemma's tokenizer: \"\\n\" "
                                   "must be the single piece the model was trained with",
               .file = path, .field = "\"\\n\" ids", .expected = "[" + std::to_string(kPaligemmaNewlineId) + "]",
               .got = got + "]"});
}

PromptTokenizer::~PromptTokenizer() = default;

int PromptTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::string PromptTokenizer::piece(int id) const {
  return id >= 0 && id < sp_->GetPieceSize() ? sp_->IdToPiece(id) : std::string("<invalid>");
}

std::vector<int> PromptTokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) throw Error(ErrorInfo{.message = "tokenizer failed: " + status.ToString(), .file = path_});
  if (add_bos) ids.insert(ids.begin(), sp_->bos_id());
  return ids;
}

// A prompt far longer than any token window (1 MiB from a client, say) would cost the worker a
// second of SentencePiece and hundreds of MB of its buffers, for ids that are cut away. Only the
// start can reach the window: keep the first `keep` bytes, cut at a space so that the pieces
// before the cut are exactly those of the whole text (SentencePiece never merges across
// whitespace). Without a space in the second half of the window, the cut is at a UTF-8 boundary.
std::string bounded_prompt(std::string cleaned, size_t keep) {
  if (cleaned.size() <= keep) return cleaned;
  size_t cut = cleaned.rfind(' ', keep);
  if (cut == std::string::npos || cut < keep / 2) {
    cut = keep;
    while (cut > 0 && (static_cast<unsigned char>(cleaned[cut]) & 0xc0) == 0x80) --cut;  // not inside a character
  }
  cleaned.resize(cut);
  return cleaned;
}

std::string PromptTokenizer::format(const std::string& prompt, const std::vector<double>* state) const {
  const std::string cleaned = clean_prompt(prompt);
  if (!state) return cleaned;
  std::string s = "Task: " + cleaned + ", State: ";
  const auto bins = discretize_state(*state);
  for (size_t i = 0; i < bins.size(); ++i) s += (i ? " " : "") + std::to_string(bins[i]);
  return s + ";\nAction: ";
}

TokenizedPrompt PromptTokenizer::tokenize(const std::string& prompt, int max_len, const std::vector<double>* state) const {
  if (max_len <= 0)
    throw Error(ErrorInfo{.message = "token length must be positive", .field = "max_token_len", .expected = "> 0",
                 .got = std::to_string(max_len)});
  // Text past what can reach the window is not encoded (bounded_prompt); if the kept start gives
  // too few ids to fill the window after all (pieces over 16 bytes on average), the whole text is.
  const std::string cleaned = clean_prompt(prompt);  // format() cleans again: a no-op
  const size_t keep = std::max<size_t>(8192, 16 * static_cast<size_t>(max_len));
  std::vector<int> ids = encode(format(bounded_prompt(cleaned, keep), state), true);
  if (cleaned.size() > keep && static_cast<int>(ids.size()) <= max_len) ids = encode(format(cleaned, state), true);
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
  if (t.truncated() && !warned_truncation_.exchange(true))
    log_message(LogLevel::Warning, "prompt is " + std::to_string(t.untruncated_len) + " tokens, longer than the model's " +
                                       std::to_string(max_len) + "; truncated (as openpi does). "
                                       "Further truncations by this tokenizer are not reported.");
  return t;
}

}  // namespace pi0
