// openpi's prompt formats, exactly: every golden tokenizer case (ids and mask).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "pi0/error.h"
#include "policy/tokenizer.h"

using namespace pi0;

namespace {
std::string golden(const std::string& rel) { return std::string(PI0_GOLDEN_DIR) + "/" + rel; }
}

TEST(Tokenizer, GoldenCases) {
  PromptTokenizer tok(golden("tokenizer.model"));
  std::ifstream f(golden("tokenizer_cases.json"));
  auto j = nlohmann::json::parse(f);
  EXPECT_EQ(tok.vocab_size(), j["vocab_size"].get<int>());
  int n = 0;
  for (const auto& c : j["cases"]) {
    SCOPED_TRACE(c["prompt"].get<std::string>());
    const bool pi05 = c["format"] == "pi05";
    std::vector<float> state;
    if (pi05) state = c["state"].get<std::vector<float>>();
    EXPECT_EQ(clean_prompt(c["prompt"]), c["cleaned_text"].get<std::string>());
    if (pi05) {
      EXPECT_EQ(discretize_state(state), c["discretized_state"].get<std::vector<int>>());
      EXPECT_EQ(tok.format(c["prompt"], &state), c["full_prompt"].get<std::string>());
    }
    TokenizedPrompt t = tok.tokenize(c["prompt"], c["max_len"], pi05 ? &state : nullptr);
    EXPECT_EQ(t.ids, c["tokens"].get<std::vector<int32_t>>());
    std::vector<uint8_t> mask;
    for (bool b : c["mask"]) mask.push_back(b);
    EXPECT_EQ(t.mask, mask);
    EXPECT_EQ(t.untruncated_len, c["untruncated_len"].get<int>());
    ++n;
  }
  EXPECT_EQ(n, 11);
}

TEST(Tokenizer, StateBinsAtEdgesAndBeyond) {
  const float below = std::nextafter(0.0f, -1.0f);
  EXPECT_EQ(discretize_state({-1.5f, -1.0f, below, 0.0f, 0.9921875f, 0.99f, 1.0f, 7.f, NAN}),
            (std::vector<int>{-1, 0, 127, 128, 255, 254, 255, 255, 255}));
}

TEST(Tokenizer, MissingOrInvalidModelIsAnError) {
  try {
    PromptTokenizer t("/nonexistent/tokenizer.model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.model"), std::string::npos);
  }
  EXPECT_THROW(PromptTokenizer(golden("tokenizer_cases.json")), Error);
}
