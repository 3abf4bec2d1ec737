// openpi's prompt formats, exactly: every golden tokenizer case (ids and mask).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "golden_dir.h"
#include "pi0/error.h"
#include "pi0/log.h"
#include "policy/tokenizer.h"

using namespace pi0;

namespace {
using test::golden;
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
    std::vector<double> state;  // float32 values, exactly representable
    if (pi05) state = c["state"].get<std::vector<double>>();
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
  // Just below an edge in float64 (floor((s + 1) * 128) would round these up into the next bin).
  EXPECT_EQ(discretize_state({-1e-30, std::nextafter(-0.5, -1.0), std::nextafter(-1.0, -2.0), INFINITY, -INFINITY}),
            (std::vector<int>{127, 63, -1, 255, -1}));
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

// The warning goes to the embedder's log callback (once per tokenizer), never to stderr directly.
TEST(Tokenizer, TruncationWarnsOnceThroughTheLogCallback) {
  std::vector<std::pair<LogLevel, std::string>> logged;
  set_log_callback([&](LogLevel l, const std::string& m) { logged.emplace_back(l, m); });
  PromptTokenizer tok(golden("tokenizer.model"));
  testing::internal::CaptureStderr();
  TokenizedPrompt t = tok.tokenize("stack the yellow cube on the purple plate", 6);
  TokenizedPrompt t2 = tok.tokenize("stack the yellow cube on the purple plate", 6);
  TokenizedPrompt fits = tok.tokenize("up", 6);
  const std::string err = testing::internal::GetCapturedStderr();
  set_log_callback(nullptr);
  EXPECT_TRUE(t.truncated());
  EXPECT_EQ(t.ids, t2.ids);
  EXPECT_EQ(t.mask, std::vector<uint8_t>(6, 1));
  EXPECT_FALSE(fits.truncated());
  EXPECT_EQ(err, "") << "the library printed";
  ASSERT_EQ(logged.size(), 1u) << "warned more than once or never";
  EXPECT_EQ(logged[0].first, LogLevel::Warning);
  EXPECT_NE(logged[0].second.find("truncated"), std::string::npos) << logged[0].second;
}

TEST(Tokenizer, CleaningStripsLikePython) {
  EXPECT_EQ(clean_prompt(" \t\r\n pick_up\nthe cup \f\v"), "pick up the cup");
  EXPECT_EQ(clean_prompt("\x1c\x1f" "cup\x1e"), "cup");
  // Unicode whitespace (NBSP, ideographic space, line separator) at the ends, kept inside.
  EXPECT_EQ(clean_prompt("\xc2\xa0\xe3\x80\x80" "open\xc2\xa0" "lid\xe2\x80\xa8"), "open\xc2\xa0" "lid");
  // Non-space characters sharing lead bytes are not stripped (U+2010 hyphen, U+00E9).
  EXPECT_EQ(clean_prompt("\xe2\x80\x90" "caf\xc3\xa9"), "\xe2\x80\x90" "caf\xc3\xa9");
  EXPECT_EQ(clean_prompt(" \xc2\x85 "), "");
}

// A model file of PaliGemma's size must encode "\n" as 108, the id π0/π0.5 were trained on.
TEST(Tokenizer, PaligemmaSizedModelMustEncodeNewlineAs108) {
  EXPECT_NO_THROW(check_paligemma_newline(kPaligemmaVocabSize, {108}, "pg.model"));
  EXPECT_NO_THROW(check_paligemma_newline(512, {5}, "demo.model"));  // demo tokenizers: any id
  try {
    check_paligemma_newline(kPaligemmaVocabSize, {5, 9}, "/ck/tokenizer.model");
    FAIL() << "a PaliGemma-sized model with \\n = [5, 9] was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("/ck/tokenizer.model"), std::string::npos) << m;
    EXPECT_NE(m.find("expected [108], got [5, 9]"), std::string::npos) << m;
  }
  // The demo tokenizer loads (the check runs on every load and passes other sizes through).
  EXPECT_NO_THROW(PromptTokenizer tok(golden("tokenizer.model")));
}
