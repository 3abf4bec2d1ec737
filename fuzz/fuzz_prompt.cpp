// libFuzzer target: any bytes as a prompt (including invalid UTF-8, NULs and Unicode whitespace),
// tokenised in openpi's π0 format and, with a state taken from the first bytes, in π0.5's, with the
// demo tokenizer (PaliGemma's conventions; trained once in LLVMFuzzerInitialize, as
// `pi0 make-checkpoint --preset tiny-pi0` does). Must end in a clean pi0::Error or ids within the
// vocabulary, starting with BOS, a mask that is a prefix of ones, and the untruncated length.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "pi0/error.h"
#include "policy/demo_assets.h"
#include "policy/tokenizer.h"

namespace {

std::unique_ptr<pi0::PromptTokenizer> g_tok;
constexpr int kVocab = 512;  // the tiny presets' vocabulary
constexpr int kMaxLen = 48;  // π0's token length

void check(const pi0::TokenizedPrompt& t) {
  if (t.ids.size() != kMaxLen || t.mask.size() != kMaxLen || t.untruncated_len < 1) std::abort();
  if (t.ids[0] != 2 || t.mask[0] != 1) std::abort();  // BOS first (PaliGemma: 2)
  const int valid = std::min(t.untruncated_len, kMaxLen);
  for (int i = 0; i < kMaxLen; ++i) {
    if (t.mask[i] != (i < valid ? 1 : 0)) std::abort();
    if (t.ids[i] < 0 || t.ids[i] >= kVocab || (i >= valid && t.ids[i] != 0)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string path = "/tmp/pi0_fuzz_prompt_" + std::to_string(::getpid()) + ".model";
  std::ofstream(path, std::ios::binary) << pi0::train_demo_tokenizer(kVocab);
  g_tok = std::make_unique<pi0::PromptTokenizer>(path);
  ::unlink(path.c_str());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string prompt(reinterpret_cast<const char*>(data), size);
  try {
    check(g_tok->tokenize(prompt, kMaxLen));
    // π0.5: up to 8 state values in [-1.5, 1.5] from the first bytes (the discretiser's range
    // and beyond), the whole input as the task.
    std::vector<double> state;
    for (size_t i = 0; i < std::min<size_t>(size, 8); ++i) state.push_back((data[i] - 128) / 85.0);
    check(g_tok->tokenize(prompt, kMaxLen, &state));
  } catch (const pi0::Error&) {
  }
  return 0;
}
