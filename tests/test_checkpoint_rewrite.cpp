// A checkpoint overwritten in place under a running process (retraining, `cp new/model.safetensors
// ck/`) must change nothing a loaded model computes, and a truncated one must not crash it: the
// model keeps every weight it reads in its own memory.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/compare.h"
#include "model/pi0_model.h"
#include "model/random_checkpoint.h"
#include "model_util.h"
#include "temp_dir.h"

using namespace pi0;
namespace fs = std::filesystem;

namespace {

// Overwrites `dst` in place (same inode, as cp does), unlike a rename, which a mapping would survive.
void overwrite_in_place(const std::string& src, const std::string& dst) {
  std::ifstream in(src, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::fstream out(dst, std::ios::binary | std::ios::in | std::ios::out);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST(CheckpointRewrite, LoadedModelIgnoresRewriteAndSurvivesTruncation) {
  const ModelConfig c = model_preset("tiny-pi0");
  const std::string a = test::temp_dir("rewrite_a"), b = test::temp_dir("rewrite_b");
  write_random_checkpoint(a, c, {.dtype = DType::BF16, .seed = 1});
  write_random_checkpoint(b, c, {.dtype = DType::BF16, .seed = 2});
  ASSERT_EQ(fs::file_size(a + "/model.safetensors"), fs::file_size(b + "/model.safetensors"));
  const ModelInputs in = test::random_inputs(c, 1, 7);
  for (const char* backend : {"reference", "cpu"}) {
    SCOPED_TRACE(backend);
    const std::string dir = test::temp_dir(std::string("rewrite_live_") + backend);
    fs::copy(a, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    auto model = Pi0Model::load(dir, backend);
    const Tensor before = model->sample_actions(in);
    overwrite_in_place(b + "/model.safetensors", dir + "/model.safetensors");
    const Tensor rewritten = model->sample_actions(in);
    fs::resize_file(dir + "/model.safetensors", 1000);  // reading the map now would be SIGBUS
    const Tensor truncated = model->sample_actions(in);
    ASSERT_EQ(before.numel(), rewritten.numel());
    for (int64_t i = 0; i < before.numel(); ++i) {
      ASSERT_EQ(before.get_f32(i), rewritten.get_f32(i)) << "at " << i;
      ASSERT_EQ(before.get_f32(i), truncated.get_f32(i)) << "at " << i;
    }
    // The new weights do differ: a fresh load of the rewritten file would give other actions.
    auto other = Pi0Model::load(b, backend);
    EXPECT_LT(compare_tensors(before, other->sample_actions(in)).pcc, 0.999);
  }
}
