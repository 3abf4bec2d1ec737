// int8 on a checkpoint with activation outliers, as real Gemma and SigLIP checkpoints have: two
// channels per norm scaled about 10× (Gemma RMSNorm offset set to 10, SigLIP LayerNorm weight ×10).
// The Hadamard scheme must keep actions and velocities at PCC ≥ 0.99 against the reference
// backend; naive per-token int8 is printed beside it (README), not asserted.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/int8_linear.h"
#include "core/compare.h"
#include "io/safetensors.h"
#include "model_util.h"

using namespace pi0;
using namespace pi0::test;

namespace {

// A tiny π0 whose every norm weight has channels 3 and 11 boosted.
std::string outlier_checkpoint() {
  const std::string src = temp_dir("int8_outliers_src"), dst = temp_dir("int8_outliers");
  const ModelConfig c = model_preset("tiny-pi0");
  write_random_checkpoint(src, c, {.dtype = DType::F32, .seed = 11});
  auto f = SafeTensorsFile::open(src + "/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& e : f->entries()) {
    Tensor t = f->tensor(e).to(DType::F32);
    const bool norm = t.ndim() == 1 && e.name.find("norm") != std::string::npos && e.name.find(".weight") != std::string::npos;
    if (norm && t.numel() > 11) {
      const bool siglip = e.name.find("vision") != std::string::npos;
      for (int64_t ch : {3, 11}) {
        float& v = t.data_mut<float>()[ch];
        v = siglip ? 10.f * v : 10.f;  // LayerNorm: weight ×10; Gemma RMSNorm: (1 + offset) = 11
      }
    }
    out.emplace_back(e.name, t);
  }
  write_safetensors(dst + "/model.safetensors", out);
  std::filesystem::copy_file(src + "/config.json", dst + "/config.json", std::filesystem::copy_options::overwrite_existing);
  return dst;
}

struct Outputs {
  Tensor actions, velocity;
};

Outputs run(const std::string& dir, const std::string& backend, const BackendOptions& opt, const ModelInputs& in) {
  auto model = Pi0Model::load(dir, backend, opt);
  Outputs o;
  SampleOptions so;
  so.observer = [&](const std::string& name, const Tensor& v) {
    if (name == "velocity_t1") o.velocity = v.to(DType::F32);
  };
  o.actions = model->sample_actions(in, so);
  return o;
}

}  // namespace

TEST(Int8Outliers, HadamardSchemeKeepsActionsAndVelocities) {
  if (!cpu::int8_support().ok) GTEST_SKIP() << "no int8 kernel for this CPU";
  const std::string dir = outlier_checkpoint();
  const ModelInputs in = random_inputs(model_preset("tiny-pi0"), 2, 21);
  const Outputs ref = run(dir, "reference", {}, in);
  ASSERT_TRUE(ref.velocity.defined());
  auto scheme = [&](const char* name) {
    setenv("PI0_INT8_SCHEME", name, 1);
    Outputs o = run(dir, "cpu", {.precision = Precision::Int8, .int8_min_rows = 2}, in);  // every layer
    unsetenv("PI0_INT8_SCHEME");
    return std::pair{compare_tensors(ref.actions, o.actions), compare_tensors(ref.velocity, o.velocity)};
  };
  const auto [ha, hv] = scheme("hadamard");
  const auto [na, nv] = scheme("naive");
  std::printf("int8 on injected outliers vs reference: hadamard actions pcc %.5f rel %.4f, velocity pcc %.5f; "
              "naive actions pcc %.5f rel %.4f, velocity pcc %.5f\n",
              ha.pcc, ha.rel(), hv.pcc, na.pcc, na.rel(), nv.pcc);
  EXPECT_GE(ha.pcc, 0.99);
  EXPECT_GE(hv.pcc, 0.99);
}
